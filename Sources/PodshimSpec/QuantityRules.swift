import Yams

/// Checking the resource quantities of a manifest (`64Mi`, `1G`, `500m`, `1e9`) with ``Quantity``.
enum QuantityRules {
    /// What a malformed `emptyDir.sizeLimit` is told.
    static let rule = "must be a quantity such as 64Mi or 1G"
    static let negative = "must not be negative"
    static let tooLarge = "quantity too large"

    /// Whether `text` is a quantity that is not negative.
    static func isQuantity(_ text: String) -> Bool {
        guard let quantity = Quantity(text) else { return false }
        return !quantity.isNegative
    }

    /// The quantity `text` found at `path`, which must not be negative.
    ///
    /// - Throws: `malformed` when `text` is not a quantity; `must not be negative`.
    static func nonNegative(
        _ text: String, at path: String, malformed: String
    ) throws(ManifestError) -> Quantity {
        guard let quantity = Quantity(text) else { throw ManifestError(path: path, message: malformed) }
        guard !quantity.isNegative else { throw ManifestError(path: path, message: negative) }
        return quantity
    }

    /// The node as a non-negative quantity. It may be written as a string or a number
    /// (`memory: "1Gi"`, `cpu: 0.5`, `memory: 129e6`); the scalar's text is parsed as written.
    ///
    /// - Throws: `"<text>" is not a quantity`; `must not be negative`; `must be a quantity`
    ///   when the node is not a scalar.
    static func nonNegative(_ node: ManifestNode) throws(ManifestError) -> Quantity {
        guard case .scalar(let scalar) = node.node else { throw node.error("must be a quantity") }
        return try nonNegative(scalar.string, at: node.path, malformed: "\"\(scalar.string)\" is not a quantity")
    }

    /// The byte count of `quantity` (rounded up), which was found at `path`.
    ///
    /// - Throws: `quantity too large` when it does not fit in an `Int64`.
    static func bytes(_ quantity: Quantity, at path: String) throws(ManifestError) -> Int64 {
        guard let value = quantity.value() else { throw ManifestError(path: path, message: tooLarge) }
        return value
    }

    /// The thousandths of `quantity` (CPU millicores, rounded up), which was found at `path`.
    ///
    /// - Throws: `quantity too large` when they do not fit in an `Int64`.
    static func millis(_ quantity: Quantity, at path: String) throws(ManifestError) -> Int64 {
        guard let value = quantity.milliValue() else { throw ManifestError(path: path, message: tooLarge) }
        return value
    }
}

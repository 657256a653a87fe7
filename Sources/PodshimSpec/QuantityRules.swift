/// The syntax of Kubernetes resource quantities (`64Mi`, `1G`, `500m`, `1e9`).
enum QuantityRules {
    static let rule = "must be a quantity such as 64Mi or 1G"

    private static let suffixes: Set<String> = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ]

    /// Whether `text` is a non-negative quantity: an optional `+`, a decimal number, then either a
    /// binary or decimal SI suffix or a decimal exponent (`e3`, `E-2`).
    static func isQuantity(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "+" { rest = rest.dropFirst() }
        let number = rest.prefix { ("0"..."9").contains($0) || $0 == "." }
        let dots = number.filter { $0 == "." }.count
        guard dots <= 1, number.contains(where: { $0 != "." }) else { return false }
        let suffix = rest.dropFirst(number.count)
        return suffixes.contains(String(suffix)) || isExponent(suffix)
    }

    /// `[eE][-+]?[0-9]+`.
    private static func isExponent(_ text: Substring) -> Bool {
        guard let e = text.first, e == "e" || e == "E" else { return false }
        var digits = text.dropFirst()
        if let sign = digits.first, sign == "-" || sign == "+" { digits = digits.dropFirst() }
        return !digits.isEmpty && digits.allSatisfy { ("0"..."9").contains($0) }
    }
}

/// A set of Linux capabilities as the kernel stores them: bit `n` set ⇔ capability number `n`.
///
/// This is what the child receives (one mask for the bounding, permitted, effective, inheritable
/// and ambient sets of a non-root process, as runc and crun derive them from one list).
public struct CapabilitySet: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Bit `n` is capability number `n` (`CAP_CHOWN` = 0 … `CAP_CHECKPOINT_RESTORE` = 40).
    public var rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    /// The set of the given capability numbers; numbers outside 0…63 are ignored.
    public init<S: Sequence>(numbers: S) where S.Element == Int32 {
        self.rawValue = 0
        for number in numbers { insert(number) }
    }

    /// No capabilities.
    public static let empty = CapabilitySet(rawValue: 0)

    public var isEmpty: Bool { rawValue == 0 }

    public func contains(_ number: Int32) -> Bool {
        guard let bit = Self.bit(number) else { return false }
        return rawValue & bit != 0
    }

    /// Adds capability `number`; numbers outside 0…63 cannot be represented and are ignored.
    public mutating func insert(_ number: Int32) {
        guard let bit = Self.bit(number) else { return }
        rawValue |= bit
    }

    public mutating func remove(_ number: Int32) {
        guard let bit = Self.bit(number) else { return }
        rawValue &= ~bit
    }

    public func union(_ other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(rawValue: rawValue | other.rawValue)
    }

    public func intersection(_ other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(rawValue: rawValue & other.rawValue)
    }

    /// The capability numbers in the set, ascending.
    public var numbers: [Int32] {
        (0..<64).filter { rawValue & (UInt64(1) << UInt64($0)) != 0 }.map { Int32($0) }
    }

    /// `CAP_CHOWN`, `CAP_DAC_OVERRIDE`, … sorted by number.
    public var names: [String] {
        numbers.map { Capabilities.name(of: $0) }
    }

    public var description: String {
        "[" + names.joined(separator: ", ") + "]"
    }

    private static func bit(_ number: Int32) -> UInt64? {
        guard number >= 0, number < 64 else { return nil }
        return UInt64(1) << UInt64(number)
    }
}

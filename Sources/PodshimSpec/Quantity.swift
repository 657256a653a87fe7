/// A Kubernetes resource quantity (`500m`, `0.5`, `64Mi`, `1G`, `129e6`), parsed exactly.
///
/// The syntax is Kubernetes':
///
///     quantity  ::= sign? number suffix?
///     sign      ::= "+" | "-"
///     number    ::= digits | digits "." digits? | "." digits      (at least one digit)
///     suffix    ::= binarySI | decimalSI | exponent
///     binarySI  ::= Ki | Mi | Gi | Ti | Pi | Ei                   (2^10 … 2^60)
///     decimalSI ::= n | u | m | k | M | G | T | P | E             (10^-9 … 10^18; `m` is milli, `M` mega)
///     exponent  ::= ("e" | "E") sign? digits                      (10^n, n within ±2^31)
///
/// No spaces are allowed anywhere. The value is kept as decimal digits times a power of ten and a
/// power of two, so nothing is ever rounded by floating point: `0.1` is exactly one tenth and
/// `1.5Mi` exactly 1572864. Rounding happens only when asking for an integer (``value()``,
/// ``milliValue()``), and then, as in Kubernetes, away from zero (up, for the non-negative
/// quantities a manifest allows).
///
/// Two quantities are `==` when they are written the same; use ``compare(_:)`` to compare values
/// (`1Gi` and `1024Mi` are not `==`, but compare as equal).
public struct Quantity: Equatable, Sendable, CustomStringConvertible {
    /// The quantity as written.
    public let text: String
    /// Whether the text starts with `-`.
    private let negativeSign: Bool
    /// The significant decimal digits (0…9), most significant first, with neither leading nor
    /// trailing zeros; empty when the quantity is zero.
    private let digits: [UInt8]
    /// The power of ten the digits are multiplied by.
    private let exponent10: Int
    /// The power of two the digits are multiplied by (a binary suffix: 0, 10, …, 60).
    private let exponent2: Int

    /// Parses `text`, or returns nil when it is not a quantity (`12XB`, `1.2.3`, `1 Gi`, `0x10`, ``).
    /// A negative quantity (`-1`) parses; callers that need a non-negative one check ``isNegative``.
    public init?(_ text: String) {
        var rest = Substring(text).utf8
        var negativeSign = false
        if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negativeSign = sign == UInt8(ascii: "-")
            rest = rest.dropFirst()
        }
        let integerDigits = rest.prefix(while: Self.isDigit)
        rest = rest.dropFirst(integerDigits.count)
        var fractionDigits = rest.prefix(0)
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            fractionDigits = rest.prefix(while: Self.isDigit)
            rest = rest.dropFirst(fractionDigits.count)
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty,
              let (suffix10, suffix2) = Self.suffix(rest) else { return nil }

        var digits = (Array(integerDigits) + Array(fractionDigits)).map { $0 - UInt8(ascii: "0") }
        var exponent10 = suffix10 - fractionDigits.count
        let significant = digits.firstIndex { $0 != 0 }.map { digits[$0...] } ?? []
        digits = Array(significant)
        while digits.last == 0 {
            digits.removeLast()
            exponent10 += 1
        }

        self.text = text
        self.negativeSign = negativeSign
        self.digits = digits
        self.exponent10 = digits.isEmpty ? 0 : exponent10
        self.exponent2 = digits.isEmpty ? 0 : suffix2
    }

    /// Whether the quantity is less than zero (`-0` is not).
    public var isNegative: Bool { negativeSign && !digits.isEmpty }

    /// Whether the quantity is zero (`0`, `0Gi`, `-0.0`, `0e9`).
    public var isZero: Bool { digits.isEmpty }

    /// The quantity as written.
    public var description: String { text }

    /// The quantity in thousandths (CPU millicores for a CPU quantity), rounded up to a whole
    /// number as Kubernetes' `MilliValue` does (away from zero for a negative quantity):
    /// `100m` → 100, `0.5` → 500, `0.0005` → 1. Nil when it does not fit in an `Int64`.
    public func milliValue() -> Int64? {
        scaledInteger(timesPowerOfTen: 3)
    }

    /// The quantity as a whole number (bytes, for a memory quantity), rounded up as Kubernetes'
    /// `Value` does (away from zero for a negative quantity): `123Mi` → 128974848, `100m` → 1.
    /// Nil when it does not fit in an `Int64`.
    public func value() -> Int64? {
        scaledInteger(timesPowerOfTen: 0)
    }

    /// Compares the values of two quantities exactly, as Kubernetes' `Quantity.Cmp`: -1 when this
    /// one is smaller than `other`, 0 when they are equal, 1 when it is larger.
    public func compare(_ other: Quantity) -> Int {
        let sign = self.sign, otherSign = other.sign
        guard sign == otherSign else { return sign < otherSign ? -1 : 1 }
        if sign == 0 { return 0 }
        let (digits, exponent) = magnitude()
        let (otherDigits, otherExponent) = other.magnitude()
        return sign * Self.compareMagnitudes(digits, exponent, otherDigits, otherExponent)
    }

    // MARK: - Arithmetic

    /// -1, 0 or 1.
    private var sign: Int { digits.isEmpty ? 0 : (negativeSign ? -1 : 1) }

    /// The absolute value as decimal digits (no leading or trailing zeros) times a power of ten:
    /// the digits multiplied by 2^exponent2.
    private func magnitude() -> (digits: [UInt8], exponent10: Int) {
        var product = Self.multiply(digits, by: UInt64(1) << UInt64(exponent2))
        var exponent = exponent10
        while product.last == 0 {
            product.removeLast()
            exponent += 1
        }
        return (product, exponent)
    }

    /// The value times 10^`scale`, rounded away from zero, or nil when it does not fit in an `Int64`.
    private func scaledInteger(timesPowerOfTen scale: Int) -> Int64? {
        if digits.isEmpty { return 0 }
        let (product, exponent) = magnitude()
        let shift = exponent + scale
        // Int64 holds at most 19 digits.
        let maximumDigits = 19
        var magnitude: UInt64 = 0
        var roundUp = false
        if shift >= 0 {
            guard product.count + shift <= maximumDigits else { return nil }
            for digit in product { magnitude = magnitude * 10 + UInt64(digit) }
            for _ in 0..<shift {
                let (scaled, overflow) = magnitude.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                magnitude = scaled
            }
        } else {
            // The last -shift digits are the fraction; it is never zero, since `product` has no
            // trailing zeros.
            let integerCount = product.count + shift
            roundUp = true
            if integerCount > 0 {
                guard integerCount <= maximumDigits else { return nil }
                for digit in product[..<integerCount] {
                    let (scaled, overflow) = magnitude.multipliedReportingOverflow(by: 10)
                    guard !overflow else { return nil }
                    magnitude = scaled + UInt64(digit)
                }
            }
        }
        if roundUp {
            let (rounded, overflow) = magnitude.addingReportingOverflow(1)
            guard !overflow else { return nil }
            magnitude = rounded
        }
        if negativeSign {
            let limit = UInt64(Int64.max) + 1
            guard magnitude <= limit else { return nil }
            return magnitude == limit ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// `digits` (decimal, most significant first) times `factor` (at most 2^60), as decimal digits.
    private static func multiply(_ digits: [UInt8], by factor: UInt64) -> [UInt8] {
        if factor == 1 { return digits }
        var result: [UInt8] = []
        result.reserveCapacity(digits.count + 19)
        var carry: UInt64 = 0
        // 9 × 2^60 + a carry below 2^60 stays below 2^64.
        for digit in digits.reversed() {
            let accumulated = UInt64(digit) * factor + carry
            result.append(UInt8(accumulated % 10))
            carry = accumulated / 10
        }
        while carry > 0 {
            result.append(UInt8(carry % 10))
            carry /= 10
        }
        return result.reversed()
    }

    /// Compares two positive numbers written as significant digits (no leading or trailing zeros)
    /// times a power of ten.
    private static func compareMagnitudes(_ a: [UInt8], _ aExponent: Int, _ b: [UInt8], _ bExponent: Int) -> Int {
        // The position of the leading digit decides first.
        let aLeading = a.count + aExponent, bLeading = b.count + bExponent
        if aLeading != bLeading { return aLeading < bLeading ? -1 : 1 }
        for (x, y) in zip(a, b) where x != y {
            return x < y ? -1 : 1
        }
        // Same leading digits: the one with more (non-zero-ending) digits is larger.
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    // MARK: - Syntax

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// The powers of ten and of two a suffix stands for, or nil when it is not a suffix.
    private static func suffix(_ text: Substring.UTF8View.SubSequence) -> (exponent10: Int, exponent2: Int)? {
        switch String(Substring(text)) {
        case "": return (0, 0)
        case "Ki": return (0, 10)
        case "Mi": return (0, 20)
        case "Gi": return (0, 30)
        case "Ti": return (0, 40)
        case "Pi": return (0, 50)
        case "Ei": return (0, 60)
        case "n": return (-9, 0)
        case "u": return (-6, 0)
        case "m": return (-3, 0)
        case "k": return (3, 0)
        case "M": return (6, 0)
        case "G": return (9, 0)
        case "T": return (12, 0)
        case "P": return (15, 0)
        case "E": return (18, 0)
        default: break
        }
        // `e3`, `E-2`, `e+6`: a decimal exponent that fits in 32 bits.
        guard let e = text.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") else { return nil }
        var exponentText = text.dropFirst()
        var negative = false
        if let sign = exponentText.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            exponentText = exponentText.dropFirst()
        }
        guard !exponentText.isEmpty, exponentText.allSatisfy(isDigit) else { return nil }
        var exponent = 0
        for byte in exponentText {
            exponent = exponent * 10 + Int(byte - UInt8(ascii: "0"))
            guard exponent <= Int(Int32.max) else { return nil }
        }
        return (negative ? -exponent : exponent, 0)
    }
}

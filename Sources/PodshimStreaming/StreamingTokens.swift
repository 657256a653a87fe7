import Foundation
import Synchronization

/// The single-use tokens in streaming URLs: 128 random bits each, valid for one minute, bound to
/// the one request they were made for (a token for one container's exec cannot reach another's).
/// At most ``capacity`` wait at once.
public final class StreamingTokens<Request: Sendable>: Sendable {
    public static var lifetimeSeconds: Double { 60 }
    public let capacity: Int
    private let now: @Sendable () -> Double
    private let entries = Mutex<[String: (request: Request, expires: Double)]>([:])

    /// `now`: seconds on a monotonic clock (injected in tests).
    public init(capacity: Int = 1000, now: @escaping @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }) {
        self.capacity = capacity
        self.now = now
    }

    /// A new token for `request`; nil when ``capacity`` tokens are waiting already.
    public func insert(_ request: Request) -> String? {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &random) }
        let token = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let current = now()
        return entries.withLock { entries in
            entries = entries.filter { $0.value.expires > current }
            guard entries.count < capacity else { return nil }
            entries[token] = (request, current + Self.lifetimeSeconds)
            return token
        }
    }

    /// The request of `token`, once: the token is spent. Nil for an unknown, spent or expired one.
    public func take(_ token: String) -> Request? {
        let current = now()
        return entries.withLock { entries in
            guard let entry = entries.removeValue(forKey: token), entry.expires > current else { return nil }
            return entry.request
        }
    }

    public var waiting: Int { entries.withLock { $0.count } }
}

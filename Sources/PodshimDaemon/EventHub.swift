import Foundation

/// Fans events out to every streaming subscriber (GetContainerEvents, WatchPods). A slow client loses
/// the oldest events beyond its buffer rather than holding the daemon back.
final class EventHub<Event: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<Event>.Continuation] = [:]
    private var nextID: UInt64 = 0

    /// A new subscription; it ends when the returned stream's consumer goes away.
    func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self, bufferingPolicy: .bufferingNewest(4096))
        let id: UInt64 = lock.withLock {
            nextID += 1
            subscribers[nextID] = continuation
            return nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.lock.withLock { self?.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: Event) {
        let targets = lock.withLock { Array(subscribers.values) }
        for target in targets { target.yield(event) }
    }

    var subscriberCount: Int { lock.withLock { subscribers.count } }

    /// Ends every stream (daemon shutdown).
    func finishAll() {
        let targets = lock.withLock { () -> [AsyncStream<Event>.Continuation] in
            defer { subscribers.removeAll() }
            return Array(subscribers.values)
        }
        for target in targets { target.finish() }
    }
}

import Synchronization
import Foundation

/// Fans events out to every streaming subscriber (GetContainerEvents, WatchPods). A slow client loses
/// the oldest events beyond its buffer rather than holding the daemon back.
final class EventHub<Event: Sendable>: Sendable {
    private struct State {
        var subscribers: [UInt64: AsyncStream<Event>.Continuation] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// A new subscription; it ends when the returned stream's consumer goes away.
    func subscribe() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self, bufferingPolicy: .bufferingNewest(4096))
        let id: UInt64 = state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: Event) {
        let targets = state.withLock { Array($0.subscribers.values) }
        for target in targets { target.yield(event) }
    }

    var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Ends every stream (daemon shutdown).
    func finishAll() {
        let targets = state.withLock { state -> [AsyncStream<Event>.Continuation] in
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for target in targets { target.finish() }
    }
}

import Dispatch

/// Runs blocking work (spawning, waiting on the kernel, removing trees, writing records) on a
/// Dispatch worker, off the async executor, whose few threads must never block.
public func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// ``offload(_:)`` for work that cannot fail.
public func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(returning: work())
        }
    }
}

import Dispatch
import Foundation

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

/// Runs long CPU-bound work (unpacking an image layer: seconds of decompression and file
/// creation) on a thread of its own, which ends with the work: neither the async executor nor
/// Dispatch's shared workers (which serve ``offload(_:)`` and, on Linux, the async executor too)
/// are held, so downloads and RPCs keep their threads.
public func offloadToThread<T: Sendable>(name: String, _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try work() })
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }
}

import GRPCCore
@testable import PodshimDaemon
import PodshimSystem
import XCTest

/// RequestDeadline: an RPC's `grpc-timeout` is a DeadlineTimer entry that leaves the clock when
/// the RPC ends (grpc-swift's cancelled Task.sleep kept ~1.6 KB per RPC until the deadline).
final class RequestDeadlineTests: XCTestCase {
    func testTimeoutValues() {
        XCTAssertEqual(RequestDeadline.seconds(of: "300S"), 300)
        XCTAssertEqual(RequestDeadline.seconds(of: "2M"), 120)
        XCTAssertEqual(RequestDeadline.seconds(of: "1H"), 3600)
        XCTAssertEqual(RequestDeadline.seconds(of: "250m"), 0.25)
        XCTAssertEqual(RequestDeadline.seconds(of: "99999999n")!, 0.099999999, accuracy: 1e-12)
        XCTAssertEqual(RequestDeadline.seconds(of: "5u")!, 0.000005, accuracy: 1e-12)
        for malformed in ["", "S", "123456789S", "10x", "-1S", "1.5S", "+1S", "１S"] {
            XCTAssertNil(RequestDeadline.seconds(of: malformed), malformed)
        }
    }

    private func parts(_ metadata: Metadata) -> RPCAsyncSequence<RPCRequestPart<[UInt8]>, any Error> {
        RPCAsyncSequence(wrapping: AsyncThrowingStream<RPCRequestPart<[UInt8]>, any Error> { continuation in
            continuation.yield(.metadata(metadata))
            continuation.yield(.message([1, 2, 3]))
            continuation.finish()
        })
    }

    func testTheTimeoutIsTakenOffTheMetadataAndLeavesTheClockWhenTheRPCEnds() async throws {
        let clock = ManualClock()
        let handle = ServerContext.RPCCancellationHandle()
        let deadline = RequestDeadline(clock: clock, cancellation: handle)
        var metadata = Metadata()
        metadata.addString("300S", forKey: "grpc-timeout")
        metadata.addString("y", forKey: "x")
        var iterator = TimeoutTaken(base: parts(metadata), deadline: deadline).makeAsyncIterator()
        guard case .metadata(let seen)? = try await iterator.next() else { return XCTFail("metadata first") }
        XCTAssertEqual(Array(seen[stringValues: "grpc-timeout"]), [], "grpc-swift must not see it")
        XCTAssertEqual(Array(seen[stringValues: "x"]), ["y"])
        XCTAssertEqual(clock.pendingCount, 1, "the deadline is on the clock")
        guard case .message(let message)? = try await iterator.next() else { return XCTFail("then the message") }
        XCTAssertEqual(message, [1, 2, 3])
        let end = try await iterator.next()
        XCTAssertNil(end)
        deadline.end()
        XCTAssertEqual(clock.pendingCount, 0, "the RPC ended: nothing is left on the clock")
        clock.advance(bySeconds: 400)
        XCTAssertFalse(handle.isCancelled)
    }

    func testWithoutATimeoutNothingIsScheduled() async throws {
        let clock = ManualClock()
        let deadline = RequestDeadline(clock: clock, cancellation: ServerContext.RPCCancellationHandle())
        var metadata = Metadata()
        metadata.addString("y", forKey: "x")
        var iterator = TimeoutTaken(base: parts(metadata), deadline: deadline).makeAsyncIterator()
        guard case .metadata(let seen)? = try await iterator.next() else { return XCTFail("metadata first") }
        XCTAssertEqual(Array(seen[stringValues: "x"]), ["y"])
        XCTAssertEqual(clock.pendingCount, 0)
        deadline.end()
    }

    func testTheDeadlineCancelsTheRPC() async throws {
        let clock = ManualClock()
        let handle = ServerContext.RPCCancellationHandle()
        let deadline = RequestDeadline(clock: clock, cancellation: handle)
        deadline.arm(afterSeconds: 10)
        clock.advance(bySeconds: 9.999)
        XCTAssertFalse(handle.isCancelled)
        clock.advance(bySeconds: 0.001)
        // cancel() runs on a Dispatch worker, off the timer thread.
        for _ in 0..<2000 where !handle.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
        XCTAssertTrue(handle.isCancelled)
        deadline.end()
        XCTAssertEqual(clock.pendingCount, 0)
    }

    func testADeadlineArmedAfterTheEndIsDropped() {
        let clock = ManualClock()
        let deadline = RequestDeadline(clock: clock, cancellation: ServerContext.RPCCancellationHandle())
        deadline.end()
        deadline.arm(afterSeconds: 10)
        XCTAssertEqual(clock.pendingCount, 0)
    }
}

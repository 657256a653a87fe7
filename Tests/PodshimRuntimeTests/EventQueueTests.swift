import Foundation
import XCTest
import PodshimSystem
@testable import PodshimRuntime
import Glibc

/// EventQueue: a FIFO with monotonic deadlines; MonotonicInstant arithmetic.
final class EventQueueTests: XCTestCase {
    /// A deadline that will not pass while the test runs (one hour from now).
    private var farFuture: MonotonicInstant { MonotonicInstant.now().advanced(bySeconds: 3600) }

    func testFIFOOrder() async {
        let queue = EventQueue<Int>()
        for value in [3, 1, 2] { queue.post(value) }
        let first = await queue.next(until: nil)
        let second = await queue.next(until: farFuture)
        let third = await queue.next(until: nil)
        let none = await queue.next(until: MonotonicInstant(nanoseconds: 0))
        XCTAssertEqual([first, second, third], [3, 1, 2])
        XCTAssertNil(none)
    }

    func testPastDeadlineReturnsNilWhenEmpty() async {
        let queue = EventQueue<String>()
        let atZero = await queue.next(until: MonotonicInstant(nanoseconds: 0))
        let atNow = await queue.next(until: MonotonicInstant.now())
        XCTAssertNil(atZero)
        XCTAssertNil(atNow)
    }

    func testPastDeadlineStillReturnsAPendingEvent() async {
        let queue = EventQueue<String>()
        queue.post("ready")
        let pending = await queue.next(until: MonotonicInstant(nanoseconds: 0))
        let none = await queue.next(until: MonotonicInstant(nanoseconds: 0))
        XCTAssertEqual(pending, "ready")
        XCTAssertNil(none)
    }

    func testADeadlineOnTheQueuesClockEndsTheWaitAndLeavesNoTimer() async {
        let clock = ManualClock()
        let queue = EventQueue<Int>(clock: clock)
        let deadline = clock.now().advanced(bySeconds: 5)
        let waiter = Task { await queue.next(until: deadline) }
        while clock.pendingCount == 0 { await Task.yield() }
        clock.advance(to: MonotonicInstant(nanoseconds: deadline.nanoseconds - 1))
        XCTAssertEqual(clock.pendingCount, 1, "still waiting just before the deadline")
        clock.advance(to: deadline)
        let result = await waiter.value
        XCTAssertNil(result)
        XCTAssertEqual(clock.pendingCount, 0)
    }

    func testAnEventBeforeTheDeadlineWakesTheWaiterAndCancelsItsTimer() async {
        let clock = ManualClock()
        let queue = EventQueue<String>(clock: clock)
        let waiter = Task { await queue.next(until: clock.now().advanced(bySeconds: 60)) }
        while clock.pendingCount == 0 { await Task.yield() }
        queue.post("wake up")
        let result = await waiter.value
        XCTAssertEqual(result, "wake up")
        XCTAssertEqual(clock.pendingCount, 0, "no timer is left pending once the event came")
    }

    func testAWaiterWithoutDeadlineIsWokenFromAnotherThread() async {
        let queue = EventQueue<Int>()
        let waiter = Task { await queue.next(until: nil) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { queue.post(99) }
        let result = await waiter.value
        XCTAssertEqual(result, 99)
    }

    func testCancellingTheWaitingTaskEndsItsWait() async {
        let clock = ManualClock()
        let queue = EventQueue<Int>(clock: clock)
        let waiter = Task { await queue.next(until: clock.now().advanced(bySeconds: 60)) }
        while clock.pendingCount == 0 { await Task.yield() }
        waiter.cancel()
        let result = await waiter.value
        XCTAssertNil(result)
        XCTAssertEqual(clock.pendingCount, 0)
        queue.post(1) // a later event is kept for the next consumer
        let kept = await queue.next(until: nil)
        XCTAssertEqual(kept, 1)
    }

    func testBlockingWaitFromADispatchWorker() {
        let queue = EventQueue<Int>()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.02) { queue.post(7) }
        XCTAssertEqual(queue.nextBlocking(until: farFuture), 7)
        XCTAssertNil(queue.nextBlocking(until: MonotonicInstant(nanoseconds: 0)))
    }

    func testManyProducersKeepPerProducerOrder() async {
        let queue = EventQueue<Pair>()
        let producers = 4, perProducer = 250
        for producer in 0..<producers {
            DispatchQueue.global().async {
                for sequence in 0..<perProducer { queue.post(Pair(producer: producer, sequence: sequence)) }
            }
        }
        var next = [Int](repeating: 0, count: producers)
        for _ in 0..<(producers * perProducer) {
            guard let event = await queue.next(until: farFuture) else { return XCTFail("queue ran dry") }
            XCTAssertEqual(event.sequence, next[event.producer], "producer \(event.producer) out of order")
            next[event.producer] = event.sequence + 1
        }
        XCTAssertEqual(next, [Int](repeating: perProducer, count: producers))
        let none = await queue.next(until: MonotonicInstant(nanoseconds: 0))
        XCTAssertNil(none)
    }

    private struct Pair: Sendable {
        var producer: Int
        var sequence: Int
    }

    // MARK: MonotonicInstant

    func testAdvancedBySeconds() {
        let start = MonotonicInstant(nanoseconds: 1)
        XCTAssertEqual(start.advanced(bySeconds: 1.5).nanoseconds, 1_500_000_001)
        XCTAssertEqual(start.advanced(bySeconds: 0).nanoseconds, 1)
        XCTAssertEqual(start.advanced(bySeconds: -5).nanoseconds, 1, "negative durations are clamped to zero")
    }

    /// A deadline must never land before the instant it was advanced from. With ~6 days of uptime and
    /// `terminationGracePeriodSeconds: 18446500000` (a valid manifest: only negatives are rejected),
    /// `nanoseconds &+ …` wraps to a point in the past, so the pod would be SIGKILLed at once instead of
    /// after the grace period. Expected: saturate at UInt64.max.
    /// (Still larger values, e.g. 20000000000 s, trap in `UInt64(Double)`; that crash cannot be tested in-process.)
    func testAdvancedBySecondsDoesNotWrapIntoThePast() {
        let start = MonotonicInstant(nanoseconds: 500_000_000_000_000)
        let deadline = start.advanced(bySeconds: 18_446_500_000)
        XCTAssertGreaterThanOrEqual(deadline, start, "a deadline moved into the past")
        XCTAssertEqual(deadline.nanoseconds, UInt64.max)
    }

    func testAsTimespec() {
        let time = MonotonicInstant(nanoseconds: 3_000_000_007).asTimespec
        XCTAssertEqual(time.tv_sec, 3)
        XCTAssertEqual(time.tv_nsec, 7)
    }

    func testOrdering() {
        XCTAssertLessThan(MonotonicInstant(nanoseconds: 1), MonotonicInstant(nanoseconds: 2))
        XCTAssertFalse(MonotonicInstant(nanoseconds: 2) < MonotonicInstant(nanoseconds: 1))
        XCTAssertNotEqual(MonotonicInstant(nanoseconds: 5), MonotonicInstant(nanoseconds: 6))
        XCTAssertEqual(MonotonicInstant(nanoseconds: 5).nanoseconds, 5)
        let now = MonotonicInstant.now()
        XCTAssertGreaterThanOrEqual(MonotonicInstant.now(), now, "the monotonic clock never goes back")
    }
}

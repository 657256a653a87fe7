import Foundation
import XCTest
import PodshimSystem
@testable import PodshimRuntime
import Glibc

/// EventQueue: a FIFO with monotonic deadlines; MonotonicInstant arithmetic.
final class EventQueueTests: XCTestCase {
    /// A deadline that will not pass while the test runs (one hour from now).
    private var farFuture: MonotonicInstant { MonotonicInstant.now().advanced(bySeconds: 3600) }

    func testFIFOOrder() {
        let queue = EventQueue<Int>()
        for value in [3, 1, 2] { queue.post(value) }
        XCTAssertEqual(queue.next(until: nil), 3)
        XCTAssertEqual(queue.next(until: farFuture), 1)
        XCTAssertEqual(queue.next(until: nil), 2)
        XCTAssertNil(queue.next(until: MonotonicInstant(nanoseconds: 0)))
    }

    func testPastDeadlineReturnsNilWhenEmpty() {
        let queue = EventQueue<String>()
        XCTAssertNil(queue.next(until: MonotonicInstant(nanoseconds: 0)))
        XCTAssertNil(queue.next(until: MonotonicInstant.now()))
    }

    func testPastDeadlineStillReturnsAPendingEvent() {
        let queue = EventQueue<String>()
        queue.post("ready")
        XCTAssertEqual(queue.next(until: MonotonicInstant(nanoseconds: 0)), "ready")
        XCTAssertNil(queue.next(until: MonotonicInstant(nanoseconds: 0)))
    }

    func testInterleavedPostAndNext() {
        let queue = EventQueue<Int>()
        queue.post(1)
        queue.post(2)
        XCTAssertEqual(queue.next(until: nil), 1)
        queue.post(3)
        XCTAssertEqual(queue.next(until: nil), 2)
        XCTAssertEqual(queue.next(until: nil), 3)
    }

    func testEventFromAnotherThreadWakesAWaiter() {
        let queue = EventQueue<String>()
        let waiting = DispatchSemaphore(value: 0)
        let received = expectation(description: "the waiter received the event")
        let result = Box<String?>(nil)
        let deadline = farFuture
        let waiter = Thread {
            waiting.signal()
            result.value = queue.next(until: deadline)
            received.fulfill()
        }
        waiter.start()
        waiting.wait()
        usleep(20_000) // let the waiter block in pthread_cond_timedwait (the result does not depend on it)
        queue.post("wake up")
        // A liveness guard against a hang, not a timing assertion.
        wait(for: [received], timeout: 60)
        XCTAssertEqual(result.value, "wake up")
    }

    func testWaiterWithoutDeadlineIsWoken() {
        let queue = EventQueue<Int>()
        let received = expectation(description: "received")
        let result = Box<Int?>(nil)
        Thread {
            result.value = queue.next(until: nil)
            received.fulfill()
        }.start()
        queue.post(99)
        wait(for: [received], timeout: 60)
        XCTAssertEqual(result.value, 99)
    }

    func testManyProducersKeepPerProducerOrder() {
        let queue = EventQueue<(producer: Int, sequence: Int)>()
        let producers = 4, perProducer = 250
        let group = DispatchGroup()
        for producer in 0..<producers {
            group.enter()
            Thread {
                for sequence in 0..<perProducer { queue.post((producer, sequence)) }
                group.leave()
            }.start()
        }
        var next = [Int](repeating: 0, count: producers)
        for _ in 0..<(producers * perProducer) {
            guard let event = queue.next(until: farFuture) else { return XCTFail("queue ran dry") }
            XCTAssertEqual(event.sequence, next[event.producer], "producer \(event.producer) out of order")
            next[event.producer] = event.sequence + 1
        }
        group.wait()
        XCTAssertEqual(next, [Int](repeating: perProducer, count: producers))
        XCTAssertNil(queue.next(until: MonotonicInstant(nanoseconds: 0)))
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

/// A mutable cell shared with a thread; the expectation orders the write before the read.
private final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

import Synchronization
import XCTest
@testable import PodshimStreaming

final class StreamingTokensTests: XCTestCase {
    /// A clock the test moves.
    final class Clock: Sendable {
        let seconds = Mutex(1000.0)
        func advance(_ by: Double) { seconds.withLock { $0 += by } }
        var now: Double { seconds.withLock { $0 } }
    }

    func testSingleUseUnguessableAndBoundToItsRequest() {
        let clock = Clock()
        let tokens = StreamingTokens<String>(now: { clock.now })
        let a = tokens.insert("exec in container A")!
        let b = tokens.insert("exec in container B")!
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(a.count, 22) // 128 bits, base64url without padding
        XCTAssertTrue(a.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        XCTAssertEqual(tokens.take(b), "exec in container B")
        XCTAssertNil(tokens.take(b), "a token is good once")
        XCTAssertEqual(tokens.take(a), "exec in container A")
        XCTAssertNil(tokens.take("not-a-token"))
        let many = Set((0..<1000).compactMap { _ in tokens.insert("x") })
        XCTAssertEqual(many.count, 1000, "tokens repeat")
    }

    func testTokensExpireAfterAMinute() {
        let clock = Clock()
        let tokens = StreamingTokens<Int>(now: { clock.now })
        let early = tokens.insert(1)!
        clock.advance(59)
        let late = tokens.insert(2)!
        XCTAssertEqual(tokens.take(early), 1)
        clock.advance(2)
        XCTAssertEqual(tokens.take(late), 2, "still valid 2 s after it was made")
        let expiring = tokens.insert(3)!
        clock.advance(60)
        XCTAssertNil(tokens.take(expiring), "expired after a minute")
    }

    func testAtMostCapacityWait() {
        let clock = Clock()
        let tokens = StreamingTokens<Int>(capacity: 3, now: { clock.now })
        XCTAssertNotNil(tokens.insert(1))
        XCTAssertNotNil(tokens.insert(2))
        let third = tokens.insert(3)!
        XCTAssertNil(tokens.insert(4), "a fourth waiting token is refused")
        _ = tokens.take(third)
        XCTAssertNotNil(tokens.insert(5), "a spent token makes room")
        clock.advance(61)
        XCTAssertNotNil(tokens.insert(6), "expired tokens make room")
        XCTAssertEqual(tokens.waiting, 1)
    }
}

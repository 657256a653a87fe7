import Foundation
import Glibc
import NIOCore
import NIOPosix
import PodshimSystem
import XCTest
@testable import PodshimStreaming

/// WebSocket port forwarding against a streaming server in the test process, whose connections go
/// to an echo server on loopback instead of into a pod (no root needed), and the TLS settings'
/// checks of their files.
final class WebSocketPortForwardTests: XCTestCase {
    // MARK: The port query

    func testPortsComeFromTheQueryInOrder() throws {
        XCTAssertEqual(try WebSocketPortForwardSession.ports(query: "port=80"), [80])
        XCTAssertEqual(try WebSocketPortForwardSession.ports(query: "port=80&port=8080,9&x=y"), [80, 8080, 9])
        XCTAssertEqual(try WebSocketPortForwardSession.ports(query: "port=80%2C81&port=80"), [80, 81, 80])
        XCTAssertEqual(try WebSocketPortForwardSession.ports(query: "port=65535&port=0080"), [65535, 80])
        XCTAssertEqual(try WebSocketPortForwardSession.ports(query: String(repeating: "port=1&", count: 100)).count, 100)
    }

    func testBadPortQueriesNameTheParameter() {
        for query in ["", "x=1", "port", "port=", "port=abc", "port=0", "port=65536", "port=1,", "port=-1", "port=+1",
                      "port=%2B1", "port=1%20", "port=٣", "port=99999999999999999999", String(repeating: "port=1&", count: 101)] {
            XCTAssertThrowsError(try WebSocketPortForwardSession.ports(query: query), query) { error in
                let error = error as? PodshimError
                XCTAssertEqual(error?.code, .invalidArgument, query)
                XCTAssertEqual(error?.subject, "query parameter port", query)
            }
        }
    }

    // MARK: Sessions

    func testTwoPortsBothWaysAndARefusedOne() throws {
        let echo = try EchoServer()
        defer { echo.close() }
        let closed = try Self.closedPort()
        let server = try StreamingServer()
        defer { server.close() }
        let url = try XCTUnwrap(server.url(for: .portForward(Self.loopback())))
        let client = try TestWebSocket(url: url, query: "port=\(echo.port)&port=\(closed)")
        defer { client.close() }
        XCTAssertEqual(client.status, 101)
        XCTAssertEqual(client.subprotocol, "v4.channel.k8s.io")
        // Each channel opens with its port (2 bytes, little-endian), in channel order.
        for (channel, port) in [(0, echo.port), (1, echo.port), (2, closed), (3, closed)] {
            let message = try XCTUnwrap(client.readMessage())
            XCTAssertEqual(message.opcode, 2)
            XCTAssertEqual(message.payload, [UInt8(channel), UInt8(port & 0xFF), UInt8(port >> 8)])
        }
        let data = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for start in stride(from: 0, to: data.count, by: 50_000) {
            try client.send([0] + data[start..<min(start + 50_000, data.count)])
        }
        var echoed: [UInt8] = []
        var refused = ""
        while echoed.count < data.count || refused.isEmpty {
            let message = try XCTUnwrap(client.readMessage(), "the session ended early")
            switch message.payload.first {
            case 0: echoed += message.payload.dropFirst()
            case 3: refused += String(decoding: message.payload.dropFirst(), as: UTF8.self)
            default: XCTFail("unexpected message \(message.payload.prefix(16))")
            }
        }
        XCTAssertEqual(echoed, data)
        XCTAssertTrue(refused.hasPrefix("error forwarding port \(closed) to pod: "), refused)
        XCTAssertTrue(refused.contains("ECONNREFUSED"), refused)
        // A message to the error channel or to no port at all is dropped; the session goes on.
        try client.send([1] + Array("ignored".utf8))
        try client.send([9] + Array("ignored".utf8))
        try client.send([0] + Array("again".utf8))
        XCTAssertEqual(try client.readMessage()?.payload, [0] + Array("again".utf8))
        try client.send([0x03, 0xE8], opcode: 8)
        let close = try XCTUnwrap(client.readMessage())
        XCTAssertEqual(close.opcode, 8)
        XCTAssertEqual(close.payload, [0x03, 0xE8])
    }

    func testWhatComesBeforeTheConnectionIsHeldForIt() throws {
        let echo = try EchoServer()
        defer { echo.close() }
        let gate = DispatchSemaphore(value: 0)
        let loopback = Self.loopback()
        let gated = PortForwardStreamRequest { port in
            gate.wait()
            return try loopback.connect(port)
        }
        let server = try StreamingServer()
        defer { server.close() }
        let url = try XCTUnwrap(server.url(for: .portForward(gated)))
        let client = try TestWebSocket(url: url, query: "port=\(echo.port)")
        defer { client.close() }
        _ = try client.readMessage()
        _ = try client.readMessage()
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        for start in stride(from: 0, to: data.count, by: 10_000) { try client.send([0] + data[start..<(start + 10_000)]) }
        // The pong comes after the server has taken every message before the ping: they are held.
        try client.send(Array("held?".utf8), opcode: 9)
        XCTAssertEqual(try client.readMessage()?.opcode, 10)
        gate.signal()
        var echoed: [UInt8] = []
        while echoed.count < data.count, let message = try client.readMessage() {
            XCTAssertEqual(message.payload.first, 0)
            echoed += message.payload.dropFirst()
        }
        XCTAssertEqual(echoed, data)
    }

    func testTheSessionClosesWhenEveryPortIsDone() throws {
        let closed = try Self.closedPort()
        let server = try StreamingServer()
        defer { server.close() }
        let url = try XCTUnwrap(server.url(for: .portForward(Self.loopback())))
        let client = try TestWebSocket(url: url, query: "port=\(closed)&port=\(closed)")
        defer { client.close() }
        var errors = 0
        while let message = try client.readMessage() {
            if message.opcode == 8 {
                XCTAssertEqual(message.payload, [0x03, 0xE8])
                break
            }
            if message.payload.count > 3, message.payload[0] % 2 == 1 { errors += 1 }
        }
        XCTAssertEqual(errors, 2)
    }

    func testBase64Variant() throws {
        let echo = try EchoServer()
        defer { echo.close() }
        let server = try StreamingServer()
        defer { server.close() }
        let url = try XCTUnwrap(server.url(for: .portForward(Self.loopback())))
        let client = try TestWebSocket(url: url, query: "port=\(echo.port)", protocols: ["v4.base64.channel.k8s.io"])
        defer { client.close() }
        XCTAssertEqual(client.subprotocol, "v4.base64.channel.k8s.io")
        let portText = Data([UInt8(echo.port & 0xFF), UInt8(echo.port >> 8)]).base64EncodedString()
        XCTAssertEqual(try client.readMessage()?.text, "0" + portText)
        XCTAssertEqual(try client.readMessage()?.text, "1" + portText)
        try client.send(Array(("0" + Data("hello, pod".utf8).base64EncodedString()).utf8), opcode: 1)
        let message = try XCTUnwrap(client.readMessage())
        XCTAssertEqual(message.opcode, 1)
        XCTAssertEqual(message.text, "0" + Data("hello, pod".utf8).base64EncodedString())
        // Not base64: the session ends with 1007.
        try client.send(Array("0*not base64*".utf8), opcode: 1)
        let close = try XCTUnwrap(client.readMessage())
        XCTAssertEqual(close.opcode, 8)
        XCTAssertEqual(close.payload, [0x03, 0xEF])
    }

    func testBadPortsAre400WithoutSpendingTheToken() throws {
        let server = try StreamingServer()
        defer { server.close() }
        let url = try XCTUnwrap(server.url(for: .portForward(Self.loopback())))
        for query in ["", "port=0", "port=http"] {
            let client = try TestWebSocket(url: url, query: query)
            XCTAssertEqual(client.status, 400, query)
            XCTAssertTrue(client.body.contains("query parameter port"), client.body)
            client.close()
        }
        XCTAssertEqual(server.tokens.waiting, 1)
        let exec = try TestWebSocket(url: url, query: "port=80", protocols: ["v5.channel.k8s.io"])
        XCTAssertEqual(exec.status, 403)
        XCTAssertTrue(exec.body.contains("v4.channel.k8s.io, v4.base64.channel.k8s.io"), exec.body)
        exec.close()
        XCTAssertEqual(server.tokens.waiting, 0, "an upgrade refused after the token check spends it")
        // client-go's SPDY-in-WebSocket tunnel sends no ports: its protocol is what is refused.
        let tunnelURL = try XCTUnwrap(server.url(for: .portForward(Self.loopback())))
        let tunnel = try TestWebSocket(url: tunnelURL, query: "", protocols: ["SPDY/3.1+portforward.k8s.io"])
        XCTAssertEqual(tunnel.status, 403)
        XCTAssertTrue(tunnel.body.contains("SPDY/3.1+portforward.k8s.io is served"), tunnel.body)
        tunnel.close()
    }

    // MARK: TLS files

    func testTLSFilesAreCheckedAndNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("podshim-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) } // a temp dir left behind is harmless
        let junk = directory + "/junk.pem"
        try "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n".write(toFile: junk, atomically: true, encoding: .utf8)
        let empty = directory + "/empty.pem"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let cases: [(StreamingServer.TLS, String, String)] = [
            (.init(certificateChainFile: directory + "/none.pem", privateKeyFile: junk), directory + "/none.pem", "ENOENT"),
            (.init(certificateChainFile: junk, privateKeyFile: directory + "/none.pem"), directory + "/none.pem", "ENOENT"),
            (.init(certificateChainFile: junk, privateKeyFile: junk), junk, "not a PEM certificate chain"),
            (.init(certificateChainFile: empty, privateKeyFile: empty), empty, "PEM certificate"),
            (.init(certificateChainFile: directory, privateKeyFile: junk), directory, "EISDIR"),
        ]
        for (tls, file, words) in cases {
            XCTAssertThrowsError(try tls.check(), file) { error in
                let description = "\(error)"
                XCTAssertTrue(description.contains(file) && description.contains(words), description)
            }
            XCTAssertThrowsError(try StreamingServer(options: .init(tls: tls)), "the server does not start without its certificate")
        }
    }

    // MARK: Helpers

    /// Connections to loopback instead of a pod's namespace, as the daemon's request makes them.
    static func loopback() -> PortForwardStreamRequest {
        PortForwardStreamRequest { port in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket", errno: .last) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                let error = SystemError("connect", path: "127.0.0.1:\(port)", errno: .last)
                Glibc.close(fd)
                throw error
            }
            return fd
        }
    }

    /// A loopback port nothing listens on (bound, then let go).
    static func closedPort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        let port = try XCTUnwrap(channel.localAddress?.port)
        try channel.close().wait()
        return port
    }
}

/// A TCP echo server on loopback.
final class EchoServer {
    private let channel: Channel
    let port: Int

    init() throws {
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        port = channel.localAddress?.port ?? 0
    }

    func close() {
        channel.close(promise: nil)
    }

    private final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }
}

/// A blocking WebSocket client (RFC 6455) for the tests: the handshake, masked frames out,
/// whole frames in. Every read waits at most 10 s (a hang fails the test instead of blocking it).
final class TestWebSocket {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private(set) var status = 0
    private(set) var subprotocol = ""
    private(set) var body = ""

    struct Message {
        var opcode: UInt8
        var payload: [UInt8]
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    init(url: String, query: String, protocols: [String] = ["v4.channel.k8s.io"]) throws {
        let components = try XCTUnwrap(URLComponents(string: url))
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(try XCTUnwrap(components.port)).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SystemError("connect", errno: .last) }
        let request = "GET \(components.path)\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: \(protocols.joined(separator: ", "))\r\n\r\n"
        try write(Array(request.utf8))
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            end = buffer.indices.first { buffer[$0...].starts(with: crlf2) }
            if end == nil, try !fill() { break }
        }
        let head = String(decoding: buffer[..<(end ?? buffer.count)], as: UTF8.self)
        buffer.removeFirst(min(buffer.count, (end ?? buffer.count) + 4))
        let lines = head.components(separatedBy: "\r\n")
        status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0].lowercased() == "sec-websocket-protocol" { subprotocol = parts[1] }
            if parts[0].lowercased() == "sec-websocket-accept" {
                XCTAssertEqual(parts[1], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") // RFC 6455's own example
            }
            if parts[0].lowercased() == "content-length" { length = Int(parts[1]) ?? 0 }
        }
        if status != 101 {
            while buffer.count < length, try fill() {}
            body = String(decoding: buffer.prefix(length), as: UTF8.self)
        }
    }

    func close() {
        Glibc.close(fd)
    }

    /// One masked frame with FIN.
    func send(_ payload: [UInt8], opcode: UInt8 = 2) throws {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    /// The next frame; nil at EOF.
    func readMessage() throws -> Message? {
        guard try need(2) else { return nil }
        let opcode = buffer[0] & 0x0F
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard try need(4) else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard try need(10) else { return nil }
            length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard try need(offset + length) else { return nil }
        let payload = Array(buffer[offset..<(offset + length)])
        buffer.removeFirst(offset + length)
        return Message(opcode: opcode, payload: payload)
    }

    private func need(_ count: Int) throws -> Bool {
        while buffer.count < count {
            guard try fill() else { return false }
        }
        return true
    }

    /// Reads what is there; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == ECONNRESET { return false }
            guard count >= 0 else { throw SystemError("recv", errno: .last) }
            buffer += chunk[..<count]
            return count > 0
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw SystemError("send", errno: .last) }
            sent += count
        }
    }
}

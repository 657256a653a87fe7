import Foundation
import PodshimImages
import PodshimSystem
import XCTest
@testable import PodshimRegistry

final class ReferenceTests: XCTestCase {
    private let digest = "sha256:" + String(repeating: "ab", count: 32)

    func testDockerHubNormalisation() throws {
        let nginx = try RegistryReference(parsing: "nginx")
        XCTAssertEqual(nginx.description, "docker.io/library/nginx:latest")
        XCTAssertEqual(nginx.apiHost, "registry-1.docker.io")
        XCTAssertEqual(try RegistryReference(parsing: "nginx:1.27").description, "docker.io/library/nginx:1.27")
        XCTAssertEqual(try RegistryReference(parsing: "team/app").description, "docker.io/team/app:latest")
        XCTAssertEqual(try RegistryReference(parsing: "index.docker.io/library/nginx").description, "docker.io/library/nginx:latest")
        XCTAssertEqual(try RegistryReference(parsing: "docker.io/nginx").repository, "library/nginx")
    }

    func testRegistryHosts() throws {
        let local = try RegistryReference(parsing: "localhost/app")
        XCTAssertEqual(local.registry, "localhost")
        XCTAssertEqual(local.repository, "app")
        let port = try RegistryReference(parsing: "127.0.0.1:5000/test/busybox:v1")
        XCTAssertEqual(port.registry, "127.0.0.1:5000")
        XCTAssertEqual(port.repository, "test/busybox")
        XCTAssertEqual(port.tag, "v1")
        XCTAssertEqual(port.apiHost, "127.0.0.1:5000")
        XCTAssertEqual(try RegistryReference(parsing: "registry.example/team/app:2").registry, "registry.example")
    }

    func testDigestWinsOverTag() throws {
        let pinned = try RegistryReference(parsing: "nginx:1.27@" + digest)
        XCTAssertEqual(pinned.digest, digest)
        XCTAssertEqual(pinned.manifestReference, digest)
        XCTAssertEqual(pinned.description, "docker.io/library/nginx@" + digest)
        let bare = try RegistryReference(parsing: "quay.io/x/y@" + digest)
        XCTAssertNil(bare.tag)
        XCTAssertEqual(bare.name, "quay.io/x/y")
    }

    func testInvalidReferences() {
        for bad in ["", "UPPER/case/Name", "nginx:", "nginx@sha256:short", "nginx@md5:" + String(repeating: "a", count: 32),
                    "a//b", "-leading", "nginx:" + String(repeating: "t", count: 129), "/abs/path"] {
            XCTAssertThrowsError(try RegistryReference(parsing: bad), bad) { error in
                guard case .invalidReference = error as? RegistryError else { return XCTFail("\(bad): \(error)") }
                XCTAssertEqual((error as? RegistryError)?.podshimError.code, .invalidArgument)
            }
        }
    }

    func testChallengeParsing() {
        let bearer = AuthChallenge.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#)
        XCTAssertEqual(bearer.count, 1)
        XCTAssertEqual(bearer[0].scheme, .bearer)
        XCTAssertEqual(bearer[0].realm, "https://auth.docker.io/token")
        XCTAssertEqual(bearer[0].service, "registry.docker.io")
        XCTAssertEqual(bearer[0].scope, "repository:library/nginx:pull")

        let basic = AuthChallenge.parse(#"Basic realm="podshim-test""#)
        XCTAssertEqual(basic, [AuthChallenge(scheme: .basic, parameters: ["realm": "podshim-test"])])

        let insufficient = AuthChallenge.parse(
            #"Bearer realm="http://127.0.0.1:1/token", service="s", scope="repository:a/b:pull,push", error="insufficient_scope""#)
        XCTAssertEqual(insufficient.first?.scope, "repository:a/b:pull,push")
        XCTAssertEqual(insufficient.first?.error, "insufficient_scope")

        let escaped = AuthChallenge.parse(#"Basic realm="a \"quoted\" realm""#)
        XCTAssertEqual(escaped.first?.realm, #"a "quoted" realm"#)

        let several = AuthChallenge.parse(#"Negotiate, Basic realm="r""#)
        XCTAssertEqual(several.map(\.scheme), [.basic])
        XCTAssertEqual(AuthChallenge.parse(""), [])
        XCTAssertEqual(AuthChallenge.parse("garbage ==== ,,,"), [])
    }

    func testCredentialsFromAuthConfig() throws {
        XCTAssertEqual(try RegistryCredentials.fromAuthConfig(username: "u", password: "p", auth: "", identityToken: "x", registryToken: ""),
                       RegistryCredentials(username: "u", password: "p"))
        let encoded = Data("alice:s3:cret\0".utf8).base64EncodedString()
        XCTAssertEqual(try RegistryCredentials.fromAuthConfig(username: "", password: "", auth: encoded, identityToken: "", registryToken: ""),
                       RegistryCredentials(username: "alice", password: "s3:cret"))
        XCTAssertEqual(try RegistryCredentials.fromAuthConfig(username: "", password: "", auth: "", identityToken: "refresh", registryToken: ""),
                       RegistryCredentials(identityToken: "refresh"))
        XCTAssertEqual(try RegistryCredentials.fromAuthConfig(username: "", password: "", auth: "", identityToken: "", registryToken: "t"),
                       RegistryCredentials(registryToken: "t"))
        XCTAssertNil(try RegistryCredentials.fromAuthConfig(username: "", password: "", auth: "", identityToken: "", registryToken: ""))
        XCTAssertThrowsError(try RegistryCredentials.fromAuthConfig(username: "", password: "", auth: "!!!", identityToken: "", registryToken: ""))
        // A credential never shows in its description.
        let secret = RegistryCredentials(username: "alice", password: "hunter2")
        XCTAssertFalse(secret.description.contains("hunter2"))
        XCTAssertFalse("\(secret)".contains("hunter2"))
        XCTAssertEqual(secret.basicHeader, "Basic " + Data("alice:hunter2".utf8).base64EncodedString())
    }

    func testTokenResponse() throws {
        let both = try JSONDecoder().decode(TokenResponse.self, from: Data(#"{"token":"a","access_token":"b","expires_in":3}"#.utf8))
        XCTAssertEqual(both.bearer, "b")
        XCTAssertEqual(both.lifetime, 60, "floored at 60 s")
        let token = try JSONDecoder().decode(TokenResponse.self, from: Data(#"{"token":"a","expires_in":300}"#.utf8))
        XCTAssertEqual(token.bearer, "a")
        XCTAssertEqual(token.lifetime, 300)
        XCTAssertNil(try JSONDecoder().decode(TokenResponse.self, from: Data("{}".utf8)).bearer)
    }

    func testErrorBodies() {
        XCTAssertEqual(RegistryClient.errorDetail(Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.utf8)),
                       "MANIFEST_UNKNOWN: manifest unknown")
        XCTAssertEqual(RegistryClient.errorDetail(Array("not json".utf8)), "")
    }

    func testErrorCodes() {
        XCTAssertEqual(RegistryError.unauthorized(host: "h", repository: "r", detail: "").podshimError.code, .unauthenticated)
        XCTAssertEqual(RegistryError.denied(host: "h", repository: "r", detail: "").podshimError.code, .permissionDenied)
        XCTAssertEqual(RegistryError.notFound(reference: "r", detail: "").podshimError.code, .notFound)
        XCTAssertEqual(RegistryError.digestMismatch(what: "w", expected: "a", actual: "b").podshimError.code, .failedPrecondition)
        XCTAssertEqual(RegistryError.transport(host: "h", detail: "refused").podshimError.code, .unavailable)
        XCTAssertEqual(RegistryError.stalled(reference: "r", seconds: 300).podshimError.code, .unavailable)
        XCTAssertTrue(RegistryError.unexpectedStatus(url: "u", status: 503, detail: "").isTransient)
        XCTAssertFalse(RegistryError.unexpectedStatus(url: "u", status: 400, detail: "").isTransient)
        XCTAssertTrue(RegistryError.tooManyRequests(host: "h").isTransient)
    }

    func testPlatformChoice() throws {
        func entry(_ os: String, _ architecture: String, _ variant: String? = nil, _ n: Int) -> OCIDescriptor {
            OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: "sha256:" + String(repeating: String(n), count: 64), size: 1,
                          platform: OCIPlatform(architecture: architecture, os: os, variant: variant))
        }
        let entries = [entry("unknown", "unknown", nil, 1), entry("linux", "arm", "v7", 2), entry("linux", "arm64", "v8", 3),
                       entry("linux", "amd64", nil, 4), entry("linux", "amd64", "v3", 5)]
        XCTAssertEqual(try ImagePuller.choosePlatform(entries, reference: "r", architecture: "amd64").digest, entries[3].digest)
        XCTAssertEqual(try ImagePuller.choosePlatform(entries, reference: "r", architecture: "arm64").digest, entries[2].digest)
        XCTAssertEqual(try ImagePuller.choosePlatform(entries, reference: "r", architecture: "arm").digest, entries[1].digest)
        XCTAssertThrowsError(try ImagePuller.choosePlatform(entries, reference: "r", architecture: "s390x")) { error in
            guard case .noMatchingPlatform(_, let wanted, let available) = error as? RegistryError else { return XCTFail("\(error)") }
            XCTAssertEqual(wanted, "linux/s390x")
            XCTAssertFalse(available.contains { $0.hasPrefix("unknown") }, "attestations are not platforms")
        }
    }

    func testConfigurationValidation() throws {
        let directory = NSTemporaryDirectory() + "podshim-registry-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func load(_ json: String) throws -> RegistryConfiguration {
            let path = directory + "/r.json"
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            return try RegistryConfiguration.load(path)
        }
        let good = try load(#"{"hosts": {"docker.io": {"mirrors": ["https://m.internal:5000/v2"]}, "r:1": {"insecure": true}}, "maxConcurrentDownloads": 2}"#)
        XCTAssertEqual(good.hosts["docker.io"]?.mirrors, ["https://m.internal:5000/v2"])
        XCTAssertEqual(good.maxConcurrentDownloads, 2)
        func message(_ json: String) -> String {
            do {
                _ = try load(json)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message(#"{"hosts": {"x": {"mirrors": ["ftp://m"]}}}"#).contains("hosts.x.mirrors[0]"))
        XCTAssertTrue(message(#"{"hosts": {"x": {"ca": ["/nonexistent/ca.pem"]}}}"#).contains("hosts.x.ca[0]"))
        XCTAssertTrue(message(#"{"hosts": {"x": {"clientCertificate": "/etc/hostname"}}}"#).contains("go together"))
        XCTAssertTrue(message(#"{"maxConcurrentDownloads": 0}"#).contains("maxConcurrentDownloads"))
        XCTAssertTrue(message(#"{"hosts": {"x": {"insecure": "yes"}}}"#).contains("insecure"))
        XCTAssertTrue(message("not json").hasPrefix("registry configuration: " + directory))
    }

    func testEndpointsPutMirrorsFirstAndKeepCredentialsFromThem() throws {
        let store = ImageStore(directory: NSTemporaryDirectory() + "podshim-unused-\(UUID().uuidString)")
        let configuration = RegistryConfiguration(hosts: [
            "docker.io": .init(mirrors: ["https://mirror.example:5000", "http://plain.example"]),
            "plain.example": .init(insecure: true),
            "mirror.example:5000": .init(username: "m", password: "mp"),
        ])
        let puller = ImagePuller(store: store, configuration: configuration, clock: ManualClock())
        defer { Task { await puller.shutdown() } }
        let endpoints = try puller.endpoints(for: RegistryReference(parsing: "nginx"),
                                             credentials: RegistryCredentials(username: "cri", password: "secret"))
        XCTAssertEqual(endpoints.map(\.base), ["https://mirror.example:5000", "http://plain.example", "https://registry-1.docker.io"])
        XCTAssertEqual(endpoints.map(\.isMirror), [true, true, false])
        XCTAssertEqual(endpoints[0].credentials, RegistryCredentials(username: "m", password: "mp"))
        XCTAssertNil(endpoints[1].credentials, "the CRI's credentials never go to a mirror")
        XCTAssertEqual(endpoints[2].credentials, RegistryCredentials(username: "cri", password: "secret"))
        XCTAssertEqual(endpoints[0].url("/v2/library/nginx/manifests/latest"),
                       "https://mirror.example:5000/v2/library/nginx/manifests/latest?ns=docker.io")
    }

    func testSleepOnTheInjectedClock() async throws {
        let clock = ManualClock()
        let task = Task { try await clock.sleep(seconds: 5) }
        while clock.pendingCount == 0 { await Task.yield() }
        clock.advance(bySeconds: 5)
        try await task.value
        let cancelled = Task { try await clock.sleep(seconds: 5) }
        while clock.pendingCount == 0 { await Task.yield() }
        cancelled.cancel()
        do {
            try await cancelled.value
            XCTFail("a cancelled sleep returned")
        } catch is CancellationError {}
        XCTAssertEqual(clock.pendingCount, 0, "the timer of a cancelled sleep is cancelled too")
    }
}

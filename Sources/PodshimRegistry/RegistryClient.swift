import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOSSL
import PodshimImages
import PodshimSystem
import Synchronization

/// One place a registry's distribution API is served from: a configured mirror or the registry itself.
struct RegistryEndpoint: Sendable, CustomStringConvertible {
    /// `https://host[:port]` (or `http://` for hosts configured insecure).
    var base: String
    /// `host[:port]`: the key for settings, credentials and cached tokens.
    var host: String
    var isMirror: Bool
    /// The registry the image belongs to (`docker.io`), sent to mirrors as `?ns=`.
    var namespace: String
    /// Sent to this endpoint only (and to its token realm).
    var credentials: RegistryCredentials?
    var tls: TLSConfiguration?

    func url(_ path: String) -> String {
        base + path + (isMirror ? "?ns=" + namespace : "")
    }

    var description: String { isMirror ? "mirror \(host)" : host }
}

/// The distribution API v2 pull side over async-http-client: manifests and blobs with their
/// digests verified as they stream, anonymous/Basic/Bearer auth with a token cache per host and
/// scope, retries with back-off for transient failures. Redirects (to blob storage) are followed
/// by the HTTP client, which drops Authorization when the origin changes.
final class RegistryClient: Sendable {
    static let manifestAccept = [
        OCIMediaType.imageIndex, OCIMediaType.imageManifest, OCIMediaType.dockerManifestList, OCIMediaType.dockerManifest,
    ].joined(separator: ", ")
    static let schema1Types: Set = [
        "application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]
    /// Manifests and configs: 4 MiB (containers/image); token and error bodies: 1 MiB.
    static let documentLimit = 4 << 20
    static let smallBodyLimit = 1 << 20

    let http: HTTPClient
    let clock: any Timekeeper
    /// Hosts configured `insecure`: the only plain-http token realms credentials may go to.
    let insecureHosts: Set<String>
    private let auth = Mutex<AuthState>(AuthState())

    private struct AuthState {
        /// The last challenge each host sent, so later requests authenticate at once.
        var challenges: [String: AuthChallenge] = [:]
        /// Bearer tokens by `host|scope`, with their expiry.
        var tokens: [String: (token: String, expires: MonotonicInstant)] = [:]
    }

    init(http: HTTPClient, clock: any Timekeeper, insecureHosts: Set<String> = []) {
        self.http = http
        self.clock = clock
        self.insecureHosts = insecureHosts
    }

    // MARK: Manifests

    struct Manifest: Sendable {
        var data: [UInt8]
        var mediaType: String
        var digest: String
    }

    /// The digest `reference` (a tag) resolves to, from a HEAD request's `Docker-Content-Digest`;
    /// nil when the registry does not say (then GET decides).
    func headManifest(_ endpoint: RegistryEndpoint, repository: String, reference: String) async throws(RegistryError) -> String? {
        let response = try await send(.HEAD, endpoint, "/v2/\(repository)/manifests/\(reference)", repository: repository,
                                      accept: Self.manifestAccept, timeout: .seconds(60))
        if let type = Self.contentType(response), Self.schema1Types.contains(type) {
            throw .unsupportedManifest(reference: "\(endpoint.namespace)/\(repository):\(reference)", detail: Self.schema1Message(type))
        }
        let digest = response.headers.first(name: "Docker-Content-Digest")
        return digest.flatMap { ImageReference.isSHA256Digest($0) ? $0 : nil }
    }

    /// GET of a manifest or index by tag or digest, verified: its sha256 must be `expectedDigest`
    /// (when given) and the `Docker-Content-Digest` the registry sent (when sha256).
    func getManifest(_ endpoint: RegistryEndpoint, repository: String, reference: String,
                     expectedDigest: String?) async throws(RegistryError) -> Manifest {
        let path = "/v2/\(repository)/manifests/\(reference)"
        let response = try await send(.GET, endpoint, path, repository: repository, accept: Self.manifestAccept, timeout: .seconds(120))
        let what = "manifest \(endpoint.namespace)/\(repository):\(reference)"
        // Schema 1 first: its digest covers the manifest without its JWS signatures, so the body
        // would only ever look corrupt.
        if let type = Self.contentType(response), Self.schema1Types.contains(type) {
            throw .unsupportedManifest(reference: what, detail: Self.schema1Message(type))
        }
        let data = try await collect(response, limit: Self.documentLimit, what: "manifest \(reference)")
        let digest = SHA256.digest(of: data)
        if let expectedDigest, expectedDigest != digest {
            throw .digestMismatch(what: what, expected: expectedDigest, actual: digest)
        }
        if let header = response.headers.first(name: "Docker-Content-Digest"), header.hasPrefix("sha256:"), header != digest {
            throw .digestMismatch(what: what + " (Docker-Content-Digest)", expected: header, actual: digest)
        }
        var mediaType = Self.contentType(response) ?? ""
        let probe = try? JSONDecoder().decode(OCIDocumentProbe.self, from: Data(data))
        if let probe {
            if probe.manifests != nil && probe.layers != nil {
                throw .unsupportedManifest(reference: what, detail: "the document has both manifests and layers (ambiguous)")
            }
            if let declared = probe.mediaType, !declared.isEmpty {
                if !mediaType.isEmpty, !OCIMediaType.indexTypes.union(OCIMediaType.manifestTypes).contains(mediaType),
                   mediaType != declared {
                    // A generic Content-Type (application/json, octet-stream): the body decides.
                    mediaType = declared
                } else if mediaType.isEmpty {
                    mediaType = declared
                } else if declared != mediaType {
                    throw .unsupportedManifest(reference: what, detail: "its mediaType \(declared) is not its Content-Type \(mediaType)")
                }
            }
            if !OCIMediaType.indexTypes.union(OCIMediaType.manifestTypes).contains(mediaType) {
                mediaType = probe.manifests != nil ? OCIMediaType.imageIndex : OCIMediaType.imageManifest
            }
        }
        if Self.schema1Types.contains(mediaType) {
            throw .unsupportedManifest(reference: what, detail: Self.schema1Message(mediaType))
        }
        return Manifest(data: data, mediaType: mediaType, digest: digest)
    }

    /// The media type of a response (`Content-Type` without parameters), nil when absent.
    static func contentType(_ response: HTTPClientResponse) -> String? {
        response.headers.first(name: "Content-Type")?.split(separator: ";").first
            .map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    static func schema1Message(_ type: String) -> String {
        "it is a Docker schema 1 manifest (\(type)), which podshim does not pull (deprecated, unverifiable); "
            + "push the image again as Docker schema 2 or OCI"
    }

    // MARK: Blobs

    /// A small blob (an image config), read whole and verified.
    func getSmallBlob(_ endpoint: RegistryEndpoint, repository: String, descriptor: OCIDescriptor) async throws(RegistryError) -> [UInt8] {
        guard descriptor.size >= 0, descriptor.size <= Int64(Self.documentLimit) else {
            throw .unsupportedManifest(reference: descriptor.digest, detail: "the config is \(descriptor.size) bytes (at most 4 MiB)")
        }
        let response = try await send(.GET, endpoint, "/v2/\(repository)/blobs/\(descriptor.digest)", repository: repository,
                                      accept: nil, timeout: .seconds(120))
        let data = try await collect(response, limit: Int(descriptor.size), what: "blob \(descriptor.digest)")
        let digest = SHA256.digest(of: data)
        guard digest == descriptor.digest, data.count == Int(descriptor.size) else {
            throw .digestMismatch(what: "blob \(descriptor.digest)", expected: descriptor.digest, actual: digest)
        }
        return data
    }

    /// Streams blob `descriptor` into `fd` (at its current offset), hashing as it goes; counts
    /// every byte into `progress`. Stops past the descriptor's size; the digest must match.
    func fetchBlob(_ endpoint: RegistryEndpoint, repository: String, descriptor: OCIDescriptor, into fd: Int32,
                   progress: @Sendable (Int) -> Void) async throws(RegistryError) {
        let response = try await send(.GET, endpoint, "/v2/\(repository)/blobs/\(descriptor.digest)", repository: repository,
                                      accept: nil, timeout: .hours(24))
        var hasher = PodshimImages.SHA256()
        var received: Int64 = 0
        do {
            for try await buffer in response.body {
                received += Int64(buffer.readableBytes)
                if received > descriptor.size {
                    throw RegistryError.digestMismatch(what: "blob \(descriptor.digest)", expected: "\(descriptor.size) bytes",
                                                       actual: "more")
                }
                try buffer.withUnsafeReadableBytes { bytes throws(RegistryError) in
                    hasher.update(bytes)
                    var offset = 0
                    while offset < bytes.count {
                        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 {
                            if errno == EINTR { continue }
                            throw RegistryError.store(.system(SystemError("write", path: descriptor.digest, errno: .last)))
                        }
                        offset += written
                    }
                }
                progress(buffer.readableBytes)
            }
        } catch let error as RegistryError {
            throw error
        } catch is CancellationError {
            throw .transport(host: endpoint.host, detail: "cancelled")
        } catch {
            throw .transport(host: endpoint.host, detail: "reading blob \(descriptor.digest): \(error)")
        }
        let digest = "sha256:" + hasher.finalizeHex()
        guard received == descriptor.size else {
            throw .digestMismatch(what: "blob \(descriptor.digest)", expected: "\(descriptor.size) bytes", actual: "\(received) bytes")
        }
        guard digest == descriptor.digest else {
            throw .digestMismatch(what: "blob \(descriptor.digest)", expected: descriptor.digest, actual: digest)
        }
    }

    // MARK: Requests

    /// Sends one request with authorization, answering one 401 challenge (a second one with a new
    /// scope when the token lacked it) and retrying transient failures (network, 5xx, 429) three
    /// times with back-off. Returns a 2xx response whose body the caller reads.
    func send(_ method: HTTPMethod, _ endpoint: RegistryEndpoint, _ path: String, repository: String, accept: String?,
              timeout: TimeAmount) async throws(RegistryError) -> HTTPClientResponse {
        var attempt = 0
        var challenged = 0
        var scope = "repository:\(repository):pull"
        while true {
            do throws(RegistryError) {
                var request = HTTPClientRequest(url: endpoint.url(path))
                request.method = method
                if let accept { request.headers.add(name: "Accept", value: accept) }
                request.headers.add(name: "User-Agent", value: "podshim")
                request.tlsConfiguration = endpoint.tls
                if let authorization = try await authorization(endpoint, scope: scope) {
                    request.headers.add(name: "Authorization", value: authorization)
                }
                let response: HTTPClientResponse
                do {
                    response = try await http.execute(request, timeout: timeout)
                } catch is CancellationError {
                    throw RegistryError.transport(host: endpoint.host, detail: "cancelled")
                } catch {
                    throw RegistryError.transport(host: endpoint.host, detail: Self.describe(error))
                }
                if (200..<300).contains(response.status.code) { return response }
                let detail = method == .HEAD ? "" : Self.errorDetail(await collectQuietly(response))
                switch response.status.code {
                case 401:
                    // One answer to a challenge; a second only when the token lacked a scope the registry names.
                    let challenges = AuthChallenge.parse(response.headers[canonicalForm: "WWW-Authenticate"].joined(separator: ", "))
                    guard let challenge = challenges.first(where: { $0.scheme == .bearer }) ?? challenges.first else {
                        throw RegistryError.unauthorized(host: endpoint.host, repository: repository, detail: detail)
                    }
                    let newScope = challenge.error == "insufficient_scope" ? challenge.scope.flatMap { $0 == scope ? nil : $0 } : nil
                    guard challenged == 0 || (challenged == 1 && newScope != nil) else {
                        throw RegistryError.unauthorized(host: endpoint.host, repository: repository, detail: detail)
                    }
                    if challenge.scheme == .basic && endpoint.credentials?.basicHeader == nil {
                        throw RegistryError.unauthorized(host: endpoint.host, repository: repository,
                                                         detail: detail.isEmpty ? "the registry wants Basic credentials" : detail)
                    }
                    if let newScope { scope = newScope }
                    let key = endpoint.host + "|" + scope
                    auth.withLock {
                        $0.challenges[endpoint.host] = challenge
                        $0.tokens[key] = nil
                    }
                    challenged += 1
                    continue
                case 403:
                    throw RegistryError.denied(host: endpoint.host, repository: repository, detail: detail)
                case 404:
                    throw RegistryError.notFound(reference: "\(endpoint.namespace)/\(repository) \(path.split(separator: "/").suffix(2).joined(separator: "/"))",
                                                 detail: detail + (endpoint.isMirror ? " (at \(endpoint))" : ""))
                case 429:
                    throw RegistryError.tooManyRequests(host: endpoint.host)
                default:
                    throw RegistryError.unexpectedStatus(url: endpoint.host + path, status: Int(response.status.code), detail: detail)
                }
            } catch {
                attempt += 1
                guard error.isTransient, attempt < 4, !Task.isCancelled else { throw error }
                do {
                    try await clock.sleep(seconds: 0.5 * Double(1 << (attempt - 1)))
                } catch {
                    throw .transport(host: endpoint.host, detail: "cancelled")
                }
            }
        }
    }

    /// The Authorization header for `endpoint` and `scope`: none until the host has challenged;
    /// Basic with the endpoint's credentials; a Bearer token from the cache or the realm.
    private func authorization(_ endpoint: RegistryEndpoint, scope: String) async throws(RegistryError) -> String? {
        if let token = endpoint.credentials?.registryToken, !token.isEmpty { return "Bearer " + token }
        guard let challenge = auth.withLock({ $0.challenges[endpoint.host] }) else { return nil }
        switch challenge.scheme {
        case .basic:
            return endpoint.credentials?.basicHeader
        case .bearer:
            let key = endpoint.host + "|" + scope
            let now = clock.now()
            if let cached = auth.withLock({ $0.tokens[key] }), cached.expires > now { return "Bearer " + cached.token }
            let response = try await fetchToken(challenge, endpoint: endpoint, scope: scope)
            guard let token = response.bearer else {
                throw .badTokenResponse(realm: challenge.realm ?? "", detail: "it has neither token nor access_token")
            }
            let expires = now.advanced(bySeconds: Double(response.lifetime - 10))
            auth.withLock { $0.tokens[key] = (token, expires) }
            return "Bearer " + token
        }
    }

    /// GET `realm?service=…&scope=…` (Basic credentials if any, anonymous otherwise), or with an
    /// identity token a POST of an OAuth2 refresh grant (falling back to GET if the realm refuses POST).
    private func fetchToken(_ challenge: AuthChallenge, endpoint: RegistryEndpoint, scope: String) async throws(RegistryError) -> TokenResponse {
        guard let realm = challenge.realm, var components = URLComponents(string: realm),
              let scheme = components.scheme, ["http", "https"].contains(scheme), components.host != nil else {
            throw .badTokenResponse(realm: challenge.realm ?? "(none)", detail: "the realm is not an http(s) URL")
        }
        let credentials = endpoint.credentials
        let realmHost = components.port.map { "\(components.host ?? ""):\($0)" } ?? (components.host ?? "")
        if scheme == "http", credentials?.basicHeader != nil || !(credentials?.identityToken.isEmpty ?? true),
           !insecureHosts.contains(realmHost) {
            throw .badTokenResponse(realm: realm, detail: "podshim sends credentials to a plain-http token realm only when "
                                    + "its host (\(realmHost)) is configured insecure")
        }
        if let identityToken = credentials?.identityToken, !identityToken.isEmpty {
            var request = HTTPClientRequest(url: realm)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            var form = URLComponents()
            form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"),
                               URLQueryItem(name: "refresh_token", value: identityToken),
                               URLQueryItem(name: "service", value: challenge.service ?? ""),
                               URLQueryItem(name: "scope", value: scope), URLQueryItem(name: "client_id", value: "podshim")]
            request.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
            request.tlsConfiguration = endpoint.tls
            if let response = try? await http.execute(request, timeout: .seconds(60)), response.status == .ok {
                return try await decodeToken(response, realm: realm)
            }
        }
        var items = components.queryItems ?? []
        if let service = challenge.service { items.append(URLQueryItem(name: "service", value: service)) }
        items.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = items
        var request = HTTPClientRequest(url: components.string ?? realm)
        request.tlsConfiguration = endpoint.tls
        if let basic = credentials?.basicHeader { request.headers.add(name: "Authorization", value: basic) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(60))
        } catch {
            throw .transport(host: components.host ?? realm, detail: "token request: " + Self.describe(error))
        }
        switch response.status.code {
        case 200: return try await decodeToken(response, realm: realm)
        case 401: throw .unauthorized(host: endpoint.host, repository: scope, detail: "the token realm refused the credentials")
        case 403: throw .denied(host: endpoint.host, repository: scope, detail: "the token realm denied \(scope)")
        default:
            throw .badTokenResponse(realm: realm, detail: "HTTP \(response.status.code)")
        }
    }

    private func decodeToken(_ response: HTTPClientResponse, realm: String) async throws(RegistryError) -> TokenResponse {
        let body = try await collect(response, limit: Self.smallBodyLimit, what: "token")
        do {
            return try JSONDecoder().decode(TokenResponse.self, from: Data(body))
        } catch {
            throw .badTokenResponse(realm: realm, detail: "the answer is not a token document")
        }
    }

    // MARK: Bodies

    private func collect(_ response: HTTPClientResponse, limit: Int, what: String) async throws(RegistryError) -> [UInt8] {
        do {
            var buffer = try await response.body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw .unsupportedManifest(reference: what, detail: "it is larger than \(limit) bytes")
        } catch {
            throw .transport(host: response.url?.host ?? "registry", detail: "reading \(what): \(Self.describe(error))")
        }
    }

    /// An error body for a message, at most 64 KiB; nothing when it cannot be read.
    private func collectQuietly(_ response: HTTPClientResponse) async -> [UInt8] {
        (try? await collect(response, limit: 64 << 10, what: "error")) ?? []
    }

    /// `CODE: message` of the first entry of a distribution error body
    /// (`{"errors":[{"code","message","detail"}]}`); "" otherwise.
    static func errorDetail(_ body: [UInt8]) -> String {
        struct Errors: Decodable {
            struct Entry: Decodable { var code: String?; var message: String? }
            var errors: [Entry]?
        }
        guard let decoded = try? JSONDecoder().decode(Errors.self, from: Data(body)), let first = decoded.errors?.first else { return "" }
        return [first.code, first.message].compactMap { $0 }.joined(separator: ": ")
    }

    static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        return "\(error)"
    }
}

extension Timekeeper {
    /// Suspends for `seconds` on this clock; throws CancellationError when the task is cancelled.
    public func sleep(seconds: Double) async throws {
        let deadline = now().advanced(bySeconds: seconds)
        let token = Mutex<TimerToken?>(nil)
        let continuationBox = Mutex<CheckedContinuation<Void, Error>?>(nil)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                continuationBox.withLock { $0 = continuation }
                let scheduled = schedule(at: deadline) { _ in
                    continuationBox.withLock { $0.take() }?.resume()
                }
                token.withLock { $0 = scheduled }
                if Task.isCancelled, let pending = continuationBox.withLock({ $0.take() }) {
                    _ = cancel(scheduled)
                    pending.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            if let pending = continuationBox.withLock({ $0.take() }) {
                if let scheduled = token.withLock({ $0 }) { _ = cancel(scheduled) }
                pending.resume(throwing: CancellationError())
            }
        }
    }
}

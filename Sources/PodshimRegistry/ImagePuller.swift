import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOSSL
import PodshimImages
import PodshimSystem
import Synchronization

/// What a pull is doing, for `podshim images pull`'s progress and the daemon's log.
public enum PullProgress: Sendable {
    /// The reference resolved to this manifest (or index) digest at this endpoint.
    case resolved(reference: String, digest: String, endpoint: String)
    /// The image has these layers (compressed digests and sizes), and which are already stored.
    case layers([(digest: String, size: Int64, stored: Bool)])
    /// Bytes of one layer received so far.
    case downloading(digest: String, received: Int64, total: Int64)
    /// One layer downloaded and being unpacked.
    case unpacking(digest: String)
    /// One layer in the store.
    case done(digest: String)
}

/// Pulls images from registries into an ``ImageStore``: resolves the reference (mirrors first),
/// follows an index to this platform's manifest, fetches the config, and downloads and unpacks
/// only the layers the store does not have, at most `maxConcurrentDownloads` at once. Concurrent
/// pulls share one download and one unpack per layer (by ChainID). A pull whose byte count does
/// not grow for the configured time is cancelled. Every digest is verified as it streams.
public final class ImagePuller: Sendable {
    public let store: ImageStore
    public let configuration: RegistryConfiguration
    let client: RegistryClient
    let clock: any Timekeeper
    private let flights = SingleFlight()
    /// Bytes received per layer (ChainID), shared by every pull waiting on that layer's one
    /// download, so that each pull's watchdog sees the progress of downloads it waits on.
    private let layerBytes = Mutex<[String: ByteCounter]>([:])
    private let ownsHTTP: Bool

    /// A puller with its own HTTP client (shut it down with ``shutdown()``).
    public convenience init(store: ImageStore, configuration: RegistryConfiguration = RegistryConfiguration(),
                            clock: any Timekeeper = DeadlineTimer.shared) {
        var http = HTTPClient.Configuration()
        http.redirectConfiguration = .follow(max: 10, allowCycles: false)
        http.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(15), read: .seconds(600))
        http.decompression = .disabled
        // A refused or failing connection fails its request at once; RegistryClient's own retries
        // (three, with back-off) decide, instead of the pool retrying until the connect timeout.
        http.connectionPool.retryConnectionEstablishment = false
        http.httpVersion = .automatic
        self.init(store: store, configuration: configuration, clock: clock,
                  http: HTTPClient(eventLoopGroupProvider: .singleton, configuration: http), ownsHTTP: true)
    }

    init(store: ImageStore, configuration: RegistryConfiguration, clock: any Timekeeper, http: HTTPClient, ownsHTTP: Bool) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.client = RegistryClient(http: http, clock: clock,
                                     insecureHosts: Set(configuration.hosts.filter { $0.value.insecure == true }.keys))
        self.ownsHTTP = ownsHTTP
    }

    /// Closes the HTTP client's connections.
    public func shutdown() async {
        if ownsHTTP { try? await client.http.shutdown() }  // already shut down: nothing to do
    }

    // MARK: Pull policies

    /// Kubernetes' `imagePullPolicy`.
    public enum PullPolicy: String, Sendable, CaseIterable {
        case always = "Always", ifNotPresent = "IfNotPresent", never = "Never"

        /// The Kubernetes default: Always for `:latest` or no tag (and no digest), IfNotPresent otherwise.
        public static func kubernetesDefault(for reference: String) -> PullPolicy {
            guard let parsed = try? RegistryReference(parsing: reference) else { return .ifNotPresent }  // not a registry reference
            return parsed.digest == nil && parsed.tag == "latest" ? .always : .ifNotPresent
        }
    }

    /// Whether `record`, found under `reference`, is an image imported by hand rather than one
    /// pulled from the registry `reference` names (it has no digest from there): such an image has
    /// no registry to come from and is used as it is, whatever the policy.
    public static func isLocal(_ record: ImageRecord, reference: String) -> Bool {
        guard let parsed = try? RegistryReference(parsing: reference) else { return true }
        return !record.pulled || !record.repoDigests.contains { digest in
            (try? RegistryReference(parsing: digest)).map { $0.name == parsed.name } ?? false
        }
    }

    /// Makes `reference` available as `policy` says: Never and IfNotPresent use what the store
    /// has (nil when Never finds nothing: the caller's resolve then says so); Always pulls, except
    /// an image imported by hand. Host paths are never pulled.
    public func ensure(_ reference: String, policy: PullPolicy, credentials: RegistryCredentials? = nil,
                       progress: (@Sendable (PullProgress) -> Void)? = nil) async throws(RegistryError) -> ImageRecord? {
        if ImageStore.isHostPath(reference) || policy == .never { return store.status(reference) }
        if let stored = store.status(reference), policy == .ifNotPresent || Self.isLocal(stored, reference: reference) {
            return stored
        }
        return try await pull(reference, credentials: credentials, progress: progress)
    }

    // MARK: Pulling

    /// Pulls `reference` (`nginx:1.27`, `registry.example/team/app@sha256:…`) with `credentials`
    /// for its registry (never sent to mirrors or redirect targets) and returns the stored image.
    public func pull(_ reference: String, credentials: RegistryCredentials? = nil,
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws(RegistryError) -> ImageRecord {
        let parsed = try RegistryReference(parsing: reference)
        let endpoints = try endpoints(for: parsed, credentials: credentials)
        var lastError: RegistryError?
        for (index, endpoint) in endpoints.enumerated() {
            do throws(RegistryError) {
                return try await pull(parsed, from: endpoint, progress: progress)
            } catch {
                lastError = error
                // A mirror that fails, or lacks the image, gives way to the next endpoint; the
                // registry's own answer (the last endpoint) is final, as is a corrupt image.
                let retryable: Bool
                switch error {
                case .notFound, .transport, .unexpectedStatus, .tooManyRequests, .unauthorized, .denied: retryable = true
                default: retryable = false
                }
                if !retryable || index == endpoints.count - 1 || Task.isCancelled { throw error }
            }
        }
        throw lastError ?? .notFound(reference: reference, detail: "no endpoint")
    }

    private func pull(_ reference: RegistryReference, from endpoint: RegistryEndpoint,
                      progress: (@Sendable (PullProgress) -> Void)?) async throws(RegistryError) -> ImageRecord {
        let repository = reference.repository
        // Resolve: a tag by HEAD (a digest the store already has needs no GET at all), then GET by digest.
        var resolvedDigest = reference.digest
        if resolvedDigest == nil {
            resolvedDigest = try await client.headManifest(endpoint, repository: repository, reference: reference.manifestReference)
        }
        let storedName: ImageStore.StoredName
        do throws(ImagePullError) {
            let shortRepository = ImageReference.withoutDefaultRegistry(reference.name)
            storedName = try store.storedName(repository: shortRepository, tag: reference.digest == nil ? reference.tag : nil,
                                              digest: resolvedDigest ?? reference.manifestReference)
            if let resolvedDigest, let existing = store.list().first(where: {
                $0.repoDigests.contains(reference.name + "@" + resolvedDigest)
            }) {
                if let adopted = try store.adopt(storedName, id: existing.id, moveTag: true) { return adopted }
            }
        } catch {
            throw .store(error)
        }
        var manifest = try await client.getManifest(endpoint, repository: repository, reference: resolvedDigest ?? reference.manifestReference,
                                                    expectedDigest: resolvedDigest)
        let topDigest = manifest.digest
        progress?(.resolved(reference: reference.description, digest: topDigest, endpoint: endpoint.description))
        var depth = 0
        while OCIMediaType.indexTypes.contains(manifest.mediaType) {
            depth += 1
            guard depth <= 2 else { throw .unsupportedManifest(reference: reference.description, detail: "indexes nest too deeply") }
            let index = try decode(OCIIndex.self, manifest.data, what: "index \(manifest.digest)")
            let chosen = try Self.choosePlatform(index.manifests, reference: reference.description)
            manifest = try await client.getManifest(endpoint, repository: repository, reference: chosen.digest, expectedDigest: chosen.digest)
        }
        guard OCIMediaType.manifestTypes.contains(manifest.mediaType) else {
            throw .unsupportedManifest(reference: reference.description, detail: "media type \(manifest.mediaType) is not an image manifest")
        }
        let imageManifest = try decode(OCIManifest.self, manifest.data, what: "manifest \(manifest.digest)")
        if let type = imageManifest.config.mediaType, !OCIMediaType.configTypes.contains(type) {
            throw .unsupportedManifest(reference: reference.description, detail: "its config is \(type), not an image config (an artifact?)")
        }
        for layer in imageManifest.layers {
            guard let type = layer.mediaType, OCIMediaType.layerCompression(type) != nil else {
                throw .unsupportedManifest(reference: reference.description,
                                           detail: "layer \(layer.digest) has media type \(layer.mediaType ?? "(none)"), which podshim cannot unpack")
            }
        }
        let configData = try await client.getSmallBlob(endpoint, repository: repository, descriptor: imageManifest.config)
        let configuration = try decode(OCIImageConfiguration.self, configData, what: "config \(imageManifest.config.digest)")
        let chain: [String]
        do throws(ImagePullError) {
            chain = try ImageStore.checkedChain(imageManifest, configuration, path: "config \(imageManifest.config.digest)")
        } catch {
            throw .store(error)
        }
        let id = imageManifest.config.digest
        let repoDigest = reference.name + "@" + topDigest
        let size = UInt64(max(0, imageManifest.layers.reduce(imageManifest.config.size + Int64(manifest.data.count)) { $0 + $1.size }))
        let record = ImageRecord(id: id, repoTags: storedName.tag.isEmpty ? [] : [storedName.repoTag], repoDigests: [repoDigest],
                                 size: size, config: configuration.imageConfig, rootfs: "", created: configuration.createdDate,
                                 layers: chain, pulled: true)

        // The same image (config digest) already stored, from another registry or under another
        // tag: one record gets this tag and digest too, as containerd keeps one image per id.
        do throws(ImagePullError) {
            if store.list().contains(where: { $0.id == id && $0.layers.allSatisfy(store.hasLayer) }),
               let adopted = try store.adopt(storedName, id: id, moveTag: true) {
                return try store.addRepoDigest(repoDigest, toImage: id) ?? adopted
            }
        } catch {
            throw .store(error)
        }
        let lease = ImageStore.pullLeasePrefix + UUID().uuidString.lowercased()
        do throws(ImagePullError) { try store.lease(lease, layers: chain) } catch { throw .store(error) }
        defer { store.release(lease) }
        let missing = imageManifest.layers.indices.filter { !store.hasLayer(chain[$0]) }
        progress?(.layers(imageManifest.layers.enumerated().map { ($0.element.digest, $0.element.size, !missing.contains($0.offset)) }))
        if !missing.isEmpty {
            try await fetchLayers(missing.map { (imageManifest.layers[$0], chain[$0], configuration.rootfs!.diffIDs[$0]) },
                                  endpoint: endpoint, repository: repository, reference: reference.description, progress: progress)
        }
        do throws(ImagePullError) {
            var installed = try store.installLayered(storedName, id: id, record: record)
            if !installed.repoDigests.contains(repoDigest) || !installed.pulled {
                installed = try store.addRepoDigest(repoDigest, toImage: id) ?? installed
            }
            return installed
        } catch {
            throw .store(error)
        }
    }

    // MARK: Layers

    /// Downloads and unpacks `layers`, a few at a time, under the stall watchdog.
    private func fetchLayers(_ layers: [(descriptor: OCIDescriptor, chainID: String, diffID: String)], endpoint: RegistryEndpoint,
                             repository: String, reference: String, progress: (@Sendable (PullProgress) -> Void)?) async throws(RegistryError) {
        let counters = layerBytes.withLock { table in
            layers.map { layer in
                if let counter = table[layer.chainID] { return counter }
                let counter = ByteCounter()
                table[layer.chainID] = counter
                return counter
            }
        }
        defer {
            layerBytes.withLock { table in
                for (layer, counter) in zip(layers, counters) where table[layer.chainID] === counter && counter.isDone {
                    table[layer.chainID] = nil
                }
            }
        }
        let limit = configuration.maxConcurrentDownloads ?? 3
        let stallSeconds = configuration.pullProgressTimeoutSeconds ?? 300
        do {
            try await withThrowingTaskGroup(of: Void.self) { outer in
                outer.addTask {
                    // Every layer starts at once; at most `limit` download at a time and at most
                    // `unpackLimit` unpack at a time, so a layer downloads while others unpack.
                    let downloads = AsyncLimiter(limit)
                    let unpacks = AsyncLimiter(max(2, ProcessInfo.processInfo.activeProcessorCount))
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (layer, counter) in zip(layers, counters) {
                            group.addTask {
                                try await self.flights.run(layer.chainID) {
                                    defer { counter.markDone() }
                                    try await self.fetchLayer(layer.descriptor, chainID: layer.chainID, diffID: layer.diffID,
                                                              endpoint: endpoint, repository: repository, counter: counter,
                                                              downloads: downloads, unpacks: unpacks, progress: progress)
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                if stallSeconds > 0 {
                    outer.addTask {
                        // The watchdog: cancels the pull when no byte came for stallSeconds.
                        let interval = min(10.0, Double(stallSeconds) / 2)
                        var last = counters.reduce(0) { $0 + $1.value }
                        var since = self.clock.now()
                        while true {
                            try await self.clock.sleep(seconds: interval)
                            let now = self.clock.now()
                            let current = counters.reduce(0) { $0 + $1.value }
                            if current != last {
                                last = current
                                since = now
                            } else if now.milliseconds(since: since) >= Double(stallSeconds) * 1000 {
                                throw RegistryError.stalled(reference: reference, seconds: stallSeconds)
                            }
                        }
                    }
                }
                try await outer.next()
                outer.cancelAll()
            }
        } catch let error as RegistryError {
            throw error
        } catch is CancellationError {
            throw .transport(host: endpoint.host, detail: "cancelled")
        } catch {
            throw .transport(host: endpoint.host, detail: "\(error)")
        }
    }

    /// One layer: downloaded into `<store>/.ingest/`, unpacked (off the async executor), deleted.
    private func fetchLayer(_ descriptor: OCIDescriptor, chainID: String, diffID: String, endpoint: RegistryEndpoint,
                            repository: String, counter: ByteCounter, downloads: AsyncLimiter, unpacks: AsyncLimiter,
                            progress: (@Sendable (PullProgress) -> Void)?) async throws {
        if store.hasLayer(chainID) { return }  // a concurrent pull of another image stored it
        let ingest = store.directory + "/" + ImageStore.ingestName
        let path = ingest + "/" + descriptor.digest.dropFirst("sha256:".count) + "-" + UUID().uuidString.lowercased()
        let fd: Int32
        do throws(SystemError) {
            try FileSystem.createDirectory(ingest, mode: 0o700)
            fd = try libcCall("open", path: path) { open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
        } catch {
            throw RegistryError.store(.system(error))
        }
        defer {
            close(fd)
            unlink(path)
        }
        let received = ByteCounter()
        let total = descriptor.size
        let clock = self.clock
        let reportState = Mutex(clock.now())
        try await downloads.acquire()
        do {
            try await client.fetchBlob(endpoint, repository: repository, descriptor: descriptor, into: fd) { bytes in
            counter.add(Int64(bytes))
            let now = received.add(Int64(bytes))
            guard let progress else { return }
            let instant = clock.now()
            let due = reportState.withLock { last -> Bool in
                guard instant.milliseconds(since: last) >= 200 || now == total else { return false }
                last = instant
                return true
            }
            if due { progress(.downloading(digest: descriptor.digest, received: now, total: total)) }
            }
        } catch {
            await downloads.release()
            throw error
        }
        await downloads.release()
        try await unpacks.acquire()
        progress?(.unpacking(digest: descriptor.digest))
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw RegistryError.store(.system(SystemError("lseek", path: path, errno: .last))) }
        let store = self.store
        let digest = descriptor.digest
        do {
            try await offloadToThread(name: "podshim-unpack") { () throws in
                do throws(ImagePullError) {
                    try store.unpackLayer(blob: fd, path: path, chainID: chainID, digest: digest, diffID: diffID)
                } catch {
                    throw RegistryError.store(error)
                }
            }
        } catch {
            await unpacks.release()
            throw error
        }
        await unpacks.release()
        progress?(.done(digest: descriptor.digest))
    }

    // MARK: Endpoints

    /// The mirrors configured for the registry, in order, then the registry itself.
    func endpoints(for reference: RegistryReference, credentials: RegistryCredentials?) throws(RegistryError) -> [RegistryEndpoint] {
        var endpoints: [RegistryEndpoint] = []
        let registrySettings = configuration.hosts[reference.registry] ?? configuration.hosts[reference.apiHost]
            ?? RegistryConfiguration.Host()
        for mirror in registrySettings.mirrors ?? [] {
            guard let url = URL(string: mirror), let scheme = url.scheme, let host = url.host else { continue }
            let hostPort = url.port.map { "\(host):\($0)" } ?? host
            let settings = configuration.settings(for: hostPort)
            if scheme == "http" && settings.insecure != true {
                throw .configuration("mirror \(mirror) is plain http but hosts.\"\(hostPort)\".insecure is not true")
            }
            var base = "\(scheme)://\(hostPort)"
            let path = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
            if !path.isEmpty && path != "/v2" { base += path.hasSuffix("/v2") ? String(path.dropLast(3)) : path }
            endpoints.append(RegistryEndpoint(base: base, host: hostPort, isMirror: true, namespace: reference.registry,
                                              credentials: configured(settings), tls: try tls(settings)))
        }
        let host = reference.apiHost
        let settings = configuration.hosts[reference.registry] ?? configuration.hosts[host] ?? RegistryConfiguration.Host()
        let scheme = settings.insecure == true ? "http" : "https"
        endpoints.append(RegistryEndpoint(base: "\(scheme)://\(host)", host: host, isMirror: false, namespace: reference.registry,
                                          credentials: credentials ?? configured(settings), tls: try tls(settings)))
        return endpoints
    }

    private func configured(_ settings: RegistryConfiguration.Host) -> RegistryCredentials? {
        guard let username = settings.username, !username.isEmpty else { return nil }
        return RegistryCredentials(username: username, password: settings.password ?? "")
    }

    /// TLS for a host: the system roots plus its CA files, its client certificate, or no verification.
    private func tls(_ settings: RegistryConfiguration.Host) throws(RegistryError) -> TLSConfiguration? {
        let custom = !(settings.ca ?? []).isEmpty || settings.clientCertificate != nil || settings.skipVerify == true
            || settings.insecure == true
        guard custom else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            for file in settings.ca ?? [] {
                tls.additionalTrustRoots.append(.certificates(try NIOSSLCertificate.fromPEMFile(file)))
            }
            if let certificate = settings.clientCertificate, let key = settings.clientKey {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
        } catch {
            throw .configuration("cannot load a certificate or key: \(error)")
        }
        if settings.skipVerify == true || settings.insecure == true { tls.certificateVerification = .none }
        return tls
    }

    // MARK: Helpers

    private func decode<T: Decodable>(_ type: T.Type, _ data: [UInt8], what: String) throws(RegistryError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(data))
        } catch {
            throw .unsupportedManifest(reference: what, detail: "it cannot be decoded: \(error)")
        }
    }

    /// This machine's entry of an index: linux and this architecture, the variant closest to this
    /// CPU's (none, or v8 on arm64, v1 on amd64 preferred); `unknown/unknown` attestations skipped;
    /// ties go to the first entry.
    static func choosePlatform(_ entries: [OCIDescriptor], reference: String,
                               architecture: String = OCILayout.hostArchitecture) throws(RegistryError) -> OCIDescriptor {
        let preferredVariants: [String?] = switch architecture {
        case "amd64": [nil, "v1", "v2", "v3"]
        case "arm64": [nil, "v8"]
        case "arm": ["v7", "v6", "v5", nil]
        default: [nil]
        }
        let candidates = entries.filter { $0.platform?.os == "linux" && $0.platform?.architecture == architecture }
        for variant in preferredVariants {
            if let match = candidates.first(where: { $0.platform?.variant == variant }) { return match }
        }
        if let first = candidates.first { return first }
        let available = entries.compactMap { entry -> String? in
            guard let platform = entry.platform, platform.os != "unknown" else { return nil }
            return [platform.os, platform.architecture, platform.variant].compactMap { $0 }.joined(separator: "/")
        }
        throw .noMatchingPlatform(reference: reference, wanted: "linux/\(architecture)", available: available)
    }
}

/// One download and unpack per key (a ChainID) at a time: a second caller waits for the first's.
/// A caller whose shared run was cancelled by its starter (who went away) starts its own.
actor SingleFlight {
    private var running: [String: Task<Void, Error>] = [:]

    func run(_ key: String, _ work: @escaping @Sendable () async throws -> Void) async throws {
        while true {
            if let task = running[key] {
                do {
                    return try await task.value
                } catch {
                    if task.isCancelled && !Task.isCancelled { continue }  // the starter left; this caller still wants the layer
                    throw error
                }
            }
            let task = Task { try await work() }
            running[key] = task
            defer { running[key] = nil }
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        }
    }
}

/// A byte count shared by a layer's download and the watchdogs of the pulls waiting on it.
final class ByteCounter: Sendable {
    private let atomic = Atomic<Int64>(0)
    private let done = Atomic<Bool>(false)

    var value: Int64 { atomic.load(ordering: .relaxed) }

    /// The download this counts has ended (stored, or failed).
    var isDone: Bool { done.load(ordering: .relaxed) }

    func markDone() { done.store(true, ordering: .relaxed) }

    /// Adds `bytes`; returns the new total.
    @discardableResult
    func add(_ bytes: Int64) -> Int64 { atomic.add(bytes, ordering: .relaxed).newValue }
}

/// A counting semaphore for tasks: at most `limit` holders; others wait in order. Releasing more
/// than was acquired is ignored (each holder releases once, on every path).
actor AsyncLimiter {
    private let limit: Int
    private var held = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { self.limit = max(1, limit) }

    /// Waits for a free place; throws CancellationError (holding nothing) when cancelled first.
    func acquire() async throws {
        if held < limit {
            held += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
        // `release` handed its place over: held already counts this holder.
        if Task.isCancelled {
            release()
            throw CancellationError()
        }
    }

    func release() {
        if let next = waiters.first {
            waiters.removeFirst()
            next.resume()  // the place passes to the next waiter
        } else if held > 0 {
            held -= 1
        }
    }
}

import ArgumentParser
import Foundation
import Glibc
import PodshimImages
import PodshimRegistry
import Synchronization

/// `podshim images pull REF`: from a registry into the local store, with progress.
struct ImagesPull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull an image from a registry into the local store.",
        discussion: """
            REF is [registry/]repository[:tag][@sha256:digest]; without a registry it is docker.io (nginx = docker.io/library/nginx:latest). Layers the store already has are not downloaded again. Credentials: --creds, else the Docker config file (--authfile, default $DOCKER_CONFIG/config.json or ~/.docker/config.json); they are sent to that registry only, never to mirrors.

            --registry-config names a JSON file (the same as podshim serve's):
              {"hosts": {"docker.io": {"mirrors": ["https://mirror.internal:5000"]},
                         "mirror.internal:5000": {"ca": ["/etc/podshim/mirror-ca.pem"]},
                         "registry.lab:5000": {"insecure": true}},
               "pullProgressTimeoutSeconds": 300, "maxConcurrentDownloads": 3}
            """
    )

    @OptionGroup var options: ImageStoreOptions

    @Option(help: ArgumentHelp("Registry configuration (JSON): mirrors, CA files, insecure registries.", valueName: "file"))
    var registryConfig: String?

    @Option(help: ArgumentHelp("Credentials for the image's registry.", valueName: "user:password"))
    var creds: String?

    @Option(help: ArgumentHelp("A Docker config.json to take credentials from.", valueName: "file"))
    var authfile: String?

    @Flag(name: .short, help: "Print only the image id.")
    var quiet = false

    @Argument(help: ArgumentHelp("The image to pull.", valueName: "ref"))
    var reference: String

    func run() async throws {
        let configuration: RegistryConfiguration
        do {
            configuration = try registryConfig.map { try RegistryConfiguration.load($0) } ?? RegistryConfiguration()
        } catch {
            throw ValidationError("--registry-config: \(error)")
        }
        let parsed: RegistryReference
        do {
            parsed = try RegistryReference(parsing: reference)
        } catch {
            throw ValidationError("\(error)")
        }
        var credentials: RegistryCredentials?
        if let creds {
            guard let colon = creds.firstIndex(of: ":") else { throw ValidationError("--creds must be user:password") }
            credentials = RegistryCredentials(username: String(creds[..<colon]), password: String(creds[creds.index(after: colon)...]))
        } else {
            credentials = try DockerConfig.credentials(for: parsed, file: authfile)
        }
        let puller = ImagePuller(store: options.store, configuration: configuration)
        let printer = PullPrinter(terminal: !quiet && isatty(STDERR_FILENO) == 1, quiet: quiet)
        let result: Result<ImageRecord, RegistryError>
        do {
            result = .success(try await puller.pull(reference, credentials: credentials) { printer.show($0) })
        } catch {
            result = .failure(error)
        }
        await puller.shutdown()
        switch result {
        case .success(let record):
            printer.finish()
            print(quiet ? record.id : "\(record.id) \(record.repoTags.joined(separator: " "))")
        case .failure(let error):
            printer.finish()
            FileHandle.standardError.write(Data("podshim images pull: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Credentials from a Docker config.json (`auths.<registry>.auth` or `identitytoken`).
enum DockerConfig {
    static func credentials(for reference: RegistryReference, file: String?) throws -> RegistryCredentials? {
        let path: String
        if let file {
            path = file
        } else if let directory = ProcessInfo.processInfo.environment["DOCKER_CONFIG"] {
            path = directory + "/config.json"
        } else {
            path = (ProcessInfo.processInfo.environment["HOME"] ?? "/root") + "/.docker/config.json"
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            if file != nil { throw ValidationError("--authfile \(path) cannot be read") }
            return nil
        }
        struct Document: Decodable {
            struct Entry: Decodable { var auth: String?; var identitytoken: String?; var username: String?; var password: String? }
            var auths: [String: Entry]?
        }
        guard let document = try? JSONDecoder().decode(Document.self, from: data), let auths = document.auths else {
            throw ValidationError("\(path) is not a Docker config file (no \"auths\")")
        }
        let names = reference.registry == RegistryReference.defaultRegistry
            ? ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
            : [reference.registry, "https://" + reference.registry, "http://" + reference.registry]
        guard let entry = names.lazy.compactMap({ auths[$0] }).first else { return nil }
        do {
            return try RegistryCredentials.fromAuthConfig(username: entry.username ?? "", password: entry.password ?? "",
                                                          auth: entry.auth ?? "", identityToken: entry.identitytoken ?? "",
                                                          registryToken: "")
        } catch {
            throw ValidationError("\(path): the entry for \(reference.registry): \(error)")
        }
    }
}

/// Pull progress on stderr: on a terminal one line per layer, redrawn in place (bytes, rate);
/// otherwise plain lines (resolved, each layer started, finished), at most one a second per layer.
final class PullPrinter: Sendable {
    private struct Layer {
        var digest: String
        var total: Int64
        var received: Int64 = 0
        var state = "waiting"
        var started: Date?
        var lastLine = Date.distantPast
    }

    private struct State {
        var layers: [Layer] = []
        var drawn = 0
    }

    private let terminal: Bool
    private let quiet: Bool
    private let state = Mutex(State())

    init(terminal: Bool, quiet: Bool) {
        self.terminal = terminal
        self.quiet = quiet
    }

    func show(_ event: PullProgress) {
        guard !quiet else { return }
        state.withLock { state in
            switch event {
            case .resolved(let reference, let digest, let endpoint):
                write("\(reference): \(digest) (from \(endpoint))\n", state: &state, freshLine: true)
                return
            case .layers(let layers):
                state.layers = layers.map { Layer(digest: $0.digest, total: $0.size, state: $0.stored ? "already stored" : "waiting") }
                if !terminal {
                    let missing = layers.filter { !$0.stored }
                    write("\(layers.count) layers, \(missing.count) to download (\(Self.bytes(missing.reduce(0) { $0 + $1.size })))\n",
                          state: &state, freshLine: true)
                }
            case .downloading(let digest, let received, let total):
                guard let index = state.layers.firstIndex(where: { $0.digest == digest }) else { return }
                if state.layers[index].started == nil { state.layers[index].started = Date() }
                state.layers[index].received = received
                state.layers[index].total = total
                state.layers[index].state = "downloading"
                if !terminal, Date().timeIntervalSince(state.layers[index].lastLine) >= 1 {
                    state.layers[index].lastLine = Date()
                    write(Self.line(state.layers[index]) + "\n", state: &state, freshLine: true)
                }
            case .unpacking(let digest):
                guard let index = state.layers.firstIndex(where: { $0.digest == digest }) else { return }
                state.layers[index].state = "unpacking"
            case .done(let digest):
                guard let index = state.layers.firstIndex(where: { $0.digest == digest }) else { return }
                state.layers[index].state = "done"
                state.layers[index].received = state.layers[index].total
                if !terminal { write(Self.line(state.layers[index]) + "\n", state: &state, freshLine: true) }
            }
            if terminal { redraw(&state) }
        }
    }

    func finish() {
        state.withLock { state in
            if terminal && state.drawn > 0 { redraw(&state) }
        }
    }

    private func redraw(_ state: inout State) {
        var text = state.drawn > 0 ? "\u{1B}[\(state.drawn)A" : ""
        for layer in state.layers { text += "\r\u{1B}[2K" + Self.line(layer) + "\n" }
        state.drawn = state.layers.count
        FileHandle.standardError.write(Data(text.utf8))
    }

    private func write(_ text: String, state: inout State, freshLine: Bool) {
        FileHandle.standardError.write(Data(text.utf8))
        if terminal { state.drawn = 0 }
    }

    private static func line(_ layer: Layer) -> String {
        let short = String(layer.digest.dropFirst("sha256:".count).prefix(12))
        var text = "\(short): \(layer.state)"
        if layer.state == "downloading" || layer.state == "done" || layer.state == "unpacking" {
            text += " \(bytes(layer.received))/\(bytes(layer.total))"
            if let started = layer.started {
                let seconds = max(0.001, Date().timeIntervalSince(started))
                text += " (\(bytes(Int64(Double(layer.received) / seconds)))/s)"
            }
        }
        return text
    }

    static func bytes(_ count: Int64) -> String {
        let units = ["B", "kB", "MB", "GB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

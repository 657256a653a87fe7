import ArgumentParser
import Foundation
import Glibc
import Logging
import PodshimDaemon
import PodshimRegistry
import PodshimRuntime
import PodshimStreaming
import PodshimSystem

/// `podshim serve`: the long-running CRI daemon.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the Kubernetes CRI (runtime.v1, gRPC) on a Unix socket.",
        discussion: """
            A node agent (a kubelet, crictl, or `podshim ctl`) drives pods through the socket. The socket is created with mode 0660, owned by root and --socket-group; every connecting peer is checked with SO_PEERCRED (root or a member of the group), others are disconnected. A stale socket left by a crashed daemon is replaced; a live daemon's socket is never taken.

            Every sandbox and container is recorded atomically under <state-dir>/cri. SIGTERM or SIGINT stops the daemon and leaves the pods running; started again with the same --state-dir, podshim re-adopts them (PID and start time must match) and reports those that vanished meanwhile as exited with reason Unknown. This holds after SIGKILL too.

            Images come from the local store (--image-dir); PullImage imports a local directory or OCI image layout and never contacts a registry.

            Settings can also come from a config file, by default /etc/podshim/podshim.conf (a missing default file is fine): `key = value` lines and `#` comments, the keys being the long options without the dashes (socket, socket-group, state-dir, root, image-dir, log-dir, pause-binary, cgroup-root, cgroup-driver, require-cgroups = true|false, pod-pids-limit). An option given on the command line wins over the file, the file over the built-in default.

            Under systemd (Type=notify, $NOTIFY_SOCKET set) the daemon reports READY=1 once it serves and STOPPING=1 when it stops.
            """
    )

    static let defaultSocket = "/run/podshim/podshim.sock"

    @Option(help: ArgumentHelp("The config file. Default: \(ServeConfigFile.defaultPath), if it exists.", valueName: "path"))
    var config: String?

    @Option(help: ArgumentHelp("The Unix socket to serve on. Default: \(Serve.defaultSocket).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("A group (name or gid) whose members may use the socket besides root.", valueName: "group"))
    var socketGroup: String?

    @Option(help: ArgumentHelp("How the kubelet names the cgroup_parent it sends: cgroupfs (a path such as /kubepods/burstable/pod<uid>) or systemd (a slice such as kubepods-burstable-pod<uid>.slice). Must match the kubelet's cgroupDriver; podshim reports it in the RuntimeConfig RPC. Default: cgroupfs.", valueName: "driver"))
    var cgroupDriver: CgroupDriver?

    @OptionGroup var host: HostOptions
    @OptionGroup var networkOptions: NetworkOptions

    @Option(help: ArgumentHelp("The address of the streaming server that Exec and PortForward URLs point to. Default: 127.0.0.1 (the kubelet on this node is its one client).", valueName: "address"))
    var streamAddress: String?

    @Option(help: ArgumentHelp("The streaming server's port. Default: 0, a free port chosen at start-up.", valueName: "port"))
    var streamPort: Int?

    @Option(help: ArgumentHelp("Seconds after which a streaming session with no traffic is closed. Default: 14400 (4 h).", valueName: "seconds"))
    var streamIdleTimeout: Int64?

    @Option(name: .customLong("stream-tls-cert"), help: ArgumentHelp("A PEM file with the streaming server's certificate chain (its own certificate first): the streaming server then speaks HTTPS and its URLs are https://. Needs --stream-tls-key. Default: plain HTTP.", valueName: "file"))
    var streamTLSCert: String?

    @Option(name: .customLong("stream-tls-key"), help: ArgumentHelp("A PEM file with the private key of --stream-tls-cert (not encrypted).", valueName: "file"))
    var streamTLSKey: String?

    @Option(help: ArgumentHelp("A JSON file with registry mirrors, CA files, client certificates, insecure registries and the pull progress timeout (see podshim images pull --help). Default: none.", valueName: "file"))
    var registryConfig: String?

    func validate() throws {
        if let streamPort, !(0...65535).contains(streamPort) { throw ValidationError("--stream-port must be 0…65535") }
        if let streamIdleTimeout, streamIdleTimeout < 1 { throw ValidationError("--stream-idle-timeout must be at least 1") }
    }

    func run() async throws {
        let file: ServeConfigFile.Values
        do {
            file = try ServeConfigFile.load(path: config ?? ServeConfigFile.defaultPath, required: config != nil)
        } catch {
            FileHandle.standardError.write(Data("podshim serve: config file \(error.description)\n".utf8))
            throw ExitCode(1)
        }
        let streamTLS: StreamingServer.TLS?
        switch streamingTLS(file: file) {
        case .success(let tls): streamTLS = tls
        case .failure(let error):
            FileHandle.standardError.write(Data("podshim serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard getuid() == 0 else {
            FileHandle.standardError.write(Data("podshim serve: must run as root\n".utf8))
            throw ExitCode(1)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        var configuration = host.runtimeConfiguration(file: file)
        configuration.cgroupDriver = cgroupDriver ?? file.cgroupDriver ?? .cgroupfs
        do {
            configuration.network = try networkOptions.serveSetting(file: file)
        } catch {
            FileHandle.standardError.write(Data("podshim serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let socket = self.socket.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
            ?? file.socket ?? Serve.defaultSocket
        let streaming = StreamingServer.Options(
            host: streamAddress ?? file.streamAddress ?? "127.0.0.1", port: streamPort ?? file.streamPort ?? 0,
            idleTimeoutSeconds: streamIdleTimeout ?? file.streamIdleTimeout ?? 4 * 3600, tls: streamTLS)
        var options = Daemon.Options(
            socketPath: socket, socketGroup: socketGroup ?? file.socketGroup, configuration: configuration,
            version: Podshim.configuration.version, streaming: streaming)
        if let registryFile = registryConfig.map({ $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 })
            ?? file.registryConfig {
            do {
                options.registry = try RegistryConfiguration.load(registryFile)
            } catch {
                FileHandle.standardError.write(Data("podshim serve: --registry-config: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        do {
            try await Daemon(options: options).run()
        } catch {
            // The daemon could not start (a failure while serving ends `run` normally).
            FileHandle.standardError.write(Data("podshim serve: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension Serve {
    /// The streaming server's TLS files, each from its flag or else its config file key: both or
    /// neither, and both read and checked now, so that a bad one stops the start (the daemon
    /// itself would only log it and serve without a streaming server). The error names the flag
    /// or key, and the file.
    func streamingTLS(file: ServeConfigFile.Values) -> Result<StreamingServer.TLS?, PodshimError> {
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        let certificate = streamTLSCert.map { (path: absolute($0), source: "--stream-tls-cert") }
            ?? file.streamTLSCert.map { (path: $0, source: "stream-tls-cert (config file)") }
        let key = streamTLSKey.map { (path: absolute($0), source: "--stream-tls-key") }
            ?? file.streamTLSKey.map { (path: $0, source: "stream-tls-key (config file)") }
        switch (certificate, key) {
        case (nil, nil):
            return .success(nil)
        case (let certificate?, nil):
            return .failure(PodshimError(.invalidArgument, subject: certificate.source,
                                         message: "needs --stream-tls-key as well (both or neither)"))
        case (nil, let key?):
            return .failure(PodshimError(.invalidArgument, subject: key.source,
                                         message: "needs --stream-tls-cert as well (both or neither)"))
        case (let certificate?, let key?):
            let tls = StreamingServer.TLS(certificateChainFile: certificate.path, privateKeyFile: key.path)
            do {
                try tls.check()
            } catch {
                // The error names its file; which flag gave it is told by what the file was read as
                // (both flags may name one file).
                var error = error
                error.operation = "\(error.operation.contains("private key") ? key.source : certificate.source): \(error.operation)"
                return .failure(error)
            }
            return .success(tls)
        }
    }
}

extension CgroupDriver: ExpressibleByArgument {}

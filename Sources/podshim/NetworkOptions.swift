import ArgumentParser
import Foundation
import PodshimNetwork
import PodshimRuntime

/// How pods are networked (`podshim serve` and `podshim run`).
struct NetworkOptions: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        /// CNI plugins: the default network of --cni-conf-dir.
        case cni
        /// Loopback only.
        case none
        /// The host's network (`podshim run` only: every pod as with hostNetwork: true).
        case host
    }

    @Option(help: ArgumentHelp("Pod networking: cni (the CNI plugins of the first configuration in --cni-conf-dir), none (each pod gets a network namespace with only loopback up), or, for podshim run, host. Default: cni for serve; for run, cni when a configuration exists, else none.", valueName: "mode"))
    var network: Mode?

    @Option(help: ArgumentHelp("Where CNI network configurations are (.conflist, .conf, .json; the first by name is the pod network). Default: \(CNIConfigurationDirectory.defaultDirectory).", valueName: "dir"))
    var cniConfDir: String?

    @Option(help: ArgumentHelp("Where CNI plugin executables are, ':'-separated. Default: \(CNIConfigurationDirectory.defaultBinDirectories.joined(separator: ":")).", valueName: "dirs"))
    var cniBinDir: String?

    @Option(help: ArgumentHelp("Seconds a CNI plugin call may take before it is killed. Default: 60.", valueName: "seconds"))
    var cniTimeout: Double?

    func validate() throws {
        if let cniTimeout, !(cniTimeout > 0) { throw ValidationError("--cni-timeout must be more than 0") }
    }

    /// The CNI directories: the command line, else the config file's, else the defaults.
    func directory(file: ServeConfigFile.Values = .init()) -> CNIConfigurationDirectory {
        CNIConfigurationDirectory(
            directory: cniConfDir.map(Self.absolute) ?? file.cniConfDir ?? CNIConfigurationDirectory.defaultDirectory,
            binDirectories: (cniBinDir ?? file.cniBinDir).map { $0.split(separator: ":").map { Self.absolute(String($0)) } }
                ?? CNIConfigurationDirectory.defaultBinDirectories)
    }

    /// The setting `podshim serve` runs with (`host` is refused: a daemon's pods choose for themselves).
    func serveSetting(file: ServeConfigFile.Values) throws -> NetworkSetting {
        switch network ?? file.network ?? .cni {
        case .none: return .none
        case .host: throw ValidationError("--network host is for podshim run; a CRI pod asks for the host's network itself")
        case .cni: return .cni(directory(file: file), timeoutSeconds: cniTimeout ?? file.cniTimeout ?? 60)
        }
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

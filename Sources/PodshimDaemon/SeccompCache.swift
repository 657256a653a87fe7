import PodshimRuntime
import PodshimSecurity
import PodshimSpec
import Synchronization

/// Compiled seccomp programs by profile and capability set: RuntimeDefault compiles in a few
/// milliseconds, and nearly every container asks for the same one. Localhost profiles are files
/// that may change between two containers, so they are compiled every time.
final class SeccompCache: Sendable {
    private let programs = Mutex<[String: [UInt8]?]>([:])

    /// The filter for `choice` under `capabilities` (nil: unconfined), compiled once per key.
    func filter(_ choice: SeccompChoice, capabilities: CapabilitySet, configuration: RuntimeConfiguration,
                field: String) throws(ManifestError) -> [UInt8]? {
        var cacheable = true
        if case .localhost = choice { cacheable = false }
        let key = "\(choice)/\(capabilities.rawValue)"
        if cacheable, let cached = programs.withLock({ $0[key] }) { return cached }
        let filter = try PodPlanner.seccompFilter(choice, capabilities: capabilities, configuration: configuration, field: field)
        if cacheable { programs.withLock { $0[key] = filter } }
        return filter
    }

    /// Programs held (for tests).
    var count: Int { programs.withLock { $0.count } }
}

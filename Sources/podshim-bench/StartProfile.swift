import Foundation

/// A runtime's own account of one StartContainer, when it gives one: ContainerStatus(verbose)
/// `info["startProfile"]` = `{"stages":[{"stage":"<name>","ns":<Int>}, …]}`, stages in order.
/// Runtimes without it (containerd) leave the key out, and the report has no profile section.
struct StartProfile: Decodable, Equatable, Sendable {
    struct Stage: Decodable, Equatable, Sendable {
        let stage: String
        let ns: Int64
    }

    let stages: [Stage]

    /// The key in ContainerStatusResponse.info.
    static let infoKey = "startProfile"

    static func parse(_ text: String) throws -> StartProfile {
        try JSONDecoder().decode(StartProfile.self, from: Data(text.utf8))
    }
}

extension LatencyBook {
    /// One histogram per stage name, names in the order first seen.
    mutating func record(_ profile: StartProfile) {
        for stage in profile.stages {
            record(stage.stage, nanoseconds: UInt64(Swift.max(0, stage.ns)))
        }
    }
}

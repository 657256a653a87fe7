import ArgumentParser

/// `podshim`: a CRI-like container runtime shim. Subcommands are thin; the work is in PodshimRuntime.
@main
struct Podshim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podshim",
        abstract: "Run Kubernetes-style pods: a pause process holding the pod's namespaces, and containers joining them.",
        discussion: """
            podshim runs as root. Images live in a local store (`podshim images`); no registry is contacted.

            `podshim run` runs one pod in the foreground; `podshim serve` is the CRI daemon a node agent talks to.
            """,
        version: "0.1.0",
        subcommands: [Run.self, Serve.self, Ctl.self, Images.self, Cleanup.self]
    )
}

import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl images [REF]`: ListImages.
struct CtlImages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "List the images the runtime has.",
        discussion: """
            Each of an image's names is a row; an image without a name shows as <none>.
            """
    )

    @OptionGroup var options: CtlOptions

    @Flag(name: .short, help: "Print only the image ids, one a line.")
    var quiet = false

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    @Argument(help: ArgumentHelp("Only this image.", valueName: "image"))
    var image: String?

    func run() async throws {
        try await CtlReport.run("images", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var request = Runtime_V1_ListImagesRequest()
                if let image { request.filter.image.image = image }
                var response = try await session.images.listImages(request, options: session.options)
                response.images.sort { ($0.repoTags.first ?? $0.id) < ($1.repoTags.first ?? $1.id) }
                if quiet {
                    CtlOutput.lines(response.images.map(\.id))
                } else if output == .json {
                    CtlOutput.line(try CtlJSON.pretty(response))
                } else {
                    let rows = response.images.flatMap { image in
                        (image.repoTags.isEmpty ? ["<none>"] : image.repoTags).map { name in
                            [name, CtlFormat.shortID(image.id), CtlFormat.bytes(image.size), image.pinned ? "pinned" : ""]
                        }
                    }
                    CtlOutput.lines(CtlFormat.table(header: ["IMAGE", "IMAGE ID", "SIZE", ""], rows: rows))
                }
            }
        }
    }
}

/// `podshim ctl pull REF`: PullImage.
struct CtlPull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Make an image available to the runtime; print the image's reference.",
        discussion: """
            What pulling means is up to the daemon (podshim's images are local root filesystems). The request may take a while, so --timeout defaults to 5 minutes here.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Give up after this many seconds; 0 waits forever.", valueName: "seconds"))
    var timeoutSeconds: Int = 300

    @Argument(help: ArgumentHelp("The image to pull.", valueName: "image"))
    var image: String

    func validate() throws {
        if timeoutSeconds < 0 { throw ValidationError("--timeout must be 0 or more seconds") }
    }

    func run() async throws {
        let socket = connection.socket
        try await CtlReport.run("pull", socket: socket) {
            try await CtlSession.with(socket: socket, deadline: CtlOptions.deadline(seconds: timeoutSeconds)) { session in
                var request = Runtime_V1_PullImageRequest()
                request.image.image = image
                let response = try await session.images.pullImage(request, options: session.options)
                CtlOutput.line(response.imageRef)
            }
        }
    }
}

/// `podshim ctl rmi REF...`: RemoveImage.
struct CtlRemoveImages: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi",
        abstract: "Remove images; print each removed one.",
        discussion: """
            An image may be named by one of its names, its id, or a unique prefix of its id.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("Image names or ids.", valueName: "image"))
    var images: [String]

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image") }
    }

    func run() async throws {
        try await CtlReport.run("rmi", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let known = try await session.images.listImages(Runtime_V1_ListImagesRequest(), options: session.options)
                try await CtlEach.run("rmi", ids: images, socket: options.socket) { given in
                    var request = Runtime_V1_RemoveImageRequest()
                    request.image.image = try Self.resolve(given, among: known.images)
                    _ = try await session.images.removeImage(request, options: session.options)
                    CtlOutput.line(given)
                }
            }
        }
    }

    /// A name or id the daemon knows stays as it is; otherwise it must be a unique id prefix
    /// (with or without `sha256:`); failing that it is passed on for the daemon to judge.
    static func resolve(_ given: String, among images: [Runtime_V1_Image]) throws -> String {
        if images.contains(where: { $0.id == given || $0.repoTags.contains(given) || $0.repoDigests.contains(given) }) {
            return given
        }
        let ids = images.map(\.id)
        let bare = ids.map { $0.hasPrefix("sha256:") ? String($0.dropFirst("sha256:".count)) : $0 }
        let wanted = given.hasPrefix("sha256:") ? String(given.dropFirst("sha256:".count)) : given
        guard bare.contains(where: { $0.hasPrefix(wanted) }) else { return given }
        let match = try CtlFormat.resolve(wanted, among: bare, kind: "image")
        return ids[bare.firstIndex(of: match)!]
    }
}

/// `podshim ctl imagefsinfo`: ImageFsInfo.
struct CtlImageFsInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagefsinfo",
        abstract: "Show the space and inodes the image and container filesystems use."
    )

    @OptionGroup var options: CtlOptions

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        try await CtlReport.run("imagefsinfo", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let response = try await session.images.imageFsInfo(Runtime_V1_ImageFsInfoRequest(), options: session.options)
                if output == .json {
                    CtlOutput.line(try CtlJSON.pretty(response))
                    return
                }
                func rows(_ kind: String, _ filesystems: [Runtime_V1_FilesystemUsage]) -> [[String]] {
                    filesystems.map { usage in
                        [
                            kind, usage.fsID.mountpoint,
                            usage.hasUsedBytes ? CtlFormat.bytes(usage.usedBytes.value) : "-",
                            usage.hasInodesUsed ? String(usage.inodesUsed.value) : "-",
                        ]
                    }
                }
                CtlOutput.lines(CtlFormat.table(
                    header: ["FILESYSTEM", "MOUNTPOINT", "USED", "INODES USED"],
                    rows: rows("images", response.imageFilesystems) + rows("containers", response.containerFilesystems)))
            }
        }
    }
}

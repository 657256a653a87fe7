import ArgumentParser
import Foundation
import PodshimImages
import PodshimRuntime

/// `podshim images`: the local image store, used directly (no daemon needed; safe beside one).
struct Images: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "List, pull, import and remove images in the local store.",
        discussion: """
            An image is named by references [registry/]repository[:tag] (":latest" when there is no tag); several references may name one image, whose id comes from its content. Manifests and CRI requests name an image by reference, by id (or a unique prefix of 12+ hex digits), or by an absolute root filesystem path. Images come from registries with `podshim images pull`, or from directories and OCI layouts with `podshim images import`; images from registries and OCI layouts are stacks of layers shared between images.
            """,
        subcommands: [ImagesList.self, ImagesPull.self, ImagesImport.self, ImagesRemove.self],
        defaultSubcommand: ImagesList.self
    )
}

/// The store's location, as `podshim run` and `podshim serve` take it.
struct ImageStoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The image store.", valueName: "dir"))
    var imageDir = "/var/lib/podshim/images"

    var store: ImageStore { ImageStore(directory: imageDir) }
}

/// `podshim images [list]`.
struct ImagesList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the images: one row per reference.")

    @OptionGroup var options: ImageStoreOptions

    @Flag(name: .short, help: "Print only the image ids, one a line.")
    var quiet = false

    func run() throws {
        let records = options.store.list()
        if quiet {
            CtlOutput.lines(Array(Set(records.map(\.id))).sorted())
            return
        }
        let rows = records.flatMap { record in
            (record.repoTags.isEmpty ? ["<none>"] : record.repoTags).map { name in
                [name, CtlFormat.shortID(record.id), CtlFormat.bytes(record.size), record.rootfs]
            }
        }
        CtlOutput.lines(CtlFormat.table(header: ["IMAGE", "IMAGE ID", "SIZE", "ROOTFS"], rows: rows))
    }
}

/// `podshim images import SRC REF`.
struct ImagesImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Store a root filesystem directory, an OCI image layout or an OCI image archive under a reference.",
        discussion: """
            SRC is a directory (a root filesystem, or an OCI image layout when it holds an oci-layout file; DIR:REF picks one image of a layout holding several) or a file (an OCI image archive: a tar, optionally gzip'd, of a layout). Every blob of an OCI image is verified against its digest. Importing the same content again under another reference adds the reference; a reference naming another image moves to this one. --cmd, --entrypoint, --env and --workdir give a root filesystem directory its default process, as an image config would.
            """
    )

    @OptionGroup var options: ImageStoreOptions

    @Option(parsing: .singleValue, help: ArgumentHelp("The default command (repeat for each argument; root filesystem directories only).", valueName: "arg"))
    var cmd: [String] = []

    @Option(parsing: .singleValue, help: ArgumentHelp("The entrypoint (repeat for each argument; root filesystem directories only).", valueName: "arg"))
    var entrypoint: [String] = []

    @Option(parsing: .singleValue, help: ArgumentHelp("An environment variable NAME=value (repeatable; root filesystem directories only).", valueName: "env"))
    var env: [String] = []

    @Option(help: ArgumentHelp("The working directory (root filesystem directories only).", valueName: "dir"))
    var workdir: String?

    @Argument(help: ArgumentHelp("The source: a directory or an archive file.", valueName: "src"))
    var source: String

    @Argument(help: ArgumentHelp("The reference to store it under, e.g. busybox:1.36 or registry.example/app:2.", valueName: "ref"))
    var reference: String

    func run() throws {
        let config = ImageConfig(entrypoint: entrypoint, cmd: cmd, env: env, workingDir: workdir)
        let absolute = source.hasPrefix("/") ? source : FileManager.default.currentDirectoryPath + "/" + source
        do {
            let record = try options.store.importImage(from: absolute, as: reference, config: config)
            print("\(record.id) \(record.repoTags.joined(separator: " "))")
        } catch {
            throw ValidationError("import \(source) as \(reference): \(error)")
        }
    }
}

/// `podshim images rm REF|ID…`.
struct ImagesRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove references or images.",
        discussion: """
            A reference is removed from its image, and the image with it when that was its last reference. An id (or a unique prefix of 12+ hex digits) removes the image and all its references. Containers already running keep their root filesystem until they are removed.
            """
    )

    @OptionGroup var options: ImageStoreOptions

    @Argument(help: ArgumentHelp("References or ids.", valueName: "ref|id"))
    var images: [String]

    func run() throws {
        var failed = false
        for image in images {
            do {
                switch try options.store.untag(image) {
                case .untagged(let record):
                    print("untagged \(image) (image \(CtlFormat.shortID(record.id)) keeps \(record.repoTags.joined(separator: ", ")))")
                case .removed(let records):
                    for id in Set(records.map(\.id)).sorted() { print("deleted \(id)") }
                case .notFound:
                    FileHandle.standardError.write(Data("podshim: image \(image) not found\n".utf8))
                    failed = true
                }
            } catch {
                FileHandle.standardError.write(Data("podshim: remove \(image): \(error)\n".utf8))
                failed = true
            }
        }
        // Layers no image and no container (lease) uses any more are freed now.
        do {
            let collected = try options.store.collectGarbage(measure: true)
            if !collected.removedLayers.isEmpty {
                print("freed \(collected.removedLayers.count) layers (\(CtlFormat.bytes(collected.freedBytes)))")
            }
        } catch {
            FileHandle.standardError.write(Data("podshim: layer garbage collection: \(error)\n".utf8))
            failed = true
        }
        if failed { throw ExitCode.failure }
    }
}

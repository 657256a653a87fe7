// swift-tools-version:6.1
// podshim — a CRI-like container runtime shim for Linux.
//
// Dependencies point one way:
//   CShims ← PodshimSystem ← PodshimCgroups  ← PodshimRuntime ← PodshimDaemon ← podshim (executable)
//                          ← PodshimSecurity ↗                  PodshimCRI ↗
//                          ← PodshimImages   ↗
//          ← PodshimProcess (spawn plans, Spawner: the one other importer of CShims) ↗
//                                PodshimSpec ↗
import PackageDescription

let package = Package(
    name: "podshim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "podshim", targets: ["podshim"]),
        .library(name: "PodshimRuntime", targets: ["PodshimRuntime"]),
        .library(name: "PodshimSpec", targets: ["PodshimSpec"]),
        .executable(name: "podshim-bench", targets: ["podshim-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        // TLS for the streaming server (already resolved: grpc-swift-nio-transport depends on it).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.36.0"),
        // The registry client (distribution API v2 over HTTPS): pooling, redirects, streaming bodies.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // podshim-bench's latency histograms.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        /// Raw syscalls libc lacks, constants that import badly, and the one post-fork path.
        /// `pause/` is a separate static C program built by hack/build-pause.sh, not part of this target.
        .target(
            name: "CShims",
            path: "CShims",
            exclude: ["pause"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        /// Typed errors, file descriptors, pidfds, mounts: Swift over the syscalls.
        .target(
            name: "PodshimSystem",
            dependencies: [
                "CShims",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        /// libseccomp and libcap (Debian's libseccomp-dev, libcap-dev), called from Swift in the parent.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        /// libzstd (Debian's libzstd-dev): zstd-compressed image layers, decompressed in process.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        /// SPDY/3 framing (frames, header compression with zlib) for the CRI streaming server.
        .target(name: "PodshimSPDY", dependencies: ["CZlib"]),
        /// The CRI streaming server (Exec, Attach, PortForward over SPDY/3.1 and WebSocket, TLS optional), on swift-nio.
        .target(
            name: "PodshimStreaming",
            dependencies: [
                "PodshimSPDY", "PodshimSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .systemLibrary(name: "CCap", providers: [.apt(["libcap-dev"])]),
        /// Capabilities and seccomp: names, default sets, profiles compiled to BPF before the clone.
        .target(
            name: "PodshimSecurity",
            dependencies: ["PodshimSystem", "CSeccomp", "CCap"]
        ),
        /// cgroup v2: hierarchy detection, the pod's cgroups, limit files, usage, cgroup.kill.
        .target(
            name: "PodshimCgroups",
            dependencies: ["PodshimSystem"]
        ),
        /// The Pod manifest: parsing with field paths, validation, the validated model. Pure.
        .target(
            name: "PodshimSpec",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        /// Images: the store (content-addressed layers, unpacked root filesystems), OCI and directory
        /// formats, references; later the registry client.
        .target(
            name: "PodshimImages",
            dependencies: [
                "PodshimSystem",
                "CZlib", "CZstd",  // layers decompressed in process (LayerDecompressor)
                .product(name: "Crypto", package: "swift-crypto"),  // SHA-256 of image ids and blobs
            ]
        ),
        /// Pulling from OCI/Docker registries: references, the distribution API v2 client, auth
        /// (anonymous, Basic, Bearer tokens), hosts configuration (mirrors, CAs, insecure), and the
        /// puller that feeds ImageStore's layer store.
        .target(
            name: "PodshimRegistry",
            dependencies: [
                "PodshimImages", "PodshimSystem",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// Processes: the spawn plan (a pure value), the Spawner that hands it to spawn.c, process
        /// identities that survive pid reuse.
        .target(
            name: "PodshimProcess",
            dependencies: ["PodshimSystem", "PodshimSecurity", "PodshimCgroups", "CShims"]
        ),
        /// Pods and containers: the planners, termination, supervision, logs, the foreground pod runner.
        .target(
            name: "PodshimRuntime",
            dependencies: ["PodshimSystem", "PodshimCgroups", "PodshimSecurity", "PodshimSpec", "PodshimImages", "PodshimProcess",
                           "PodshimNetwork"]
        ),
        /// The Kubernetes CRI runtime.v1 messages and gRPC stubs, generated from Proto/ by hack/gen-proto.sh.
        .target(
            name: "PodshimCRI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ]
        ),
        /// `podshim serve`: the CRI services over a guarded Unix socket, durable state, re-adoption.
        /// Pod networking through CNI plugins: configuration, plugin calls, the attachment cache, netns pins.
        .target(
            name: "PodshimNetwork",
            dependencies: ["PodshimSystem"]
        ),
        .target(
            name: "PodshimDaemon",
            dependencies: [
                "PodshimRuntime", "PodshimImages", "PodshimProcess", "PodshimCRI", "PodshimSystem", "PodshimSpec", "PodshimCgroups",
                "PodshimNetwork", "PodshimStreaming", "PodshimRegistry",
                // Imported directly: the seccomp cache (CapabilitySet).
                "PodshimSecurity",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "podshim",
            dependencies: [
                "PodshimRuntime", "PodshimImages", "PodshimSpec", "PodshimDaemon", "PodshimCRI", "PodshimNetwork", "PodshimStreaming",
                "PodshimSPDY", "PodshimRegistry",  // ctl's streaming client (exec -i/-t, attach, port-forward)
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        /// `podshim-bench`: a CRI benchmark client (per-RPC latency, pod lifecycle, scale) for any
        /// runtime.v1 server (podshim, containerd); it uses only standard CRI messages.
        .executableTarget(
            name: "podshim-bench",
            dependencies: [
                "PodshimCRI",
                "PodshimDaemon",  // EventLoopTaskExecutor, shared with the CRI server
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                // One event loop that also runs the bench's tasks (EventLoopTaskExecutor).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        /// Test doubles shared by the unit test targets (a fake launcher); never linked into podshim.
        .target(
            name: "PodshimTesting",
            dependencies: ["PodshimRuntime", "PodshimSystem", "PodshimSpec"]
        ),
        .testTarget(name: "PodshimSpecTests", dependencies: ["PodshimSpec"]),
        .testTarget(name: "PodshimSecurityTests", dependencies: ["PodshimSecurity", "PodshimSystem"]),
        .testTarget(name: "PodshimNetworkTests", dependencies: ["PodshimNetwork", "PodshimSystem"]),
        .testTarget(name: "PodshimSPDYTests", dependencies: ["PodshimSPDY"]),
        .testTarget(name: "PodshimImagesTests", dependencies: ["PodshimImages", "PodshimSystem"]),
        .testTarget(name: "PodshimRegistryTests", dependencies: ["PodshimRegistry", "PodshimImages", "PodshimSystem"]),
        .testTarget(name: "PodshimStreamingTests", dependencies: ["PodshimStreaming"]),
        .testTarget(name: "PodshimCgroupsTests", dependencies: ["PodshimCgroups", "PodshimSystem"]),
        .testTarget(name: "PodshimRuntimeTests", dependencies: ["PodshimRuntime", "PodshimImages", "PodshimSystem", "PodshimTesting",
                                                                 .product(name: "Logging", package: "swift-log"),
                                                                 .product(name: "GRPCCore", package: "grpc-swift-2")]),
        .testTarget(name: "PodshimCtlTests", dependencies: ["podshim"]),
        .testTarget(name: "PodshimBenchTests", dependencies: ["podshim-bench", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        .testTarget(name: "PodshimDaemonTests", dependencies: ["PodshimDaemon", "PodshimCRI", "PodshimSpec", "PodshimRuntime", "PodshimProcess", "PodshimImages", "PodshimSystem", "PodshimTesting",
                                                                 .product(name: "Logging", package: "swift-log")]),
        /// Root integration tests: drive the podshim binary on the real kernel.
        .testTarget(
            name: "PodshimIntegrationTests",
            dependencies: ["PodshimRuntime", "PodshimSystem", "PodshimSpec"],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (hack/fuzz.sh): only when PODSHIM_FUZZ is set. podshim's own parsing
// modules and the fuzz entry point are built with coverage (-sanitize=fuzzer) and ASan; the
// dependencies (NIO, gRPC, protobuf) are not instrumented, so the same .build is reused and
// only these modules compile again.
if Context.environment["PODSHIM_FUZZ"] != nil {
    let instrumented: Set<String> = ["PodshimSystem", "PodshimSpec", "PodshimSecurity", "PodshimImages", "PodshimDaemon",
                                     "PodshimSPDY", "PodshimNetwork", "PodshimRegistry"]
    for target in package.targets where instrumented.contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=fuzzer,address"])]
    }
    package.targets.append(.executableTarget(
        name: "podshim-fuzz",
        dependencies: ["PodshimSpec", "PodshimSecurity", "PodshimImages", "PodshimDaemon", "PodshimCRI", "PodshimSPDY",
                       "PodshimNetwork", "PodshimRegistry"],
        path: "Tests/Fuzz/Sources",
        swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-parse-as-library"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]))
    package.products.append(.executable(name: "podshim-fuzz", targets: ["podshim-fuzz"]))
}

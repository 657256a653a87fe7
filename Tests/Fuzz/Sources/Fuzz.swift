// libFuzzer entry point for podshim's parsers of untrusted input. One binary, the target chosen
// by PODSHIM_FUZZ_TARGET: manifest, quantity, seccomp, image-reference, tar-member, cri-pod,
// cri-container, spdy (what a streaming client sends), cni-config (a CNI configuration file),
// layer (a layer blob unpacked in process, LayerFuzz.swift), registry (what a registry or its
// token realm sends: challenges, manifests, indexes, token and error bodies; references). Run through hack/fuzz.sh, which builds it with -sanitize=fuzzer,address.
// Every input must end in a value or a thrown error: a trap, a crash or a hang is a finding.

import Foundation
import PodshimCRI
@testable import PodshimDaemon
@testable import PodshimImages
@testable import PodshimNetwork
@testable import PodshimRegistry
import PodshimSecurity
import PodshimSPDY
import PodshimSpec
import SwiftProtobuf

private let target = ProcessInfo.processInfo.environment["PODSHIM_FUZZ_TARGET"] ?? ""

@_cdecl("LLVMFuzzerTestOneInput")
public func podshimFuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    let text = String(decoding: bytes, as: UTF8.self)
    switch target {
    case "manifest":
        _ = try? ManifestParser.parse(yaml: text)
    case "quantity":
        _ = Quantity(text)
    case "seccomp":
        if let profile = try? SeccompProfileDocument.parse(bytes, source: "fuzz") {
            _ = try? Seccomp.compile(profile, capabilities: Capabilities.all)
        }
    case "image-reference":
        _ = ImageReference.isValidTagReference(text)
        _ = ImageReference.split(text)
        _ = ImageReference.normalizedTag(text)
        _ = ImageReference.idHex(text)
        _ = ImageReference.withoutDefaultRegistry(text)
        _ = ImageStore.isHostPath(text)
    case "tar-member":
        _ = LayerArchive.isSafe(text)
    case "registry":
        // The first byte picks what the rest is, as a registry (or a client) would send it.
        let body = Array(bytes.dropFirst())
        let rest = String(decoding: body, as: UTF8.self)
        switch bytes.first.map({ $0 % 5 }) ?? 0 {
        case 0: _ = try? RegistryReference(parsing: rest)
        case 1: _ = AuthChallenge.parse(rest)
        case 2:
            if let index = try? JSONDecoder().decode(OCIIndex.self, from: Data(body)) {
                _ = try? ImagePuller.choosePlatform(index.manifests, reference: "fuzz")
            }
            _ = try? JSONDecoder().decode(OCIManifest.self, from: Data(body))
            _ = try? JSONDecoder().decode(OCIDocumentProbe.self, from: Data(body))
        case 3:
            _ = (try? JSONDecoder().decode(TokenResponse.self, from: Data(body)))?.bearer
            _ = RegistryClient.errorDetail(body)
        default:
            if let config = try? JSONDecoder().decode(OCIImageConfiguration.self, from: Data(body)),
               let manifest = try? JSONDecoder().decode(OCIManifest.self, from: Data(body)) {
                _ = try? ImageStore.checkedChain(manifest, config, path: "fuzz")
            }
        }
    case "layer":
        LayerFuzz.run(bytes)  // LayerFuzz.swift: a layer blob applied, nothing may escape
    case "cri-pod":
        if let config = try? Runtime_V1_PodSandboxConfig(serializedBytes: bytes) {
            _ = try? CRITranslation.pod(config)
            _ = try? CRITranslation.cgroupResources(config.linux.resources, field: "config.linux.resources")
        }
    case "cri-container":
        if let config = try? Runtime_V1_ContainerConfig(serializedBytes: bytes) {
            _ = try? CRITranslation.container(config, key: "fuzz", image: ImageDefaults())
            _ = try? CRITranslation.cgroupResources(config.linux.resources, field: "config.linux.resources")
            _ = CRITranslation.containerFields(config)
        }
    case "spdy":
        // Bytes from a client after the upgrade, fed in two pieces as a socket may split them.
        let decoder = SPDYFrameDecoder()
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        decoder.feed(bytes[..<split])
        while let frame = try? decoder.next() { _ = frame } // an error ends the session
        decoder.feed(bytes[split...])
        while let frame = try? decoder.next() { _ = frame } // as above
    case "cni-config":
        if let list = try? CNINetworkList.parse(bytes, file: "fuzz.conflist") {
            for plugin in list.plugins {
                _ = CNIManager.pluginConfig(plugin, list: list, previous: list.document, capabilities: []).text
            }
            _ = CNIManager.ips(in: list.document, ifName: "eth0")
        }
    default:
        fatalError("PODSHIM_FUZZ_TARGET must name a target (see Tests/Fuzz/Sources/Fuzz.swift), not \"\(target)\"")
    }
    return 0
}

// SwiftPM links an executable's entry point as `<module>_main`; with -parse-as-library there is
// none, so this is it: libFuzzer's driver, run on the entry point above.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("podshim_fuzz_main")
public func podshimFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in
        podshimFuzz(UnsafeRawPointer(data ?? UnsafePointer(bitPattern: 1)!), size)
    }
}

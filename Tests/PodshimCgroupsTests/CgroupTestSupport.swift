import Foundation
import Glibc
import XCTest
@testable import PodshimCgroups
import PodshimSystem

/// A fresh directory under /tmp (mkdtemp); removed with everything below it by `remove()`.
final class ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/podshim-cg-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw SystemError("mkdtemp", path: "/tmp", errno: .last) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func makeDirectory(_ relative: String) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        return full
    }

    @discardableResult
    func makeFile(_ relative: String, _ contents: String = "") throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(contents.utf8)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return full
    }
}

/// A fake cgroup2 filesystem in a temporary directory. The kernel creates a cgroup's interface files
/// when its directory is made; the fake pre-creates them (empty, to be overwritten) so that the code
/// under test finds what it would find on a real cgroupfs.
final class FakeCgroupFS {
    let scratch: ScratchDirectory
    var root: String { scratch.path }

    /// Interface files of a non-root cgroup with cpu, memory and pids enabled by its parent.
    static let interfaceFiles = [
        "cgroup.subtree_control", "cpu.max", "cpu.weight", "memory.max", "memory.swap.max",
        "memory.oom.group", "pids.max", "cgroup.procs", "cgroup.kill",
    ]

    init(rootControllers: String = "cpu memory pids io") throws {
        scratch = try ScratchDirectory()
        try scratch.makeFile("cgroup.controllers", rootControllers)
        try scratch.makeFile("cgroup.subtree_control")
    }

    /// Makes the directory `relative` with the files the kernel would give it.
    @discardableResult
    func makeCgroup(_ relative: String, controllers: String = "cpu memory pids") throws -> String {
        let dir = try scratch.makeDirectory(relative)
        try scratch.makeFile(relative + "/cgroup.controllers", controllers)
        try scratch.makeFile(relative + "/cgroup.events", "populated 0\nfrozen 0\n")
        for name in Self.interfaceFiles { try scratch.makeFile(relative + "/" + name) }
        return dir
    }

    /// podshim/, podshim/pod-<id>/, its pause leaf and one leaf per container.
    func makePod(_ podID: String, containers: [String]) throws {
        try makeCgroup("podshim")
        try makeCgroup("podshim/pod-\(podID)")
        try makeCgroup("podshim/pod-\(podID)/pause")
        for name in containers { try makeCgroup("podshim/pod-\(podID)/container-\(name)") }
    }

    /// The content of `relative` below the root (nil when it cannot be read as a file).
    func contents(_ relative: String) -> String? {
        try? String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }

    func exists(_ relative: String) -> Bool { access(root + "/" + relative, F_OK) == 0 }

    func remove() { scratch.remove() }
}

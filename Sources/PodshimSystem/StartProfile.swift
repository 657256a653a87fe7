/// Where one start's time went: consecutive stages, each with its duration, from the request's
/// arrival to the reply (the daemon's steps, the spawn's preparation, the child's setup as the
/// child itself measured it, the bookkeeping after the execve). It is the start-path profile:
/// ContainerStatus reports the last one in its verbose info (`startProfile`), and `podshim-bench`
/// turns many into per-stage percentiles, so that a slower start points at its stage.
///
/// Marks are reads of the monotonic clock (the vDSO: tens of nanoseconds), not timers.
public struct StartProfile: Sendable, Equatable {
    public struct Stage: Sendable, Equatable {
        public var name: String
        public var nanoseconds: UInt64
        public init(name: String, nanoseconds: UInt64) {
            self.name = name
            self.nanoseconds = nanoseconds
        }
    }

    public private(set) var stages: [Stage] = []
    /// The end of the last stage (the start of the next).
    public private(set) var last: MonotonicInstant

    public init(startingAt start: MonotonicInstant = .now()) {
        last = start
        stages.reserveCapacity(20)
    }

    /// Ends the stage `name` at `instant`: it lasted from the end of the previous one.
    public mutating func mark(_ name: String, at instant: MonotonicInstant = .now()) {
        let end = max(instant, last)
        stages.append(Stage(name: name, nanoseconds: end.nanoseconds - last.nanoseconds))
        last = end
    }

    /// Appends `other`'s stages; the time between this profile's last mark and `other`'s first
    /// stage goes to a stage named `gap`.
    public mutating func append(_ other: StartProfile, gap: String) {
        guard let firstStart = other.start else { return }
        if firstStart > last { mark(gap, at: firstStart) }
        stages += other.stages
        last = max(last, other.last)
    }

    /// Where the first stage began.
    public var start: MonotonicInstant? {
        guard !stages.isEmpty else { return nil }
        return MonotonicInstant(nanoseconds: last.nanoseconds - totalNanoseconds)
    }

    public var totalNanoseconds: UInt64 { stages.reduce(0) { $0 + $1.nanoseconds } }

    /// `{"stages":[{"stage":"…","ns":…},…]}`: the stage names are podshim's own identifiers
    /// (letters, digits, `.` and `-`), so no escaping is needed.
    public var json: String {
        "{\"stages\":[" + stages.map { "{\"stage\":\"\($0.name)\",\"ns\":\($0.nanoseconds)}" }.joined(separator: ",") + "]}"
    }

    /// The spawn's own marks (CShims' psh_mark order: the parent's clone, the child's steps, the
    /// parent's return after the execve) as stages `spawn.clone`, `child.*`, `spawn.execve`. A mark
    /// the child did not reach (0: no rootfs, say) folds its time into the next stage; a child that
    /// shares no memory with the parent (the fork-like fallback) leaves only `spawn.child`.
    public mutating func appendSpawnMarks(_ marks: [Int64]) {
        let names = ["spawn.clone", "child.namespaces", "child.mount-prepare", "child.rootfs", "child.mounts",
                     "child.pivot-root", "child.credentials", "child.stdio", "child.seccomp", "spawn.execve"]
        guard marks.count == names.count + 1, marks[0] > 0, let end = marks.last, end > 0 else { return }
        mark("spawn.prepare", at: MonotonicInstant(nanoseconds: UInt64(marks[0])))
        guard marks[1] > 0 else {
            mark("spawn.child", at: MonotonicInstant(nanoseconds: UInt64(end)))
            return
        }
        for index in 1..<marks.count where marks[index] > 0 {
            mark(names[index - 1], at: MonotonicInstant(nanoseconds: UInt64(marks[index])))
        }
    }
}

/// A ``StartProfile`` being recorded across calls that each add their stages (the pod's start of a
/// container, then the spawn inside it). Used by one thread at a time, hence not Sendable.
public final class StartProfileRecorder {
    public var profile: StartProfile

    public init(startingAt start: MonotonicInstant = .now()) {
        profile = StartProfile(startingAt: start)
    }

    public func mark(_ name: String) { profile.mark(name) }
}

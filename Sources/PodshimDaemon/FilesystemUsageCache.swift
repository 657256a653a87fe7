import PodshimCRI
import PodshimSystem
import Synchronization

/// ImageFsInfo's answer, measured at most once per `maxAge` seconds on the injected clock.
///
/// Measuring walks the image store and every container's writable layer (2.3 ms of CPU per call
/// with one image and a dozen containers, 15× containerd's, whose snapshotter usage comes from a
/// periodic collector as well). The kubelet asks every few seconds for its eviction signals; an
/// answer up to `maxAge` old is what containerd gives too. The image store changes through
/// PullImage and RemoveImage, which ``invalidate()``, so a pull or a removal shows at once.
final class FilesystemUsageCache: Sendable {
    private let timekeeper: any Timekeeper
    private let maxAge: Double
    private let entry = Mutex<(measured: MonotonicInstant, response: Runtime_V1_ImageFsInfoResponse)?>(nil)

    init(timekeeper: any Timekeeper = DeadlineTimer.shared, maxAge: Double = 10) {
        self.timekeeper = timekeeper
        self.maxAge = maxAge
    }

    /// The cached answer while it is fresh, else `measure()`'s (which is kept).
    func response(_ measure: () async -> Runtime_V1_ImageFsInfoResponse) async -> Runtime_V1_ImageFsInfoResponse {
        let now = timekeeper.now()
        if let cached = entry.withLock({ $0 }), now < cached.measured.advanced(bySeconds: maxAge) {
            return cached.response
        }
        let response = await measure()
        entry.withLock { $0 = (now, response) }
        return response
    }

    /// The image store changed: the next call measures again.
    func invalidate() {
        entry.withLock { $0 = nil }
    }
}

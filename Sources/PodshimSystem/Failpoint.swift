import Foundation
import Glibc

/// Named points where a test can have the daemon die as if SIGKILLed (`PODSHIM_FAILPOINT=name`),
/// to prove that every half-done operation is completed or rolled back at the next start. Unset
/// (always, outside tests) a failpoint is one comparison with nil.
public enum Failpoint {
    private static let armed: String? = ProcessInfo.processInfo.environment["PODSHIM_FAILPOINT"]

    /// SIGKILLs this process when `name` is the armed failpoint.
    public static func hit(_ name: StaticString) {
        guard let armed, armed == name.description else { return }
        kill(getpid(), SIGKILL)
    }
}

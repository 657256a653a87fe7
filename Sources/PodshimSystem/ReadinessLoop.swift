import CShims
import Foundation
import Glibc

/// One thread waiting in a level-triggered epoll for many fds (container output pipes).
///
/// A handler is called on the loop thread whenever its fd is readable or hung up, and returns
/// false when it is done with the fd; the loop then unregisters it and calls `onClose`.
public final class ReadinessLoop: @unchecked Sendable { // owns the epoll fd (a kernel handle); registrations under `lock`
    public static let shared = ReadinessLoop()

    private struct Registration {
        var onReadable: (Int32) -> Bool
        var onClose: (Int32) -> Void
    }

    private let epoll: Int32
    private let lock = NSLock()
    private var registrations: [Int32: Registration] = [:]

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let thread = Thread { [self] in run() }
        thread.name = "podshim-output"
        thread.start()
    }

    /// Watches `fd`. `onReadable` reads from it (the fd should be non-blocking); `onClose` runs once,
    /// after `onReadable` returned false or ``remove(_:)`` was called, and should close the fd.
    public func add(_ fd: Int32, onReadable: @escaping (Int32) -> Bool, onClose: @escaping (Int32) -> Void) throws(SystemError) {
        lock.withLock { registrations[fd] = Registration(onReadable: onReadable, onClose: onClose) }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
        event.data.fd = fd
        if epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0 {
            let error = SystemError("epoll_ctl(ADD)", path: "fd \(fd)", errno: .last)
            _ = lock.withLock { registrations.removeValue(forKey: fd) }
            throw error
        }
    }

    /// Stops watching `fd` (if still watched) and runs its `onClose`.
    public func remove(_ fd: Int32) {
        lock.lock()
        let registration = registrations.removeValue(forKey: fd)
        if registration != nil { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil) }
        lock.unlock()
        registration?.onClose(fd)
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let count = epoll_wait(epoll, &events, Int32(events.count), -1)
            if count < 0 { continue } // EINTR
            for event in events[0..<Int(count)] {
                let fd = event.data.fd
                guard let registration = lock.withLock({ registrations[fd] }) else { continue }
                if !registration.onReadable(fd) { remove(fd) }
            }
        }
    }
}

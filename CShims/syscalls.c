// Raw syscalls and wrappers Swift cannot call directly. Each returns -errno on failure.
#include "podshim_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <linux/openat2.h>
#include <unistd.h>

const int psh_clone_newns = CLONE_NEWNS;
const int psh_clone_newpid = CLONE_NEWPID;
const int psh_clone_newnet = CLONE_NEWNET;
const int psh_clone_newipc = CLONE_NEWIPC;
const int psh_clone_newuts = CLONE_NEWUTS;
const int psh_clone_newcgroup = CLONE_NEWCGROUP;
const int psh_clone_newuser = CLONE_NEWUSER;

const unsigned long psh_ms_rdonly = MS_RDONLY;
const unsigned long psh_ms_nosuid = MS_NOSUID;
const unsigned long psh_ms_nodev = MS_NODEV;
const unsigned long psh_ms_noexec = MS_NOEXEC;
const unsigned long psh_ms_bind = MS_BIND;
const unsigned long psh_ms_rec = MS_REC;
const unsigned long psh_ms_private = MS_PRIVATE;
const unsigned long psh_ms_strictatime = MS_STRICTATIME;
const unsigned long psh_ms_relatime = MS_RELATIME;

int psh_pidfd_open(pid_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int psh_pidfd_send_signal(int pidfd, int signo) {
    return syscall(SYS_pidfd_send_signal, pidfd, signo, NULL, 0) < 0 ? -errno : 0;
}

int psh_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

int psh_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
              const char *data) {
    return mount(source, target, fstype, flags, data) < 0 ? -errno : 0;
}

int psh_umount(const char *target, bool detach) {
    return umount2(target, detach ? MNT_DETACH : 0) < 0 ? -errno : 0;
}

int psh_is_mount_root(const char *path) {
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif
    struct statx info;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &info) < 0) {
        return -errno;
    }
    if (!(info.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
        return -ENOSYS; // a kernel before 5.8 does not say
    }
    return (info.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? 1 : 0;
}

int psh_malloc_trim(void) {
    return malloc_trim(0);
}

size_t psh_malloc_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

int psh_setns(int fd, int nstype) {
    return setns(fd, nstype) < 0 ? -errno : 0;
}

int psh_wait_any_nohang(psh_exit *out) {
    siginfo_t info = {0};
    int rc;
    do {
        rc = waitid(P_ALL, 0, &info, WEXITED | WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        return -errno;
    }
    if (info.si_pid == 0) {
        return 0;
    }
    out->pid = info.si_pid;
    out->signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
    out->core_dumped = info.si_code == CLD_DUMPED;
    out->code = info.si_status;
    return 1;
}

int psh_timerfd_periodic(unsigned int seconds) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0) {
        return -errno;
    }
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = (time_t)seconds;
    spec.it_interval.tv_sec = (time_t)seconds;
    if (timerfd_settime(fd, 0, &spec, NULL) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int psh_poll_readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n < 0) {
        return -errno;
    }
    return n > 0 ? 1 : 0;
}

int psh_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int psh_pty_open(int fds[2]) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) {
        return -errno;
    }
    char name[64];
    if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof name) != 0) {
        int err = errno;
        close(master);
        return -err;
    }
    int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        int err = errno;
        close(master);
        return -err;
    }
    fds[0] = master;
    fds[1] = slave;
    return 0;
}

int psh_pty_resize(int fd, unsigned short rows, unsigned short columns) {
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    return ioctl(fd, TIOCSWINSZ, &size) < 0 ? -errno : 0;
}

// PIDFD_GET_INFO (Linux 6.13; PIDFD_INFO_EXIT since 6.15), declared here because the build
// machine's kernel headers may predate it. The first version of the structure is 64 bytes.
struct psh_pidfd_info_v0 {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define PSH_PIDFD_GET_INFO _IOWR(0xFF, 11, struct psh_pidfd_info_v0)
#define PSH_PIDFD_INFO_EXIT (1ULL << 3)

int psh_pidfd_exit_status(int pidfd, int *wait_status) {
    struct psh_pidfd_info_v0 info;
    memset(&info, 0, sizeof info);
    info.mask = PSH_PIDFD_INFO_EXIT;
    if (ioctl(pidfd, PSH_PIDFD_GET_INFO, &info) < 0) return -errno;
    if (!(info.mask & PSH_PIDFD_INFO_EXIT)) return -EAGAIN;
    *wait_status = info.exit_code;
    return 0;
}

int psh_timerfd_create(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int psh_timerfd_arm(int fd, uint64_t deadline_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (deadline_ns == 0) deadline_ns = 1; // 0 would disarm: "as soon as possible" instead
    spec.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
    spec.it_value.tv_nsec = (long)(deadline_ns % 1000000000ULL);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0 ? -errno : 0;
}

int psh_timerfd_disarm(int fd) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    return timerfd_settime(fd, 0, &spec, NULL) < 0 ? -errno : 0;
}

int psh_prepare_timer_thread(void) {
    // Wake exactly at the deadline: no timer slack, and a real-time priority when allowed.
    int rc = prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) < 0 ? -errno : 0;
    struct sched_param param = { .sched_priority = 10 };
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) != 0 && rc == 0) rc = 1;
    return rc;
}

struct psh_keeper_request {
    uint64_t id;
    int32_t op;
    int32_t arg;
    uint32_t watch_mask;
    int32_t pad;
};

int psh_keeper_call(int sock, uint64_t id, int32_t op, int32_t arg, const int *fds, int32_t nfds,
                    uint32_t watch_mask, int timeout_ms, psh_keeper_reply *reply) {
    if (nfds < 0 || nfds > PSH_KEEPER_MAX_FDS) {
        return -EINVAL;
    }
    struct psh_keeper_request request = {.id = id, .op = op, .arg = arg, .watch_mask = watch_mask, .pad = 0};
    struct iovec iov = {.iov_base = &request, .iov_len = sizeof request};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int) * PSH_KEEPER_MAX_FDS)];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t sent;
    do {
        sent = sendmsg(sock, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        return -errno;
    }
    for (;;) {
        struct pollfd ready = {.fd = sock, .events = POLLIN};
        int polled = poll(&ready, 1, timeout_ms);
        if (polled < 0 && errno == EINTR) {
            continue;
        }
        if (polled < 0) {
            return -errno;
        }
        if (polled == 0) {
            return -ETIMEDOUT;
        }
        psh_keeper_reply got;
        ssize_t n = recv(sock, &got, sizeof got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n != (ssize_t)sizeof got) {
            return -EPROTO;
        }
        if (got.id != id) {
            continue; // a reply to a request of an earlier podshim
        }
        *reply = got;
        return 0;
    }
}

int psh_seqpacket_pair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int psh_pidfd_getfd(int pidfd, int targetfd) {
    long fd = syscall(SYS_pidfd_getfd, pidfd, targetfd, 0);
    return fd < 0 ? -errno : (int)fd;
}

const uint64_t psh_resolve_beneath = RESOLVE_BENEATH;
const uint64_t psh_resolve_no_magiclinks = RESOLVE_NO_MAGICLINKS;
const int psh_o_path = O_PATH;

int psh_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    return fd < 0 ? -errno : (int)fd;
}

int psh_open_tree_clone(int fd, bool recursive) {
    unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    long tree = syscall(SYS_open_tree, fd, "", flags);
    return tree < 0 ? -errno : (int)tree;
}

#include <sys/xattr.h>

int psh_fsetxattr(int fd, const char *name, const void *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0) < 0 ? -errno : 0;
}

int psh_syncfs(int fd) {
    return syncfs(fd) < 0 ? -errno : 0;
}

long psh_fgetxattr(int fd, const char *name, void *value, size_t size) {
    ssize_t length = fgetxattr(fd, name, value, size);
    return length < 0 ? -errno : (long)length;
}

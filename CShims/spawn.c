// The one post-fork path of podshim.
//
// psh_spawn_start() clones a child (clone3 with CLONE_PIDFD, new namespaces and optionally
// CLONE_INTO_CGROUP; clone(2) as a fallback). The child runs only the code in this file, which
// uses async-signal-safe syscalls and memory prepared by the parent — never Swift, never malloc:
// the parent is multithreaded and another thread may have held a lock at the moment of the clone.
//
// Child order (each step's failure is reported as {stage, errno, index} over an O_CLOEXEC pipe,
// then _exit(127)):
//   signal dispositions reset → setsid → setns(pod namespaces) → hostname, loopback, sysctls
//   (pause only) → clone the sources of slave/shared bind mounts (open_tree) → make "/" private → mount the rootfs (overlay) → mounts, device nodes, symlinks inside it,
//   each target resolved with openat2(RESOLVE_IN_ROOT) → pivot_root → setgroups/setgid/setuid
//   → [remount rootfs read-only] → pivot_root → [seccomp, when there is no no_new_privs: loading
//   it then needs CAP_SYS_ADMIN] → drop bounding set → keepcaps → setgroups/setgid/setuid →
//   capset, ambient → no_new_privs → stdio → chdir → [seccomp, with no_new_privs: as late as
//   possible] → unblock signals → execve (PATH search). This is runc's order.
#include "podshim_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
// The new mount API (Linux 5.2, mount_setattr 5.12); defined here when the headers predate it.
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
struct psh_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

static const char *const stage_names[] = {
    [PSH_STAGE_NONE] = "none",
    [PSH_STAGE_CLONE] = "clone",
    [PSH_STAGE_SIGNALS] = "reset signals",
    [PSH_STAGE_SETSID] = "setsid",
    [PSH_STAGE_SETNS] = "setns",
    [PSH_STAGE_HOSTNAME] = "sethostname",
    [PSH_STAGE_LOOPBACK] = "loopback up",
    [PSH_STAGE_SYSCTL] = "write sysctl",
    [PSH_STAGE_OOM_SCORE_ADJ] = "write oom_score_adj",
    [PSH_STAGE_CLONE_MOUNT] = "open_tree",
    [PSH_STAGE_PROPAGATION] = "set mount propagation",
    [PSH_STAGE_MOUNT_PRIVATE] = "make / private",
    [PSH_STAGE_ROOTFS_MOUNT] = "mount rootfs",
    [PSH_STAGE_OPEN_ROOTFS] = "open rootfs",
    [PSH_STAGE_MOUNT_TARGET] = "create mount target",
    [PSH_STAGE_MOUNT] = "mount",
    [PSH_STAGE_REMOUNT] = "remount",
    [PSH_STAGE_MKNOD] = "mknod",
    [PSH_STAGE_SYMLINK] = "symlink",
    [PSH_STAGE_READONLY_ROOTFS] = "remount rootfs read-only",
    [PSH_STAGE_PIVOT_ROOT] = "pivot_root",
    [PSH_STAGE_BOUNDING_SET] = "drop bounding capabilities",
    [PSH_STAGE_KEEPCAPS] = "prctl(PR_SET_KEEPCAPS)",
    [PSH_STAGE_SETGROUPS] = "setgroups",
    [PSH_STAGE_SETGID] = "setgid",
    [PSH_STAGE_SETUID] = "setuid",
    [PSH_STAGE_CAPSET] = "capset",
    [PSH_STAGE_AMBIENT] = "ambient capabilities",
    [PSH_STAGE_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
    [PSH_STAGE_SECCOMP] = "seccomp",
    [PSH_STAGE_STDIO] = "stdio",
    [PSH_STAGE_CHDIR] = "chdir",
    [PSH_STAGE_EXECVE] = "execve",
};

const char *psh_stage_name(int32_t stage) {
    if (stage < 0 || (size_t)stage >= sizeof stage_names / sizeof stage_names[0] || !stage_names[stage]) {
        return "unknown";
    }
    return stage_names[stage];
}

// ---------------------------------------------------------------------------------------------
// Child side: async-signal-safe only.
// ---------------------------------------------------------------------------------------------

__attribute__((noreturn)) static void child_fail(int report_fd, psh_stage stage, int error, int index) {
    psh_spawn_report report = {.stage = stage, .error = error, .index = index};
    ssize_t n;
    do {
        n = write(report_fd, &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    _exit(127);
}

/// openat2 relative to the rootfs with the rootfs as "/" for every symlink and "..".
static int open_in_root(int rootfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*path == '/') {
        path++;
    }
    if (*path == 0) {
        path = ".";
    }
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

/// Copies `path` into `buf` without leading slashes. Returns -ENAMETOOLONG when it does not fit.
static int copy_relative(char *buf, size_t size, const char *path) {
    while (*path == '/') {
        path++;
    }
    size_t len = strlen(path);
    if (len + 1 > size) {
        return -ENAMETOOLONG;
    }
    memcpy(buf, path, len + 1);
    return 0;
}

/// Opens the parent directory of `rel` (inside the rootfs) and points *name at the last component.
static int open_parent(int rootfd, char *rel, const char **name) {
    char *slash = strrchr(rel, '/');
    if (!slash) {
        *name = rel;
        return open_in_root(rootfd, ".", O_PATH | O_DIRECTORY);
    }
    *slash = 0;
    int fd = open_in_root(rootfd, rel, O_PATH | O_DIRECTORY);
    *slash = '/';
    *name = slash + 1;
    return fd;
}

/// Opens the parent directory of the absolute in-container `path`; `rel` (PATH_MAX bytes) keeps
/// the relative copy that *name points into.
static int open_parent_in_root(int rootfd, const char *path, char *rel, const char **name) {
    int rc = copy_relative(rel, PATH_MAX, path);
    return rc < 0 ? rc : open_parent(rootfd, rel, name);
}

/// Creates every missing directory of `rel` (and the last component as `kind`), staying inside
/// the rootfs, then returns an O_PATH fd for it.
static int make_target(int rootfd, const char *target, psh_target_kind kind) {
    char rel[PATH_MAX];
    int rc = copy_relative(rel, sizeof rel, target);
    if (rc < 0) {
        return rc;
    }
    int fd = open_in_root(rootfd, rel, O_PATH);
    if (fd >= 0 || fd != -ENOENT) {
        return fd;
    }
    size_t len = strlen(rel);
    for (size_t i = 0; i <= len; i++) {
        if (rel[i] != '/' && rel[i] != 0) {
            continue;
        }
        bool last = rel[i] == 0;
        char saved = rel[i];
        rel[i] = 0;
        int probe = open_in_root(rootfd, rel, O_PATH);
        if (probe >= 0) {
            close(probe);
        } else if (probe == -ENOENT) {
            const char *name;
            int parent = open_parent(rootfd, rel, &name);
            if (parent < 0) {
                rel[i] = saved;
                return parent;
            }
            int made;
            if (last && kind == PSH_TARGET_FILE) {
                made = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (made >= 0) {
                    close(made);
                }
            } else {
                made = mkdirat(parent, name, 0755);
            }
            int err = errno;
            close(parent);
            if (made < 0 && err != EEXIST) {
                rel[i] = saved;
                return -err;
            }
        } else {
            rel[i] = saved;
            return probe;
        }
        rel[i] = saved;
    }
    return open_in_root(rootfd, rel, O_PATH);
}

/// "/proc/self/fd/<fd>" into buf.
static void fd_path(char *buf, int fd) {
    static const char prefix[] = "/proc/self/fd/";
    memcpy(buf, prefix, sizeof prefix - 1);
    char digits[16];
    int n = 0;
    do {
        digits[n++] = (char)('0' + fd % 10);
        fd /= 10;
    } while (fd > 0);
    char *p = buf + sizeof prefix - 1;
    while (n > 0) {
        *p++ = digits[--n];
    }
    *p = 0;
}

/// Clones the source tree of every slave or shared bind mount while "/" still has the host's
/// propagation: the detached copy stays a peer of the host's mount, whatever "/" becomes later.
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
/// mount(2) takes one page of options; an overlay of more layers than that holds is mounted with
/// the new mount API instead (kernel >= 6.8: one `lowerdir+` per layer).
#define OPTIONS_PAGE 4096

/// Mounts an overlay on `target` from `data` (`lowerdir=top:...:bottom,upperdir=...,workdir=...`
/// and flags such as `index=off`), option by option through fsopen/fsconfig/fsmount, each lower
/// directory as its own `lowerdir+`. No allocation: every piece is copied to a stack buffer.
/// Returns 0, or -1 with errno set.
static int mount_overlay_by_parts(const char *target, const char *data) {
    int fs = (int)syscall(SYS_fsopen, "overlay", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0) return -1;
    char piece[PATH_MAX + 32];
    const char *option = data;
    while (*option) {
        const char *end = strchr(option, ',');
        size_t length = end ? (size_t)(end - option) : strlen(option);
        long rc = 0;
        if (length > 9 && strncmp(option, "lowerdir=", 9) == 0) {
            // One `lowerdir+` per layer, top first, each copied out of the option.
            const char *layer = option + 9;
            const char *stop = option + length;
            while (layer < stop && rc == 0) {
                const char *colon = memchr(layer, ':', (size_t)(stop - layer));
                size_t size = (size_t)((colon ? colon : stop) - layer);
                if (size >= sizeof piece) { close(fs); errno = ENAMETOOLONG; return -1; }
                memcpy(piece, layer, size);
                piece[size] = 0;
                rc = syscall(SYS_fsconfig, fs, 1 /* FSCONFIG_SET_STRING */, "lowerdir+", piece, 0);
                layer = colon ? colon + 1 : stop;
            }
        } else if (length > 0) {
            if (length >= sizeof piece) { close(fs); errno = ENAMETOOLONG; return -1; }
            memcpy(piece, option, length);
            piece[length] = 0;
            char *equals = strchr(piece, '=');
            if (equals) {
                *equals = 0;
                rc = syscall(SYS_fsconfig, fs, 1 /* FSCONFIG_SET_STRING */, piece, equals + 1, 0);
            } else {
                rc = syscall(SYS_fsconfig, fs, 0 /* FSCONFIG_SET_FLAG */, piece, NULL, 0);
            }
        }
        if (rc < 0) { int saved = errno; close(fs); errno = saved; return -1; }
        option = end ? end + 1 : option + length;
    }
    if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) {
        int saved = errno; close(fs); errno = saved; return -1;
    }
    int mnt = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, 0);
    int saved = errno;
    close(fs);
    if (mnt < 0) { errno = saved; return -1; }
    long rc = syscall(SYS_move_mount, mnt, "", AT_FDCWD, target, 4 /* MOVE_MOUNT_F_EMPTY_PATH */);
    saved = errno;
    close(mnt);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

static void clone_sources(const psh_spawn_config *c, int *cloned, int report_fd) {
    for (size_t i = 0; i < c->mount_count; i++) {
        const psh_mount_spec *m = &c->mounts[i];
        cloned[i] = -1;
        if (m->source_fd >= 0) {
            cloned[i] = m->source_fd; // cloned by podshim from a descriptor it opened itself
            continue;
        }
        if (m->propagation == PSH_PROPAGATION_PRIVATE || !m->source) {
            continue;
        }
        long fd = syscall(SYS_open_tree, AT_FDCWD, m->source, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
        if (fd < 0) {
            child_fail(report_fd, PSH_STAGE_CLONE_MOUNT, errno, (int)i);
        }
        cloned[i] = (int)fd;
    }
}

static void do_mounts(const psh_spawn_config *c, int rootfd, const int *cloned, int report_fd) {
    const unsigned long bind_extra = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    char path[32];
    for (size_t i = 0; i < c->mount_count; i++) {
        const psh_mount_spec *m = &c->mounts[i];
        int fd = m->optional ? open_in_root(rootfd, m->target, O_PATH) : make_target(rootfd, m->target, m->target_kind);
        if (fd == -ENOENT && m->optional) {
            continue;
        }
        if (fd < 0) {
            child_fail(report_fd, PSH_STAGE_MOUNT_TARGET, -fd, (int)i);
        }
        fd_path(path, fd);
        bool bind = (m->flags & MS_BIND) != 0;
        unsigned long flags = bind ? (m->flags & ~bind_extra) : m->flags;
        struct stat info;
        if (m->mask && fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
            // A masked directory: an empty read-only tmpfs.
            if (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0) {
                child_fail(report_fd, PSH_STAGE_MOUNT, errno, (int)i);
            }
            close(fd);
            continue;
        }
        int rc;
        if (cloned[i] >= 0) {
            rc = (int)syscall(SYS_move_mount, cloned[i], "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
            close(cloned[i]);
        } else {
            rc = mount(m->source ? m->source : "none", path, m->fstype, flags, m->data);
        }
        if (rc < 0) {
            child_fail(report_fd, PSH_STAGE_MOUNT, errno, (int)i);
        }
        close(fd);
        if ((bind && (m->flags & bind_extra)) || m->propagation != PSH_PROPAGATION_PRIVATE || m->recursive_readonly) {
            // The fd names the mountpoint underneath; reopen to reach the new mount on top.
            fd = open_in_root(rootfd, m->target, O_PATH);
            if (fd < 0) {
                child_fail(report_fd, PSH_STAGE_REMOUNT, -fd, (int)i);
            }
            fd_path(path, fd);
            if (bind && (m->flags & bind_extra) &&
                mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | (m->flags & bind_extra), NULL) < 0) {
                child_fail(report_fd, PSH_STAGE_REMOUNT, errno, (int)i);
            }
            if (m->propagation != PSH_PROPAGATION_PRIVATE) {
                unsigned long type = m->propagation == PSH_PROPAGATION_SHARED ? MS_SHARED : MS_SLAVE;
                if (mount(NULL, path, NULL, MS_REC | type, NULL) < 0) {
                    child_fail(report_fd, PSH_STAGE_PROPAGATION, errno, (int)i);
                }
            }
            if (m->recursive_readonly) {
                struct psh_mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
                if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
                    child_fail(report_fd, PSH_STAGE_REMOUNT, errno, (int)i);
                }
            }
            close(fd);
        }
    }
    for (size_t i = 0; i < c->device_count; i++) {
        const psh_device_spec *d = &c->devices[i];
        char rel[PATH_MAX];
        const char *name;
        int parent = open_parent_in_root(rootfd, d->path, rel, &name);
        if (parent < 0) {
            child_fail(report_fd, PSH_STAGE_MKNOD, -parent, (int)i);
        }
        if (mknodat(parent, name, d->mode, makedev(d->major, d->minor)) < 0 && errno != EEXIST) {
            child_fail(report_fd, PSH_STAGE_MKNOD, errno, (int)i);
        }
        // mknod applies the umask; set the mode exactly.
        int node = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (node >= 0) {
            fd_path(path, node);
            (void)chmod(path, d->mode & 07777);
            close(node);
        }
        close(parent);
    }
    for (size_t i = 0; i < c->symlink_count; i++) {
        const psh_symlink_spec *s = &c->symlinks[i];
        char rel[PATH_MAX];
        const char *name;
        int parent = open_parent_in_root(rootfd, s->path, rel, &name);
        if (parent < 0) {
            child_fail(report_fd, PSH_STAGE_SYMLINK, -parent, (int)i);
        }
        if (symlinkat(s->target, parent, name) < 0 && errno != EEXIST) {
            child_fail(report_fd, PSH_STAGE_SYMLINK, errno, (int)i);
        }
        close(parent);
    }
}

/// Loads the seccomp program. The filter allows what the rest of the child path needs
/// (rt_sigprocmask, execve) in every profile podshim builds.
static void load_seccomp(const psh_spawn_config *c, int report_fd) {
    struct sock_fprog program = {
        .len = c->seccomp_filter_length,
        .filter = (struct sock_filter *)c->seccomp_filter,
    };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0) {
        child_fail(report_fd, PSH_STAGE_SECCOMP, errno, -1);
    }
}

/// capset(2) with the v3 ABI (two 32-bit words per set), then the ambient set.
static void apply_capabilities(const psh_spawn_config *c, int report_fd) {
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
        child_fail(report_fd, PSH_STAGE_KEEPCAPS, errno, -1);
    }
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    for (int word = 0; word < 2; word++) {
        data[word].effective = (uint32_t)(c->cap_effective >> (32 * word));
        data[word].permitted = (uint32_t)(c->cap_permitted >> (32 * word));
        data[word].inheritable = (uint32_t)(c->cap_inheritable >> (32 * word));
    }
    if (syscall(SYS_capset, &header, data) < 0) {
        child_fail(report_fd, PSH_STAGE_CAPSET, errno, -1);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        child_fail(report_fd, PSH_STAGE_AMBIENT, errno, -1);
    }
    for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
        if ((c->cap_ambient & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
            child_fail(report_fd, PSH_STAGE_AMBIENT, errno, cap);
        }
    }
}

static int loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return errno;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int err = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        err = errno;
    } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
            err = errno;
        }
    }
    close(s);
    return err;
}

/// execve, searching `search_path` for a bare name the way execvp does. Returns the errno.
static int exec_program(const psh_spawn_config *c) {
    if (strchr(c->path, '/')) {
        execve(c->path, c->argv, c->envp);
        return errno;
    }
    size_t name_len = strlen(c->path);
    bool saw_eacces = false;
    const char *p = c->search_path;
    while (true) {
        const char *end = strchr(p, ':');
        size_t dir_len = end ? (size_t)(end - p) : strlen(p);
        char candidate[PATH_MAX];
        if (dir_len + 1 + name_len + 1 <= sizeof candidate) {
            size_t n = 0;
            if (dir_len == 0) {
                candidate[n++] = '.';
            } else {
                memcpy(candidate, p, dir_len);
                n = dir_len;
            }
            candidate[n++] = '/';
            memcpy(candidate + n, c->path, name_len + 1);
            execve(candidate, c->argv, c->envp);
            switch (errno) {
            case EACCES:
                saw_eacces = true;
                break;
            case ENOENT:
            case ENOTDIR:
            case ESTALE:
            case ENODEV:
            case ETIMEDOUT:
                break;
            default:
                return errno;
            }
        }
        if (!end) {
            break;
        }
        p = end + 1;
    }
    return saw_eacces ? EACCES : ENOENT;
}

/// Records `mark` in the start's profile (a vDSO clock read: no syscall, no lock).
static inline void mark(const psh_spawn_config *c, psh_mark which) {
    if (c->profile) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        c->profile[which] = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    }
}

__attribute__((noreturn)) static void child_main(const psh_spawn_config *c, int report_fd) {
    mark(c, PSH_MARK_CHILD);
    // Handlers installed by the parent (Swift runtime, libdispatch) must never run here, and
    // SIG_IGN dispositions (SIGPIPE) would survive execve. The mask stays fully blocked (set by
    // the parent around the clone) until just before execve.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int signo = 1; signo < NSIG; signo++) {
        if (signo != SIGKILL && signo != SIGSTOP) {
            (void)sigaction(signo, &dfl, NULL); // EINVAL for glibc's internal signals: harmless
        }
    }

    // A session of its own: a terminal's Ctrl-C (sent to podshim's process group) must reach
    // podshim, which turns it into a graceful stop, never the container directly.
    if (setsid() < 0) {
        child_fail(report_fd, PSH_STAGE_SETSID, errno, -1);
    }

    if (c->join_pidfd >= 0 && c->join_flags != 0 && setns(c->join_pidfd, c->join_flags) < 0) {
        child_fail(report_fd, PSH_STAGE_SETNS, errno, -1);
    }
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0) {
        child_fail(report_fd, PSH_STAGE_HOSTNAME, errno, -1);
    }
    if (c->loopback_up) {
        int err = loopback_up();
        if (err) {
            child_fail(report_fd, PSH_STAGE_LOOPBACK, err, -1);
        }
    }
    // Namespaced sysctls: /proc/sys shows the namespaces of the writer, which are now the pod's.
    for (size_t i = 0; i < c->sysctl_count; i++) {
        int fd = open(c->sysctls[i].path, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(c->sysctls[i].value);
        if (fd < 0 || write(fd, c->sysctls[i].value, len) != (ssize_t)len) {
            child_fail(report_fd, PSH_STAGE_SYSCTL, errno, (int)i);
        }
        close(fd);
    }
    if (c->set_oom_score_adj) {
        char text[16];
        int n = 0, value = c->oom_score_adj;
        char digits[12];
        int count = 0;
        unsigned magnitude = value < 0 ? (unsigned)(-(long)value) : (unsigned)value;
        do {
            digits[count++] = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude > 0);
        if (value < 0) {
            text[n++] = '-';
        }
        while (count > 0) {
            text[n++] = digits[--count];
        }
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, text, (size_t)n) != n) {
            child_fail(report_fd, PSH_STAGE_OOM_SCORE_ADJ, errno, -1);
        }
        close(fd);
    }
    mark(c, PSH_MARK_NAMESPACES);

    if (c->rootfs) {
        int cloned[c->mount_count > 0 ? c->mount_count : 1];
        clone_sources(c, cloned, report_fd);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
            child_fail(report_fd, PSH_STAGE_MOUNT_PRIVATE, errno, -1);
        }
        mark(c, PSH_MARK_MOUNT_PREPARE);
        const psh_mount_spec *r = c->rootfs_mount;
        int rc;
        if (r && r->fstype && strcmp(r->fstype, "overlay") == 0 && r->data && strlen(r->data) >= OPTIONS_PAGE) {
            rc = mount_overlay_by_parts(c->rootfs, r->data);  // more layers than one page of options holds
        } else {
            rc = r ? mount(r->source ? r->source : "none", c->rootfs, r->fstype, r->flags, r->data)
                   : mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL); // pivot_root needs a mount
        }
        if (rc < 0) {
            child_fail(report_fd, PSH_STAGE_ROOTFS_MOUNT, errno, -1);
        }
        mark(c, PSH_MARK_ROOTFS);
        int rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
            child_fail(report_fd, PSH_STAGE_OPEN_ROOTFS, errno, -1);
        }
        do_mounts(c, rootfd, cloned, report_fd);
        if (c->readonly_rootfs) {
            char path[32];
            fd_path(path, rootfd);
            if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
                child_fail(report_fd, PSH_STAGE_READONLY_ROOTFS, errno, -1);
            }
        }
        mark(c, PSH_MARK_MOUNTS);
        // pivot_root(".", ".") stacks the old root on top of the new one; detach it at once.
        if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
            chdir("/") < 0) {
            child_fail(report_fd, PSH_STAGE_PIVOT_ROOT, errno, -1);
        }
        close(rootfd);
        mark(c, PSH_MARK_PIVOT_ROOT);
    }

    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still have
    // every capability. With no_new_privs it is loaded last, right before execve (runc's order).
    if (c->seccomp_filter && !c->no_new_privs) {
        load_seccomp(c, report_fd);
    }
    if (c->set_capabilities) {
        // The bounding set first: dropping needs CAP_SETPCAP, which a non-root uid no longer has.
        for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
            if (!(c->cap_bounding & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
                child_fail(report_fd, PSH_STAGE_BOUNDING_SET, errno, cap);
            }
        }
        // Keep the permitted set across the change of uid; capset restores the effective set.
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
            child_fail(report_fd, PSH_STAGE_KEEPCAPS, errno, -1);
        }
    }

    // Raw syscalls, not glibc's wrappers: in a process that had threads, glibc's set*id broadcast
    // the change to every thread it believes exists (the setxid mechanism) and waits for them on a
    // futex — in this single-threaded copy that wait never ends.
    if (syscall(SYS_setgroups, c->supplementary_gid_count, c->supplementary_gids) < 0) {
        child_fail(report_fd, PSH_STAGE_SETGROUPS, errno, -1);
    }
    if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0) {
        child_fail(report_fd, PSH_STAGE_SETGID, errno, -1);
    }
    if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0) {
        child_fail(report_fd, PSH_STAGE_SETUID, errno, -1);
    }
    if (c->set_capabilities) {
        apply_capabilities(c, report_fd);
    }
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        child_fail(report_fd, PSH_STAGE_NO_NEW_PRIVS, errno, -1);
    }
    mark(c, PSH_MARK_CREDENTIALS);

    // Lift the stdio fds above 2 first, so dup2 onto 0..2 cannot clobber a source.
    int lifted[3];
    for (int i = 0; i < 3; i++) {
        int source = c->stdio[i];
        if (source < 0) {
            source = open("/dev/null", O_RDWR | O_CLOEXEC);
        }
        lifted[i] = source < 0 ? -1 : fcntl(source, F_DUPFD_CLOEXEC, 3);
        if (lifted[i] < 0) {
            child_fail(report_fd, PSH_STAGE_STDIO, errno, i);
        }
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(lifted[i], i) < 0) {
            child_fail(report_fd, PSH_STAGE_STDIO, errno, i);
        }
    }
    // A session leader since setsid: the terminal on fd 0 becomes its controlling terminal.
    if (c->controlling_tty && ioctl(0, TIOCSCTTY, 0) < 0) {
        child_fail(report_fd, PSH_STAGE_STDIO, errno, 0);
    }
    // Whatever the parent leaked without O_CLOEXEC must not reach the container.
    (void)syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);

    if (chdir(c->cwd ? c->cwd : "/") < 0) {
        child_fail(report_fd, PSH_STAGE_CHDIR, errno, -1);
    }
    mark(c, PSH_MARK_STDIO);

    if (c->seccomp_filter && c->no_new_privs) {
        load_seccomp(c, report_fd);
    }
    mark(c, PSH_MARK_SECCOMP);
    sigset_t empty;
    sigemptyset(&empty);
    (void)sigprocmask(SIG_SETMASK, &empty, NULL);
    int err = exec_program(c);
    // Block again so nothing interrupts the report.
    sigset_t all;
    sigfillset(&all);
    (void)sigprocmask(SIG_SETMASK, &all, NULL);
    child_fail(report_fd, PSH_STAGE_EXECVE, err, -1);
}

// ---------------------------------------------------------------------------------------------
// Parent side.
// ---------------------------------------------------------------------------------------------

// The child runs on its own stack in the parent's address space (CLONE_VM | CLONE_VFORK, as
// posix_spawn does): copying the daemon's page tables at clone and tearing them down again at
// execve cost about 1 ms a container (perf, 300 starts). The calling thread sleeps until the child
// has exec'd or exited; the child touches only its own stack and the kernel state it changes.
#define PSH_CHILD_STACK_SIZE (256 * 1024)

struct child_start {
    const psh_spawn_config *config;
    int report_fd;
    int unused_fd;
};

__attribute__((noreturn, used)) static void child_entry(struct child_start *start) {
    close(start->unused_fd);
    child_main(start->config, start->report_fd);
}

// clone3 with a new stack: the child must not return into the caller's frames, so it calls
// child_entry straight from the syscall's return point. Returns the pid, or -errno; -ENOSYS where
// there is no assembly for this architecture.
static long clone3_on_stack(struct clone_args *args, struct child_start *start) {
#if defined(__x86_64__)
    register long rax __asm__("rax") = SYS_clone3;
    register struct clone_args *rdi __asm__("rdi") = args;
    register long rsi __asm__("rsi") = (long)sizeof *args;
    register struct child_start *r12 __asm__("r12") = start;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "and $-16, %%rsp\n\t"
                     "mov %%r12, %%rdi\n\t"
                     "call child_entry\n\t"
                     "ud2\n"
                     "1:"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(r12)
                     : "rcx", "r11", "memory", "cc");
    return rax;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_clone3;
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = (long)sizeof *args;
    register struct child_start *x19 __asm__("x19") = start;
    __asm__ volatile("svc #0\n\t"
                     "cbnz x0, 1f\n\t"
                     "mov x29, xzr\n\t"
                     "mov x30, xzr\n\t"
                     "mov x0, x19\n\t"
                     "bl child_entry\n\t"
                     "brk #0\n"
                     "1:"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x19)
                     : "memory", "cc");
    return x0;
#else
    (void)args;
    (void)start;
    return -ENOSYS;
#endif
}

// Returns the pid in the parent, 0 in a child that shares nothing with the parent's memory (the
// fork-like fallback: the caller then runs child_main), -1 with errno on failure.
static pid_t clone_child(const psh_spawn_config *c, int *pidfd, int report[2]) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PIDFD | c->clone_flags;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    if (c->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)c->cgroup_fd;
    }

    void *stack = mmap(NULL, PSH_CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack != MAP_FAILED) {
        struct clone_args shared = args;
        shared.flags |= CLONE_VM | CLONE_VFORK;
        shared.stack = (uint64_t)(uintptr_t)stack;
        shared.stack_size = PSH_CHILD_STACK_SIZE;
        struct child_start start = {.config = c, .report_fd = report[1], .unused_fd = report[0]};
        long pid = clone3_on_stack(&shared, &start);
        // CLONE_VFORK: the child has exec'd or exited, its stack is free again.
        munmap(stack, PSH_CHILD_STACK_SIZE);
        if (pid > 0) {
            return (pid_t)pid;
        }
        if (pid != -ENOSYS && pid != -EINVAL) {
            errno = (int)-pid;
            return -1;
        }
    }

    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0 && errno == ENOSYS && c->cgroup_fd < 0) {
        // Kernels before 5.3: clone(2) returns the pidfd through the parent_tid argument.
        pid = syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | c->clone_flags | SIGCHLD), NULL, pidfd, NULL, NULL);
    }
    return (pid_t)pid;
}

int psh_spawn_start(const psh_spawn_config *c, psh_spawn_handle *handle) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        return -errno;
    }
    int saved_pid_ns = -1;
    if (c->pid_ns_pidfd >= 0) {
        // setns(CLONE_NEWPID) changes only this thread's namespace for new children.
        saved_pid_ns = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
        if (saved_pid_ns < 0 || setns(c->pid_ns_pidfd, CLONE_NEWPID) < 0) {
            int err = errno;
            if (saved_pid_ns >= 0) {
                close(saved_pid_ns);
            }
            close(report[0]);
            close(report[1]);
            return -err;
        }
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    // The kernel writes the pidfd into the handle during the clone, before the child runs, so a
    // watchdog on another thread can kill a child whose setup hangs (psh_spawn_kill_in_setup).
    handle->pid = 0;
    __atomic_store_n(&handle->pidfd, -1, __ATOMIC_RELEASE);
    mark(c, PSH_MARK_CLONE);
    pid_t pid = clone_child(c, &handle->pidfd, report);
    if (pid == 0) {
        close(report[0]);
        child_main(c, report[1]);
    }
    int clone_errno = errno;
    mark(c, PSH_MARK_EXECVE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (saved_pid_ns >= 0) {
        (void)setns(saved_pid_ns, CLONE_NEWPID);
        close(saved_pid_ns);
    }
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        if (handle->pidfd >= 0) {
            close(handle->pidfd);
            handle->pidfd = -1;
        }
        return -clone_errno;
    }
    handle->pid = pid;
    handle->report_fd = report[0];
    return 0;
}

int psh_spawn_kill_in_setup(const psh_spawn_handle *handle) {
    int pidfd = __atomic_load_n(&handle->pidfd, __ATOMIC_ACQUIRE);
    if (pidfd < 0) {
        return -ESRCH;
    }
    return psh_pidfd_send_signal(pidfd, SIGKILL);
}

int psh_spawn_finish(const psh_spawn_handle *handle, psh_spawn_report *report) {
    psh_spawn_report r;
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = read(handle->report_fd, (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(handle->report_fd);
    if (got == 0) {
        return 0; // EOF: execve closed the CLOEXEC pipe
    }
    if (got < sizeof r) {
        r.stage = PSH_STAGE_NONE;
        r.error = EPIPE;
        r.index = -1;
    }
    *report = r;
    return 1;
}

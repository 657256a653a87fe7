// CShims: what Swift cannot do itself.
//
//  * raw syscalls glibc has no wrapper for (pidfd_open, pidfd_send_signal, clone3, pivot_root),
//  * functions Swift cannot call (variadic prctl/ioctl) or constants that import badly
//    (CLONE_NEW*, MS_*, hidden behind _GNU_SOURCE),
//  * the one post-fork path: psh_spawn_start() clones a child that runs only the C code in
//    spawn.c (async-signal-safe calls) until execve.
//
// Every function returns 0 (or a non-negative result) on success and -errno on failure,
// so the caller never has to read the thread-local errno.
#ifndef PODSHIM_SHIMS_H
#define PODSHIM_SHIMS_H

#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/epoll.h> // re-exported: Glibc does not import it

#if __has_feature(nullability)
#pragma clang assume_nonnull begin
#else
#define _Nullable
#define _Nonnull
#endif

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

extern const int psh_clone_newns;
extern const int psh_clone_newpid;
extern const int psh_clone_newnet;
extern const int psh_clone_newipc;
extern const int psh_clone_newuts;
extern const int psh_clone_newcgroup;
extern const int psh_clone_newuser;

extern const unsigned long psh_ms_rdonly;
extern const unsigned long psh_ms_nosuid;
extern const unsigned long psh_ms_nodev;
extern const unsigned long psh_ms_noexec;
extern const unsigned long psh_ms_bind;
extern const unsigned long psh_ms_rec;
extern const unsigned long psh_ms_private;
extern const unsigned long psh_ms_strictatime;
extern const unsigned long psh_ms_relatime;

// ---------------------------------------------------------------------------------------------
// Raw syscalls and wrappers Swift cannot call directly
// ---------------------------------------------------------------------------------------------

/// pidfd_open(2) with PIDFD_NONBLOCK off; the fd is O_CLOEXEC. Returns the fd or -errno.
int psh_pidfd_open(pid_t pid);
/// pidfd_send_signal(2). Returns 0 or -errno (ESRCH once the process has exited).
int psh_pidfd_send_signal(int pidfd, int signo);
/// The wait status of the exited process behind `pidfd`, even when another process reaped it
/// (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15). -ENOTTY/-EINVAL on older kernels, -EAGAIN
/// while the process has not been reaped yet, -ESRCH when it was reaped before the pidfd existed.
int psh_pidfd_exit_status(int pidfd, int *wait_status);
/// A CLOCK_MONOTONIC timerfd (CLOEXEC). Returns the fd or -errno.
int psh_timerfd_create(void);
/// Arms `fd` to expire at the absolute CLOCK_MONOTONIC time `deadline_ns` (a past time expires at
/// once). Safe from any thread while another blocks in read(fd): the read then wakes at the new time.
int psh_timerfd_arm(int fd, uint64_t deadline_ns);
int psh_timerfd_disarm(int fd);
/// For the thread that fires deadlines: timer slack 1 ns, SCHED_FIFO priority 10 when permitted.
/// Returns 0, 1 when the priority could not be raised, or -errno.
int psh_prepare_timer_thread(void);
/// PR_SET_CHILD_SUBREAPER on the calling process.
int psh_set_child_subreaper(void);
/// mount(2), umount2(2) returning -errno.
int psh_mount(const char *_Nullable source, const char *target, const char *_Nullable fstype,
              unsigned long flags, const char *_Nullable data);
int psh_umount(const char *target, bool detach);
/// Whether `path` (not followed if a symlink) is the root of a mount (statx's
/// STATX_ATTR_MOUNT_ROOT): 1 or 0; -ENOSYS on a kernel that does not report it (before 5.8);
/// -errno when statx fails.
int psh_is_mount_root(const char *path);
/// glibc's malloc_trim(0) (<malloc.h> does not import into Swift): returns the free pages of every
/// arena to the kernel; 1 when it released memory.
int psh_malloc_trim(void);
/// The heap bytes in use (glibc's mallinfo2: arena chunks plus mmapped blocks), for tests that
/// check a loop keeps no memory.
size_t psh_malloc_in_use(void);
/// setns(2) returning -errno.
int psh_setns(int fd, int nstype);

/// Result of psh_wait_any: one reaped child.
typedef struct psh_exit {
    pid_t pid;
    /// true when the child was killed by a signal; then `code` is the signal number.
    bool signaled;
    /// exit code, or signal number when `signaled`.
    int code;
    /// true when the signal produced a core dump.
    bool core_dumped;
} psh_exit;

/// The fd keeper protocol of podshim-pause (CShims/pause/pause.c; the structs must match).
#define PSH_KEEPER_HOLD 1
#define PSH_KEEPER_RELEASE 2
#define PSH_KEEPER_QUERY 3
#define PSH_KEEPER_MAX_FDS 8

typedef struct psh_keeper_reply {
    uint64_t id;
    int32_t result;
    int32_t count;
    int32_t fds[PSH_KEEPER_MAX_FDS];
    int64_t exited_at;
} psh_keeper_reply;

/// One request to the pause process's fd keeper over `sock` (podshim's end of the socketpair):
/// `fds` (at most PSH_KEEPER_MAX_FDS) travel as SCM_RIGHTS, bit i of `watch_mask` asks the keeper
/// to watch fds[i] as a pidfd. Waits up to `timeout_ms` for the reply carrying `id` (replies to
/// other ids, left by an earlier podshim, are skipped). Returns 0 or -errno (-ETIMEDOUT).
int psh_keeper_call(int sock, uint64_t id, int32_t op, int32_t arg, const int *_Nullable fds, int32_t nfds,
                    uint32_t watch_mask, int timeout_ms, psh_keeper_reply *reply);

/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV... as `resolve` says:
/// `path` relative to `dirfd`, never leaving it. Returns the fd or -errno.
int psh_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/// open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH [| AT_RECURSIVE]): a
/// detached copy of the mount at `fd`, to be moved into a container. Returns the fd or -errno.
int psh_open_tree_clone(int fd, bool recursive);

/// RESOLVE_* flags of openat2, which import badly.
extern const uint64_t psh_resolve_beneath;
extern const uint64_t psh_resolve_no_magiclinks;
/// O_PATH (glibc hides it behind _GNU_SOURCE).
extern const int psh_o_path;

/// A SOCK_SEQPACKET socketpair, close-on-exec. Returns 0 or -errno.
int psh_seqpacket_pair(int fds[_Nonnull 2]);

/// pidfd_getfd(2): a copy of fd `targetfd` of the process behind `pidfd`. Returns the fd or -errno.
int psh_pidfd_getfd(int pidfd, int targetfd);

/// Reaps one exited child if there is one (waitid(P_ALL, WEXITED | WNOHANG)).
/// Returns 1 and fills `out`, 0 when no child has exited, -ECHILD when there are no children.
int psh_wait_any_nohang(psh_exit *out);

/// A non-blocking CLOCK_MONOTONIC timerfd that expires every `seconds`. Returns the fd or -errno.
int psh_timerfd_periodic(unsigned int seconds);

/// Blocks until `fd` is readable or `timeout_ms` passes (-1 = forever).
/// Returns 1 when readable, 0 on timeout, -errno on error.
int psh_poll_readable(int fd, int timeout_ms);

/// pipe2(O_CLOEXEC), returning -errno.
int psh_pipe_cloexec(int fds[_Nonnull 2]);

/// A pseudo-terminal: fds[0] the master, fds[1] the slave, both close-on-exec and not
/// controlling podshim; -errno on failure.
int psh_pty_open(int fds[_Nonnull 2]);

/// TIOCSWINSZ on a terminal (ioctl is variadic: Swift cannot call it); -errno on failure.
int psh_pty_resize(int fd, unsigned short rows, unsigned short columns);

// ---------------------------------------------------------------------------------------------
// Spawning a process into namespaces and a root filesystem
// ---------------------------------------------------------------------------------------------

/// What kind of file a mount target must be created as, when it does not exist.
typedef enum psh_target_kind {
    PSH_TARGET_DIRECTORY = 0,
    PSH_TARGET_FILE = 1,
} psh_target_kind;

/// One mount performed in the child, in order.
typedef struct psh_mount_spec {
    /// mount(2) source; may be NULL (e.g. for proc or tmpfs, "none" is used).
    const char *_Nullable source;
    /// Absolute path inside the container's root filesystem. Resolved with openat2(RESOLVE_IN_ROOT),
    /// so a symlink in the image can never send the mount outside the rootfs.
    const char *target;
    /// Filesystem type; NULL for a bind mount.
    const char *_Nullable fstype;
    /// MS_* flags. For a bind mount, MS_RDONLY/NOSUID/NODEV/NOEXEC are applied by a remount.
    unsigned long flags;
    /// Filesystem data, may be NULL.
    const char *_Nullable data;
    /// What to create at `target` when missing.
    psh_target_kind target_kind;
    /// Skip this mount when `target` does not exist, instead of creating it (masked paths such as
    /// /proc/kcore exist on some kernels only).
    bool optional;
    /// A masked path: an empty read-only tmpfs when the target is a directory, else `source`
    /// (/dev/null) bound read-only over it.
    bool mask;
    /// Propagation of a bind mount (PSH_PROPAGATION_*). For slave and shared the source tree is
    /// cloned (open_tree) before "/" is made private, so it stays in the host's peer group.
    int propagation;
    /// mount_setattr(MOUNT_ATTR_RDONLY, AT_RECURSIVE) once mounted: submounts read-only too.
    bool recursive_readonly;
    /// A detached mount tree podshim cloned (open_tree OPEN_TREE_CLONE) from what it opened
    /// itself, moved into place (move_mount) instead of mounting `source` by name; -1 for none.
    int source_fd;
} psh_mount_spec;

enum {
    PSH_PROPAGATION_PRIVATE = 0,
    PSH_PROPAGATION_SLAVE = 1,
    PSH_PROPAGATION_SHARED = 2,
};

/// A sysctl written in the child's namespaces: `value` into the file `path` under /proc/sys.
typedef struct psh_file_write {
    const char *path;
    const char *value;
} psh_file_write;

/// A device node created with mknod in the container's /dev.
typedef struct psh_device_spec {
    const char *path;   // absolute, inside the rootfs
    uint32_t mode;      // S_IFCHR | permissions
    uint32_t major;
    uint32_t minor;
} psh_device_spec;

/// A symlink created in the container (e.g. /dev/fd -> /proc/self/fd).
typedef struct psh_symlink_spec {
    const char *target;   // what the link points to
    const char *path;     // absolute, inside the rootfs
} psh_symlink_spec;

/// Everything the child needs, prepared by Swift before the clone. Nothing is allocated after it.
typedef struct psh_spawn_config {
    /// clone3 flags for new namespaces (CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, ...).
    uint64_t clone_flags;
    /// A pidfd whose namespaces the child joins with setns(pidfd, join_flags); -1 for none.
    int join_pidfd;
    /// Namespaces (CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS) joined through join_pidfd.
    int join_flags;
    /// A pidfd whose PID namespace the child is born into (the calling thread enters it for
    /// children around the clone and restores its own afterwards); -1 for none.
    int pid_ns_pidfd;
    /// cgroup directory fd for CLONE_INTO_CGROUP; -1 for none.
    int cgroup_fd;

    /// sethostname in the child (only for a process that owns a new UTS namespace); NULL = keep.
    const char *_Nullable hostname;
    /// Bring the loopback interface up (only for a process that owns a new network namespace).
    bool loopback_up;
    /// Sysctls written once the namespaces are in place, before any privilege is dropped.
    const psh_file_write *_Nullable sysctls;
    size_t sysctl_count;
    /// Write `oom_score_adj` to /proc/self/oom_score_adj (before privileges are dropped).
    bool set_oom_score_adj;
    int oom_score_adj;

    /// Host path of the container's root directory (must be a directory). NULL = no new root:
    /// the process runs in the host's filesystem (the pause process).
    const char *_Nullable rootfs;
    /// Mounted on `rootfs` itself first (the overlay); NULL when rootfs is already a mount or a plain dir.
    const psh_mount_spec *_Nullable rootfs_mount;
    const psh_mount_spec *_Nullable mounts;
    size_t mount_count;
    const psh_device_spec *_Nullable devices;
    size_t device_count;
    const psh_symlink_spec *_Nullable symlinks;
    size_t symlink_count;

    /// Remount the root filesystem read-only once every mount is in place.
    bool readonly_rootfs;

    uint32_t uid;
    uint32_t gid;
    const uint32_t *_Nullable supplementary_gids;
    size_t supplementary_gid_count;

    /// Capabilities, as bitmasks of capability numbers. When `set_capabilities` is false the
    /// process keeps what it inherits (the pause process).
    bool set_capabilities;
    /// Highest capability number the kernel knows (/proc/sys/kernel/cap_last_cap).
    int cap_last;
    uint64_t cap_bounding;
    uint64_t cap_permitted;
    uint64_t cap_effective;
    uint64_t cap_inheritable;
    uint64_t cap_ambient;
    /// prctl(PR_SET_NO_NEW_PRIVS) before execve.
    bool no_new_privs;
    /// A classic BPF seccomp program (`struct sock_filter` entries), or NULL for none.
    const void *_Nullable seccomp_filter;
    /// Number of `struct sock_filter` entries in `seccomp_filter`.
    uint16_t seccomp_filter_length;

    // path, argv, envp and search_path are required; they are _Nullable only so that Swift can
    // zero-initialise the struct and fill it in field by field.
    /// The program: absolute, relative with a '/', or a bare name looked up in `search_path`.
    const char *_Nullable path;
    char *_Nullable const *_Nullable argv;
    char *_Nullable const *_Nullable envp;
    /// PATH used to look up a bare program name (from the container's env, or the default).
    const char *_Nullable search_path;
    /// Working directory inside the new root; NULL = "/".
    const char *_Nullable cwd;
    /// Duplicated onto 0, 1, 2. Every other fd is closed at execve.
    int stdio[3];
    /// stdin is a terminal (a pty's slave end) that becomes the process's controlling terminal
    /// (TIOCSCTTY after setsid): a tty exec.
    bool controlling_tty;
    /// PSH_MARK_COUNT CLOCK_MONOTONIC instants (ns), or NULL: where the start's time goes. The
    /// child writes them into the parent's memory (it shares it: CLONE_VM); a mark it did not reach,
    /// or a child that does not share memory (the fork-like fallback), leaves 0.
    int64_t *_Nullable profile;
} psh_spawn_config;

/// The instants of a start's profile (psh_spawn_config.profile), in order.
typedef enum psh_mark {
    PSH_MARK_CLONE = 0,      // parent, before clone3
    PSH_MARK_CHILD,          // child, first instruction
    PSH_MARK_NAMESPACES,     // signals reset, setsid, setns, hostname, loopback, sysctls, oom_score_adj
    PSH_MARK_MOUNT_PREPARE,  // bind sources cloned, "/" made private
    PSH_MARK_ROOTFS,         // rootfs mounted (overlay)
    PSH_MARK_MOUNTS,         // mounts, devices, symlinks in it; read-only remount
    PSH_MARK_PIVOT_ROOT,     // pivot_root, old root detached
    PSH_MARK_CREDENTIALS,    // bounding set, uid/gid/groups, capabilities, no_new_privs (and an early seccomp)
    PSH_MARK_STDIO,          // stdio, close_range, chdir
    PSH_MARK_SECCOMP,        // the seccomp filter loaded (with no_new_privs: last)
    PSH_MARK_EXECVE,         // parent, clone3 returned: the child has exec'd (CLONE_VFORK)
    PSH_MARK_COUNT
} psh_mark;

/// The stage at which a child failed; reported with its errno over the CLOEXEC pipe.
typedef enum psh_stage {
    PSH_STAGE_NONE = 0,
    PSH_STAGE_CLONE,
    PSH_STAGE_SIGNALS,
    PSH_STAGE_SETSID,
    PSH_STAGE_SETNS,
    PSH_STAGE_HOSTNAME,
    PSH_STAGE_LOOPBACK,
    PSH_STAGE_SYSCTL,
    PSH_STAGE_OOM_SCORE_ADJ,
    PSH_STAGE_CLONE_MOUNT,
    PSH_STAGE_PROPAGATION,
    PSH_STAGE_MOUNT_PRIVATE,
    PSH_STAGE_ROOTFS_MOUNT,
    PSH_STAGE_OPEN_ROOTFS,
    PSH_STAGE_MOUNT_TARGET,
    PSH_STAGE_MOUNT,
    PSH_STAGE_REMOUNT,
    PSH_STAGE_MKNOD,
    PSH_STAGE_SYMLINK,
    PSH_STAGE_READONLY_ROOTFS,
    PSH_STAGE_PIVOT_ROOT,
    PSH_STAGE_BOUNDING_SET,
    PSH_STAGE_KEEPCAPS,
    PSH_STAGE_SETGROUPS,
    PSH_STAGE_SETGID,
    PSH_STAGE_SETUID,
    PSH_STAGE_CAPSET,
    PSH_STAGE_AMBIENT,
    PSH_STAGE_NO_NEW_PRIVS,
    PSH_STAGE_SECCOMP,
    PSH_STAGE_STDIO,
    PSH_STAGE_CHDIR,
    PSH_STAGE_EXECVE,
} psh_stage;

/// What a failed child reports. `index` says which mount/device/symlink failed, else -1.
typedef struct psh_spawn_report {
    int32_t stage;
    int32_t error;
    int32_t index;
} psh_spawn_report;

/// A started child.
typedef struct psh_spawn_handle {
    pid_t pid;
    int pidfd;
    /// Read end of the report pipe; pass to psh_spawn_finish, which closes it.
    int report_fd;
} psh_spawn_handle;

/// Clones the child (clone3 with CLONE_PIDFD, falling back to clone) and returns at once.
/// The child runs the setup described by `config` and execs. Signals are blocked in the calling
/// thread around the clone. Returns 0 or -errno (the clone failed; nothing was started).
int psh_spawn_start(const psh_spawn_config *config, psh_spawn_handle *handle);

/// Sends SIGKILL to a child whose clone may still be in progress, through the pidfd the kernel
/// wrote into `handle` (safe from another thread while psh_spawn_start runs: the field is read
/// atomically). Returns -ESRCH when no pidfd has been written yet.
int psh_spawn_kill_in_setup(const psh_spawn_handle *handle);

/// Waits until the child has exec'd (returns 0) or reports why it could not (returns 1 and fills
/// `report`; the child then exits with status 127). No timeout here: a child that hangs in its
/// setup is killed by the caller's watchdog (psh_spawn_kill_in_setup), which ends the wait.
/// Closes handle->report_fd.
int psh_spawn_finish(const psh_spawn_handle *handle, psh_spawn_report *report);

/// Human name of a stage ("mount", "execve", ...).
const char *psh_stage_name(int32_t stage);

// ---------------------------------------------------------------------------------------------
// Extended attributes on a descriptor (the layer unpacker; <sys/xattr.h> is not in Swift's Glibc)
// ---------------------------------------------------------------------------------------------

/// fsetxattr(2) with flags 0 (create or replace). Returns 0 or -errno.
int psh_fsetxattr(int fd, const char *name, const void *_Nullable value, size_t size);

/// syncfs(2): writes back the whole file system holding `fd`. Returns 0 or -errno.
int psh_syncfs(int fd);

/// fgetxattr(2): copies at most `size` bytes of the value into `value` (size 0: only the length).
/// Returns the value's length or -errno (-ENODATA when the attribute is absent).
long psh_fgetxattr(int fd, const char *name, void *_Nullable value, size_t size);

#if __has_feature(nullability)
#pragma clang assume_nonnull end
#endif

#endif

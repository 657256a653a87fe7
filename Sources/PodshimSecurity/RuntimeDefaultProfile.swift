/// The `RuntimeDefault` profile, in the spirit of Docker's default seccomp profile
/// (moby/profiles seccomp `default.json`, whose syscall lists it follows): deny with EPERM by default;
/// allow what ordinary programs use; allow the dangerous rest only with the capability that makes it
/// legitimate (mount, unshare, setns, … with CAP_SYS_ADMIN; module loading with CAP_SYS_MODULE;
/// reboot with CAP_SYS_BOOT; …); never allow kexec_load, swapon/swapoff, keyctl/add_key/request_key,
/// userfaultfd or io_uring; socket() for every address family but AF_ALG and AF_VSOCK.
///
/// Kept as data in the same model a `Localhost` profile parses into, and compiled by the same path.
public enum RuntimeDefaultProfile {
    /// Clone flags that create namespaces: CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER |
    /// NEWPID | NEWNET (0x7E020000). Without CAP_SYS_ADMIN, `clone` must have none of them.
    public static let namespaceCloneFlags: UInt64 = 0x7E02_0000

    /// The profile.
    public static let document = SeccompProfileDocument(
        defaultAction: .errno, defaultErrnoRet: 1,  // EPERM
        archMap: [
            SeccompArchitectureEntry(architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            SeccompArchitectureEntry(architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"]),
        ],
        syscalls: rules)

    static let rules: [SeccompSyscallRule] = [
        SeccompSyscallRule(names: allowed, action: .allow),
        // Cross-process memory access and ptrace were unsafe under seccomp before 4.8.
        SeccompSyscallRule(
            names: ["process_vm_readv", "process_vm_writev", "ptrace"], action: .allow,
            includes: SeccompRuleCondition(minKernel: SeccompKernelVersion(4, 8))),
        // socket: every address family but AF_ALG (38) and AF_VSOCK (40).
        SeccompSyscallRule(names: ["socket"], action: .allow, args: [SeccompArgument(index: 0, value: 38, op: .lessThan)]),
        SeccompSyscallRule(names: ["socket"], action: .allow, args: [SeccompArgument(index: 0, value: 39, op: .equal)]),
        SeccompSyscallRule(names: ["socket"], action: .allow, args: [SeccompArgument(index: 0, value: 40, op: .greaterThan)]),
        // personality: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and the 0xffffffff query.
        SeccompSyscallRule(names: ["personality"], action: .allow, args: [SeccompArgument(index: 0, value: 0x0, op: .equal)]),
        SeccompSyscallRule(names: ["personality"], action: .allow, args: [SeccompArgument(index: 0, value: 0x8, op: .equal)]),
        SeccompSyscallRule(names: ["personality"], action: .allow, args: [SeccompArgument(index: 0, value: 0x20000, op: .equal)]),
        SeccompSyscallRule(names: ["personality"], action: .allow, args: [SeccompArgument(index: 0, value: 0x20008, op: .equal)]),
        SeccompSyscallRule(names: ["personality"], action: .allow, args: [SeccompArgument(index: 0, value: 0xFFFF_FFFF, op: .equal)]),
        // Architecture-specific calls.
        SeccompSyscallRule(
            names: ["sync_file_range2", "swapcontext"], action: .allow,
            includes: SeccompRuleCondition(arches: ["ppc64le"])),
        SeccompSyscallRule(
            names: ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
            action: .allow, includes: SeccompRuleCondition(arches: ["arm", "arm64"])),
        SeccompSyscallRule(names: ["arch_prctl"], action: .allow, includes: SeccompRuleCondition(arches: ["amd64", "x32"])),
        SeccompSyscallRule(names: ["modify_ldt"], action: .allow, includes: SeccompRuleCondition(arches: ["amd64", "x32", "x86"])),
        SeccompSyscallRule(
            names: ["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], action: .allow,
            includes: SeccompRuleCondition(arches: ["s390", "s390x"])),
        SeccompSyscallRule(names: ["riscv_flush_icache"], action: .allow, includes: SeccompRuleCondition(arches: ["riscv64"])),
        // Capability-gated calls.
        SeccompSyscallRule(names: ["open_by_handle_at"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_DAC_READ_SEARCH"])),
        SeccompSyscallRule(names: sysAdmin, action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_ADMIN"])),
        // Without CAP_SYS_ADMIN: clone without namespace flags (the flags are argument 1 on s390).
        SeccompSyscallRule(
            names: ["clone"], action: .allow,
            args: [SeccompArgument(index: 0, value: namespaceCloneFlags, valueTwo: 0, op: .maskedEqual)],
            excludes: SeccompRuleCondition(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"])),
        SeccompSyscallRule(
            names: ["clone"], action: .allow,
            args: [SeccompArgument(index: 1, value: namespaceCloneFlags, valueTwo: 0, op: .maskedEqual)],
            includes: SeccompRuleCondition(arches: ["s390", "s390x"]),
            excludes: SeccompRuleCondition(caps: ["CAP_SYS_ADMIN"])),
        // clone3 passes its flags in memory, which seccomp cannot read: ENOSYS makes libc fall back
        // to clone, which the rule above checks.
        SeccompSyscallRule(names: ["clone3"], action: .errno, errnoRet: 38, excludes: SeccompRuleCondition(caps: ["CAP_SYS_ADMIN"])),
        SeccompSyscallRule(names: ["reboot"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_BOOT"])),
        SeccompSyscallRule(names: ["chroot"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_CHROOT"])),
        SeccompSyscallRule(
            names: ["delete_module", "init_module", "finit_module"], action: .allow,
            includes: SeccompRuleCondition(caps: ["CAP_SYS_MODULE"])),
        SeccompSyscallRule(names: ["acct"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_PACCT"])),
        SeccompSyscallRule(
            names: ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
            action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_PTRACE"])),
        SeccompSyscallRule(names: ["iopl", "ioperm"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_RAWIO"])),
        SeccompSyscallRule(
            names: ["settimeofday", "stime", "clock_settime", "clock_settime64"], action: .allow,
            includes: SeccompRuleCondition(caps: ["CAP_SYS_TIME"])),
        SeccompSyscallRule(names: ["vhangup"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYS_TTY_CONFIG"])),
        SeccompSyscallRule(
            names: ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"], action: .allow,
            includes: SeccompRuleCondition(caps: ["CAP_SYS_NICE"])),
        SeccompSyscallRule(names: ["syslog"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_SYSLOG"])),
        SeccompSyscallRule(names: ["bpf"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_BPF"])),
        SeccompSyscallRule(names: ["perf_event_open"], action: .allow, includes: SeccompRuleCondition(caps: ["CAP_PERFMON"])),
    ]

    /// Allowed only with CAP_SYS_ADMIN: mounts, namespaces, host names, BPF, perf, quotas, LSM
    /// attributes, and `clone`/`clone3` with any flags. Docker's list plus `pivot_root` (Docker
    /// never allows it; with CAP_SYS_ADMIN and `mount` allowed it adds nothing, and nested runtimes
    /// need it).
    static let sysAdmin: [String] = [
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
        "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr", "move_mount",
        "open_tree", "perf_event_open", "pivot_root", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
        "setns", "syslog", "umount", "umount2", "unshare",
    ]

    /// Allowed to every container (Docker's list, 32-bit and other ABIs' names included: the ones
    /// the native architecture lacks are no-ops).
    static let allowed: [String] = [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
        "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
        "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
        "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
        "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
        "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
        "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
        "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
        "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
        "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
        "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
        "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
        "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
        "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
        "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
        "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
        "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
        "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule",
        "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
        "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
        "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack",
        "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
        "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify",
        "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
        "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
        "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
        "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
        "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev",
        "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
        "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename",
        "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction",
        "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
        "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
        "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64",
        "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
        "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
        "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
        "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
        "setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
        "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
        "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
        "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
        "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
        "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
        "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
        "unlink", "unlinkat", "uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
        "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
    ]
}

// podshim-pause: the process that holds a pod's namespaces.
//
// * It is PID 1 of the pod's PID namespace, and the kernel drops a signal sent to PID 1 unless
//   PID 1 handles it: SIGTERM and SIGINT get a handler that exits 0.
// * As PID 1 it adopts every orphan of a pod that shares its PID namespace: SIGCHLD is set to
//   SIG_IGN with SA_NOCLDWAIT, so the kernel reaps them and no zombie is left behind.
// * It keeps what must outlive podshim (the fd keeper): when started with a SOCK_SEQPACKET
//   socket on fd 0 (and the same socketpair's other end on fd 1, which keeps it open while no
//   podshim runs), it holds the fds podshim sends it (SCM_RIGHTS) — a container's pidfd and the
//   read ends of its output pipes — so that a container that exits while podshim is down keeps
//   its exit status (PIDFD_INFO_EXIT, Linux 6.15) and its output pipes stay open (no SIGPIPE, no
//   lost line). It watches the pidfds and records when each process exited. A restarted podshim
//   takes fd 1 back with pidfd_getfd and asks again. Requests and replies are fixed-size structs
//   (struct keeper_request / keeper_reply below; they must match psh_keeper_* in podshim_shims.h).
// * Without a socket on fd 0 it sleeps in rt_sigsuspend.
//
// Freestanding (no libc, raw syscalls), built with hack/build-pause.sh:
// a static glibc build has ~700 KB of resident file pages, this one stays under 20 KB.
// (A C target linked by SwiftPM would pull in libswiftCore, ~5 MB.)

#define SIGINT 2
#define SIGTERM 15
#define SIGCHLD 17
#define SA_NOCLDWAIT 0x00000002UL
#define SA_RESTORER 0x04000000UL
#define SIG_IGN ((void *)1)

#if defined(__x86_64__)
#define NR_write 1
#define NR_close 3
#define NR_recvmsg 47
#define NR_getsockopt 55
#define NR_ppoll 271
#define NR_clock_gettime 228
#define NR_rt_sigaction 13
#define NR_rt_sigreturn 15
#define NR_rt_sigsuspend 130
#define NR_exit_group 231

static long sys3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
static long sys4(long n, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}
static long sys5(long n, long a, long b, long c, long d, long e) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return ret;
}
// x86-64 requires a restorer for every handler; ours never returns, but the kernel checks.
__asm__(".text\n.type pause_restorer,@function\npause_restorer:\n mov $15, %rax\n syscall\n hlt\n");
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call pause_main\n hlt\n");
#define HAVE_RESTORER 1
#elif defined(__aarch64__)
#define NR_write 64
#define NR_close 57
#define NR_recvmsg 212
#define NR_getsockopt 209
#define NR_ppoll 73
#define NR_clock_gettime 113
#define NR_rt_sigaction 134
#define NR_rt_sigsuspend 133
#define NR_exit_group 94

static long sys5(long n, long a, long b, long c, long d, long e) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}
static long sys4(long n, long a, long b, long c, long d) { return sys5(n, a, b, c, d, 0); }
static long sys3(long n, long a, long b, long c) { return sys4(n, a, b, c, 0); }
__asm__(".text\n.global _start\n_start:\n mov x0, sp\n bl pause_main\n");
#define HAVE_RESTORER 0
#else
#error "podshim-pause supports x86_64 and aarch64"
#endif

/// The kernel's struct sigaction (not glibc's): handler, flags, restorer, 64-bit mask.
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

#if HAVE_RESTORER
extern void pause_restorer(void);
#endif

static void on_terminate(int signo) {
    (void)signo;
    sys3(NR_exit_group, 0, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// The fd keeper.
// ---------------------------------------------------------------------------------------------

#define KEEPER_HOLD 1    // keep the fds attached; watch those whose bit is set in watch_mask
#define KEEPER_RELEASE 2 // close fd `arg`
#define KEEPER_QUERY 3   // when the process of pidfd `arg` exited (0: not yet)
#define KEEPER_MAX_FDS 8
#define KEEPER_TABLE 4096

struct keeper_request {
    unsigned long long id;
    int op;
    int arg;
    unsigned int watch_mask;
    int pad;
};

struct keeper_reply {
    unsigned long long id;
    int result; // 0 or -errno
    int count;
    int fds[KEEPER_MAX_FDS];
    long long exited_at; // CLOCK_REALTIME nanoseconds
};

struct iovec_k {
    void *base;
    unsigned long len;
};

struct msghdr_k {
    void *name;
    int namelen;
    struct iovec_k *iov;
    unsigned long iovlen;
    void *control;
    unsigned long controllen;
    unsigned int flags;
};

struct cmsghdr_k {
    unsigned long len;
    int level;
    int type;
};

struct pollfd_k {
    int fd;
    short events;
    short revents;
};

struct timespec_k {
    long sec;
    long nsec;
};

#define POLLIN_K 0x001
#define SOL_SOCKET_K 1
#define SO_TYPE_K 3
#define SCM_RIGHTS_K 1
#define MSG_CMSG_CLOEXEC_K 0x40000000
#define EINTR_K 4
#define EBADF_K 9
#define EINVAL_K 22

static unsigned char watched[KEEPER_TABLE];
static long long exited_at[KEEPER_TABLE];
static struct pollfd_k polls[KEEPER_TABLE + 1];

static long long now_realtime(void) {
    struct timespec_k ts = {0, 0};
    sys3(NR_clock_gettime, 0, (long)&ts, 0);
    return ts.sec * 1000000000LL + ts.nsec;
}

static void keeper_request(void) {
    struct keeper_request request;
    union {
        struct cmsghdr_k header;
        char bytes[sizeof(struct cmsghdr_k) + sizeof(int) * KEEPER_MAX_FDS];
    } control;
    struct iovec_k iov = {&request, sizeof request};
    struct msghdr_k message = {0, 0, &iov, 1, &control, sizeof control, 0};
    long n = sys3(NR_recvmsg, 0, (long)&message, MSG_CMSG_CLOEXEC_K);
    if (n < 0) {
        return; // EINTR, or a spurious wakeup: ppoll again
    }
    int received[KEEPER_MAX_FDS];
    int count = 0;
    if (message.controllen >= sizeof(struct cmsghdr_k) && control.header.level == SOL_SOCKET_K &&
        control.header.type == SCM_RIGHTS_K) {
        count = (int)((control.header.len - sizeof(struct cmsghdr_k)) / sizeof(int));
        int *fds = (int *)(control.bytes + sizeof(struct cmsghdr_k));
        for (int i = 0; i < count && i < KEEPER_MAX_FDS; i++) {
            received[i] = fds[i];
        }
    }
    struct keeper_reply reply;
    char *raw = (char *)&reply;
    for (unsigned long i = 0; i < sizeof reply; i++) {
        raw[i] = 0;
    }
    reply.id = request.id;
    if (n != (long)sizeof request) {
        for (int i = 0; i < count; i++) {
            sys3(NR_close, received[i], 0, 0);
        }
        reply.result = -EINVAL_K;
    } else if (request.op == KEEPER_HOLD) {
        for (int i = 0; i < count; i++) {
            int fd = received[i];
            reply.fds[i] = fd;
            if (fd >= 0 && fd < KEEPER_TABLE) {
                watched[fd] = (request.watch_mask >> i) & 1;
                exited_at[fd] = 0;
            }
        }
        reply.count = count;
    } else if (request.op == KEEPER_RELEASE) {
        for (int i = 0; i < count; i++) {
            sys3(NR_close, received[i], 0, 0);
        }
        if (request.arg <= 2) {
            reply.result = -EBADF_K; // never its own control sockets or stderr
        } else {
            if (request.arg < KEEPER_TABLE) {
                watched[request.arg] = 0;
                exited_at[request.arg] = 0;
            }
            reply.result = (int)sys3(NR_close, request.arg, 0, 0);
        }
    } else if (request.op == KEEPER_QUERY) {
        for (int i = 0; i < count; i++) {
            sys3(NR_close, received[i], 0, 0);
        }
        if (request.arg >= 0 && request.arg < KEEPER_TABLE) {
            reply.exited_at = exited_at[request.arg];
        } else {
            reply.result = -EBADF_K;
        }
    } else {
        for (int i = 0; i < count; i++) {
            sys3(NR_close, received[i], 0, 0);
        }
        reply.result = -EINVAL_K;
    }
    sys3(NR_write, 0, (long)&reply, sizeof reply);
}

__attribute__((noreturn)) static void keeper_loop(void) {
    for (;;) {
        int count = 0;
        polls[count].fd = 0;
        polls[count].events = POLLIN_K;
        polls[count].revents = 0;
        count++;
        for (int fd = 3; fd < KEEPER_TABLE; fd++) {
            if (watched[fd]) {
                polls[count].fd = fd;
                polls[count].events = POLLIN_K;
                polls[count].revents = 0;
                count++;
            }
        }
        long ready = sys4(NR_ppoll, (long)polls, count, 0, 0);
        if (ready <= 0) {
            continue; // EINTR (SIGTERM's handler exits)
        }
        for (int i = 1; i < count; i++) {
            if (polls[i].revents) {
                // A pidfd is readable once its process has exited: note when, stop watching.
                watched[polls[i].fd] = 0;
                exited_at[polls[i].fd] = now_realtime();
            }
        }
        if (polls[0].revents) {
            keeper_request();
        }
    }
}

static int install(int signo, void *handler, unsigned long flags) {
    struct kernel_sigaction action = {handler, flags, 0, 0};
#if HAVE_RESTORER
    action.flags |= SA_RESTORER;
    action.restorer = (void *)pause_restorer;
#endif
    return (int)sys4(NR_rt_sigaction, signo, (long)&action, 0, sizeof action.mask);
}

__attribute__((used, noreturn)) void pause_main(long *stack) {
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'v' && argv[1][2] == 0) {
        static const char version[] = "podshim-pause 1\n";
        sys3(NR_write, 1, (long)version, sizeof version - 1);
        sys3(NR_exit_group, 0, 0, 0);
    }
    if (install(SIGTERM, (void *)on_terminate, 0) < 0 || install(SIGINT, (void *)on_terminate, 0) < 0 ||
        install(SIGCHLD, SIG_IGN, SA_NOCLDWAIT) < 0) {
        sys3(NR_exit_group, 1, 0, 0);
    }
    int type = 0;
    int length = sizeof type;
    if (sys5(NR_getsockopt, 0, SOL_SOCKET_K, SO_TYPE_K, (long)&type, (long)&length) == 0) {
        keeper_loop(); // fd 0 is a socket: podshim's fd keeper
    }
    unsigned long empty = 0;
    for (;;) {
        sys3(NR_rt_sigsuspend, (long)&empty, sizeof empty, 0);
    }
}

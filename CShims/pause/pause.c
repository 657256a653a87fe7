// podshim-pause: the process that holds a pod's namespaces.
//
// * It is PID 1 of the pod's PID namespace, and the kernel drops a signal sent to PID 1 unless
//   PID 1 handles it: SIGTERM and SIGINT get a handler that exits 0.
// * As PID 1 it adopts every orphan of a pod that shares its PID namespace: SIGCHLD is set to
//   SIG_IGN with SA_NOCLDWAIT, so the kernel reaps them and no zombie is left behind.
// * Otherwise it sleeps in rt_sigsuspend.
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
// x86-64 requires a restorer for every handler; ours never returns, but the kernel checks.
__asm__(".text\n.type pause_restorer,@function\npause_restorer:\n mov $15, %rax\n syscall\n hlt\n");
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call pause_main\n hlt\n");
#define HAVE_RESTORER 1
#elif defined(__aarch64__)
#define NR_write 64
#define NR_rt_sigaction 134
#define NR_rt_sigsuspend 133
#define NR_exit_group 94

static long sys4(long n, long a, long b, long c, long d) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
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
    unsigned long empty = 0;
    for (;;) {
        sys3(NR_rt_sigsuspend, (long)&empty, sizeof empty, 0);
    }
}

// probe: runs inside a test container (built static, copied into the test image) and does what
// busybox has no applet for.
//
//   probe sysv-write KEY TEXT    create a SysV shm segment with key KEY holding TEXT
//   probe sysv-read KEY          print the text of segment KEY (exit 1 if there is none)
//   probe posix-write NAME TEXT  shm_open(NAME) and store TEXT
//   probe posix-read NAME        print the text stored under NAME (exit 1 if there is none)
//   probe init-module            try to load a (empty) kernel module; print "ok" or the errno name
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

enum { SIZE = 4096 };

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "sysv-write") == 0) {
        int id = shmget((key_t)strtol(argv[2], NULL, 0), SIZE, IPC_CREAT | 0600);
        char *p = id < 0 ? (char *)-1 : shmat(id, NULL, 0);
        if (p == (char *)-1) { perror("shm"); return 1; }
        snprintf(p, SIZE, "%s", argv[3]);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "sysv-read") == 0) {
        int id = shmget((key_t)strtol(argv[2], NULL, 0), 0, 0);
        char *p = id < 0 ? (char *)-1 : shmat(id, NULL, SHM_RDONLY);
        if (p == (char *)-1) { perror("shm"); return 1; }
        printf("%s\n", p);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "posix-write") == 0) {
        int fd = shm_open(argv[2], O_CREAT | O_RDWR, 0600);
        if (fd < 0 || ftruncate(fd, SIZE) < 0) { perror("shm_open"); return 1; }
        char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
        snprintf(p, SIZE, "%s", argv[3]);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "posix-read") == 0) {
        int fd = shm_open(argv[2], O_RDONLY, 0);
        if (fd < 0) { perror("shm_open"); return 1; }
        char *p = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
        printf("%s\n", p);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "init-module") == 0) {
        static const char image[16];
        if (syscall(SYS_init_module, image, sizeof image, "") == 0) { puts("ok"); return 0; }
        puts(errno == EPERM ? "EPERM" : errno == ENOEXEC ? "ENOEXEC" : errno == EFAULT ? "EFAULT" : "other");
        return 1;
    }
    fprintf(stderr, "usage: probe init-module |  sysv-write KEY TEXT | sysv-read KEY | posix-write NAME TEXT | posix-read NAME\n");
    return 2;
}

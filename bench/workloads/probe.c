/*
 * isobench-probe: the one static binary every environment runs, so native, container and VM
 * execute the very same instructions.
 *
 *   probe ready                     print CLOCK_REALTIME at the first instruction of main()
 *   probe syscall NULL MIXED DIR    null (getppid) and mixed (stat/open/read/close) call rates
 *   probe idle BYTES SECONDS        touch BYTES of memory, say "ready", idle, report peak RSS
 *
 * Output is "key=value" lines on stdout, parsed by bench/workloads/__init__.py.
 * Build: gcc -O2 -static -o isobench-probe probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void print_kernel(void) {
    struct utsname u;
    if (uname(&u) == 0) printf("kernel=%s\n", u.release);
}

static int cmd_ready(long long t_first) {
    printf("ready_ns=%lld\n", t_first);
    print_kernel();
    return 0;
}

static int cmd_syscall(long long null_calls, long long mixed_iters, const char *dir) {
    char path[4096];
    char buf[64];
    snprintf(path, sizeof path, "%s/isobench-probe-%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) {
        fprintf(stderr, "probe: cannot create %s: %s\n", path, strerror(errno));
        return 2;
    }
    memset(buf, 'x', sizeof buf);
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) {
        fprintf(stderr, "probe: write %s: %s\n", path, strerror(errno));
        return 2;
    }
    close(fd);

    long long t0 = now_ns(CLOCK_MONOTONIC);
    for (long long i = 0; i < null_calls; i++) syscall(SYS_getppid);
    long long t1 = now_ns(CLOCK_MONOTONIC);

    struct stat st;
    long long t2 = now_ns(CLOCK_MONOTONIC);
    for (long long i = 0; i < mixed_iters; i++) {
        if (stat(path, &st) != 0) return 3;
        int f = open(path, O_RDONLY);
        if (f < 0) return 3;
        if (read(f, buf, sizeof buf) < 0) return 3;
        close(f);
    }
    long long t3 = now_ns(CLOCK_MONOTONIC);
    unlink(path);

    double null_s = (double)(t1 - t0) / 1e9, mixed_s = (double)(t3 - t2) / 1e9;
    long long mixed_calls = mixed_iters * 4; /* stat + open + read + close */
    printf("null_calls=%lld\nnull_seconds=%.9f\nnull_rate=%.3f\n", null_calls, null_s,
           (double)null_calls / null_s);
    printf("mixed_calls=%lld\nmixed_seconds=%.9f\nmixed_rate=%.3f\n", mixed_calls, mixed_s,
           (double)mixed_calls / mixed_s);
    printf("dir=%s\n", dir);
    print_kernel();
    return 0;
}

static int cmd_idle(long long bytes, double seconds) {
    char *mem = malloc((size_t)bytes);
    if (!mem && bytes > 0) {
        fprintf(stderr, "probe: cannot allocate %lld bytes\n", bytes);
        return 2;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (long long i = 0; i < bytes; i += page) mem[i] = (char)i;
    printf("ready_ns=%lld\n", now_ns(CLOCK_REALTIME));
    print_kernel();
    fflush(stdout);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    volatile long long sum = 0;
    for (long long i = 0; i < bytes; i += page) sum += mem[i];
    /* VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve(), so it would include
     * whatever launched the probe (a forked Python, runc init, sshd...). */
    long long hwm_kb = -1;
    FILE *status = fopen("/proc/self/status", "r");
    if (status) {
        char line[256];
        while (fgets(line, sizeof line, status))
            if (sscanf(line, "VmHWM: %lld kB", &hwm_kb) == 1) break;
        fclose(status);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss=%lld\n", hwm_kb >= 0 ? hwm_kb * 1024LL : -1LL);
    printf("maxrss_rusage=%lld\n", (long long)ru.ru_maxrss * 1024LL);
    free(mem);
    return 0;
}

int main(int argc, char **argv) {
    long long t_first = now_ns(CLOCK_REALTIME); /* first instruction of the workload */
    if (argc >= 2 && strcmp(argv[1], "ready") == 0) return cmd_ready(t_first);
    if (argc >= 5 && strcmp(argv[1], "syscall") == 0)
        return cmd_syscall(atoll(argv[2]), atoll(argv[3]), argv[4]);
    if (argc >= 4 && strcmp(argv[1], "idle") == 0) return cmd_idle(atoll(argv[2]), atof(argv[3]));
    fprintf(stderr,
            "usage: %s ready | syscall NULL_CALLS MIXED_ITERS DIR | idle BYTES SECONDS\n",
            argv[0]);
    return 64;
}

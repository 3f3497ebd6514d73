/*
 * isobench-probe: the one static binary every environment runs, so native, container and VM
 * execute the very same instructions.
 *
 *   probe ready                     print CLOCK_REALTIME at the first instruction of main()
 *   probe syscall NULL MIXED DIR    null (getppid) and mixed (stat/open/read/close) call rates
 *   probe idle BYTES SECONDS        touch BYTES of memory, say "ready", idle, report peak RSS
 *   probe netserver ADDR PORT [CPU] TCP server for netclient (PORT 0: any free port), forever;
 *                                   a stream is read in the chunk size the client writes
 *   probe netclient ADDR PORT STREAM_SECONDS STREAM_BUF RR_COUNT RR_SIZE CONNECTS [OMIT [CPU]]
 *                                   request/response round trips, connection set-ups, then a
 *                                   stream of OMIT + STREAM_SECONDS whose first OMIT seconds
 *                                   the receiver does not count (iperf3's -O); percentiles by
 *                                   nearest rank, times CLOCK_MONOTONIC
 *                                   CPU (both): pin the process to that CPU (iperf3's -A, taskset
 *                                   -c); -1 or absent: wherever the scheduler puts it
 *
 * Output is "key=value" lines on stdout, parsed by bench/workloads/execution.py (parse_keyvalues).
 * Build: gcc -O2 -static -o isobench-probe probe.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* ---- network: one protocol, one connection per test; the first byte names the test ---- */

#define NET_BUF_MAX (16 * 1024 * 1024)
#define NET_SAMPLES_MAX 1000000LL
#define NET_IO_TIMEOUT_S 30 /* a vanished peer unblocks either side after this */

static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *buf, size_t n) {
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, buf + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        put += (size_t)w;
    }
    return 0;
}

static void no_delay(int fd) { /* latency tests only: a stream keeps Nagle, as iperf3 does */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void net_options(int fd) {
    struct timeval tv = {NET_IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Pin this process to CPU (cpu < 0: leave it). Prints WHO_cpu=N, or "any" and the reason:
 * a CPU outside the allowed set (a container's cpuset) leaves the process unpinned. */
static void net_pin(const char *who, long cpu) {
    if (cpu < 0) {
        printf("%s_cpu=any\n", who);
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < CPU_SETSIZE) CPU_SET((int)cpu, &set);
    if (cpu < CPU_SETSIZE && sched_setaffinity(0, sizeof set, &set) == 0)
        printf("%s_cpu=%ld\n", who, cpu);
    else
        printf("%s_cpu=any (cannot pin to CPU %ld: %s)\n", who, cpu, strerror(errno));
}

static int net_address(const char *addr, long port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    /* Numeric IPv4 only: the probe never resolves names, so it can only reach what it is told. */
    return (port >= 0 && port <= 65535 && inet_pton(AF_INET, addr, &sa->sin_addr) == 1) ? 0 : -1;
}

/* Wait until FD is readable (WRITE: writable), as iperf3 does before its reads and writes:
 * 1 ready, 0 after NET_IO_TIMEOUT_S, -1 on error. */
static int net_wait(int fd, int write) {
    for (;;) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        struct timespec timeout = {NET_IO_TIMEOUT_S, 0};
        int n = pselect(fd + 1, write ? NULL : &set, write ? &set : NULL, NULL, &timeout, NULL);
        if (n == 0) errno = ETIMEDOUT;
        if (n >= 0 || errno != EINTR) return n > 0 ? 1 : n;
    }
}

static void set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/* The receiver's figure, as iperf3's "receiver" line with -O, read the way iperf3 3.x's server
 * reads: a non-blocking socket, one pselect() then one read of up to SIZE bytes, until EOF.
 * (Under emulation that pselect is ~10 % of a VM's stream: a blocking read loop is not what
 * iperf3 measures.) Bytes read before OMIT_NS after the first data byte are not counted; the
 * window runs from the first read after the omit period began to EOF.
 * Replies "TOTAL WINDOW_BYTES WINDOW_NS\n" (TOTAL: every byte, for the client's check). */
static void stream_receive(int c, char *buf, size_t size, long long omit_ns) {
    long long total = 0, counted = 0, first = 0, start = 0, end = 0;
    set_nonblocking(c, 1);
    for (;;) {
        ssize_t r = net_wait(c, 0) == 1 ? read(c, buf, size) : 0; /* timeout: as EOF */
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        long long t = now_ns(CLOCK_MONOTONIC);
        if (r <= 0) {
            end = t;
            break;
        }
        if (first == 0) first = t;
        if (start != 0)
            counted += r; /* arrived inside the window */
        else if (t - first >= omit_ns)
            start = t; /* this read opens the window; its bytes arrived before */
        total += r;
    }
    set_nonblocking(c, 0);
    char line[96];
    long long window = start != 0 ? end - start : 0;
    int len = snprintf(line, sizeof line, "%lld %lld %lld\n", total, counted, window);
    write_full(c, line, (size_t)len);
}

static void serve_one(int c, char *buf) {
    unsigned char mode;
    if (read_full(c, (char *)&mode, 1) != 0) return;
    if (mode != 'S') no_delay(c);
    if (mode == 'S') { /* stream: see stream_receive */
        unsigned char h[8];
        if (read_full(c, (char *)h, 8) != 0) return;
        size_t size = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        long long omit_ms = ((long long)h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7];
        if (size == 0 || size > NET_BUF_MAX) return;
        stream_receive(c, buf, size, omit_ms * 1000000LL);
    } else if (mode == 'R') { /* request/response: echo SIZE-byte messages until EOF */
        unsigned char h[4];
        if (read_full(c, (char *)h, 4) != 0) return;
        size_t size = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (size == 0 || size > NET_BUF_MAX) return;
        while (read_full(c, buf, size) == 0)
            if (write_full(c, buf, size) != 0) break;
    } else if (mode == 'C') { /* connection set-up: one byte back */
        write_full(c, "c", 1);
    }
}

static int cmd_netserver(const char *addr, long port, long cpu) {
    struct sockaddr_in sa;
    if (net_address(addr, port, &sa) != 0) {
        fprintf(stderr, "probe: bad address %s port %ld (numeric IPv4 expected)\n", addr, port);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 128) != 0) {
        fprintf(stderr, "probe: cannot listen on %s:%ld: %s\n", addr, port, strerror(errno));
        return 2;
    }
    socklen_t len = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &len);
    char *buf = malloc(NET_BUF_MAX);
    if (!buf) return 2;
    net_pin("server", cpu); /* before port=: the harness reads up to that line */
    printf("listening=%s\nport=%d\n", addr, ntohs(sa.sin_port));
    print_kernel();
    fflush(stdout);
    for (;;) { /* one client at a time: tests run one after another */
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fprintf(stderr, "probe: accept: %s\n", strerror(errno));
            return 2;
        }
        net_options(c);
        serve_one(c, buf);
        close(c);
    }
}

static int net_connect(const struct sockaddr_in *sa, int latency) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    net_options(fd);
    if (latency) no_delay(fd);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Sort, then print NAME_p50/p99 (nearest rank), _mean, _min, _max in seconds. */
static void print_latencies(const char *name, long long *ns, long long n) {
    qsort(ns, (size_t)n, sizeof *ns, cmp_ll);
    long long sum = 0;
    for (long long i = 0; i < n; i++) sum += ns[i];
    long long r50 = (50 * n + 99) / 100, r99 = (99 * n + 99) / 100;
    printf("%s_count=%lld\n%s_p50=%.9f\n%s_p99=%.9f\n", name, n, name, (double)ns[r50 - 1] / 1e9,
           name, (double)ns[r99 - 1] / 1e9);
    printf("%s_mean=%.9f\n%s_min=%.9f\n%s_max=%.9f\n", name, (double)sum / (double)n / 1e9, name,
           (double)ns[0] / 1e9, name, (double)ns[n - 1] / 1e9);
}

static int net_fail(const char *what) {
    fprintf(stderr, "probe: %s: %s\n", what, errno ? strerror(errno) : "connection closed");
    return 3;
}

static int net_rr(const struct sockaddr_in *sa, long long count, size_t size, char *buf,
                  long long *ns) {
    int fd = net_connect(sa, 1);
    if (fd < 0) return net_fail("rr connect");
    unsigned char h[5] = {'R', (unsigned char)(size >> 24), (unsigned char)(size >> 16),
                          (unsigned char)(size >> 8), (unsigned char)size};
    if (write_full(fd, (char *)h, 5) != 0) return net_fail("rr header");
    memset(buf, 'r', size);
    for (long long i = 0; i < count; i++) {
        long long t = now_ns(CLOCK_MONOTONIC);
        if (write_full(fd, buf, size) != 0 || read_full(fd, buf, size) != 0)
            return net_fail("rr round trip");
        ns[i] = now_ns(CLOCK_MONOTONIC) - t;
    }
    close(fd);
    print_latencies("rr", ns, count);
    return 0;
}

static int net_setup(const struct sockaddr_in *sa, long long count, long long *ns) {
    for (long long i = 0; i < count; i++) {
        char c;
        long long t = now_ns(CLOCK_MONOTONIC);
        int fd = net_connect(sa, 1);
        if (fd < 0) return net_fail("connect");
        if (write_full(fd, "C", 1) != 0 || read_full(fd, &c, 1) != 0) return net_fail("connect reply");
        ns[i] = now_ns(CLOCK_MONOTONIC) - t;
        close(fd);
    }
    print_latencies("connect", ns, count);
    return 0;
}

static int net_stream(const struct sockaddr_in *sa, double seconds, double omit,
                      size_t bufsize, char *buf) {
    int fd = net_connect(sa, 0);
    long long omit_ms = (long long)(omit * 1000.0 + 0.5);
    unsigned char h[9] = {'S',
                          (unsigned char)(bufsize >> 24),
                          (unsigned char)(bufsize >> 16),
                          (unsigned char)(bufsize >> 8),
                          (unsigned char)bufsize,
                          (unsigned char)(omit_ms >> 24),
                          (unsigned char)(omit_ms >> 16),
                          (unsigned char)(omit_ms >> 8),
                          (unsigned char)omit_ms};
    if (fd < 0 || write_full(fd, (char *)h, 9) != 0) return net_fail("stream connect");
    /* The sender's congestion control is part of what a stream measures (cubic moved 1.2x
     * more than bbr through Docker's proxy on one host): say which one this socket used,
     * as iperf3's JSON does (sender_tcp_congestion). */
    char congestion[17] = {0}; /* TCP_CA_NAME_MAX (16) and a terminator */
    socklen_t clen = 16;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, congestion, &clen) != 0) congestion[0] = 0;
    memset(buf, 's', bufsize);
    long long sent = 0, t0 = now_ns(CLOCK_MONOTONIC);
    long long stop = t0 + (long long)((seconds + omit) * 1e9);
    /* iperf3's client: non-blocking, one pselect() per up to 10 writes ("multisend") */
    set_nonblocking(fd, 1);
    while (now_ns(CLOCK_MONOTONIC) < stop) {
        if (net_wait(fd, 1) != 1) return net_fail("stream wait");
        for (int k = 0; k < 10 && now_ns(CLOCK_MONOTONIC) < stop; k++) {
            ssize_t w = write(fd, buf, bufsize);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == EAGAIN) break;
            if (w <= 0) return net_fail("stream write");
            sent += w;
        }
    }
    set_nonblocking(fd, 0);
    shutdown(fd, SHUT_WR); /* the server reports what it received once it reads EOF */
    char line[96] = {0};
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, line + got, sizeof line - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    long long t1 = now_ns(CLOCK_MONOTONIC), received = -1, counted = 0, window = 0;
    close(fd);
    if (sscanf(line, "%lld %lld %lld", &received, &counted, &window) != 3 || received != sent) {
        fprintf(stderr, "probe: stream: server received %lld of %lld bytes\n", received, sent);
        return 3;
    }
    if (window <= 0 || counted <= 0) {
        fprintf(stderr, "probe: stream: nothing arrived after the %.3f s omitted\n", omit);
        return 3;
    }
    double s = (double)window / 1e9;
    printf("stream_bytes=%lld\nstream_seconds=%.9f\nstream_rate=%.3f\nstream_buffer=%zu\n",
           counted, s, (double)counted / s, bufsize);
    printf("stream_omit=%.3f\nstream_total_bytes=%lld\nstream_sender_seconds=%.9f\n", omit,
           received, (double)(t1 - t0) / 1e9);
    printf("stream_congestion=%s\n", congestion[0] ? congestion : "unknown");
    return 0;
}

static int cmd_netclient(int argc, char **argv) {
    struct sockaddr_in sa;
    double seconds = atof(argv[4]);
    long long bufsize = atoll(argv[5]), rr_count = atoll(argv[6]), rr_size = atoll(argv[7]);
    long long connects = atoll(argv[8]);
    double omit = argc >= 10 ? atof(argv[9]) : 0.0;
    long cpu = argc >= 11 ? atol(argv[10]) : -1;
    if (net_address(argv[2], atol(argv[3]), &sa) != 0 || seconds <= 0 || seconds > 3600 ||
        omit < 0 || omit > 600 ||
        bufsize < 1 || bufsize > NET_BUF_MAX || rr_size < 1 || rr_size > NET_BUF_MAX ||
        rr_count < 1 || rr_count > NET_SAMPLES_MAX || connects < 1 || connects > NET_SAMPLES_MAX) {
        fprintf(stderr, "probe: netclient: arguments out of range\n");
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    size_t biggest = (size_t)(bufsize > rr_size ? bufsize : rr_size);
    char *buf = malloc(biggest);
    long long *ns = malloc((size_t)(rr_count > connects ? rr_count : connects) * sizeof *ns);
    if (!buf || !ns) return 2;
    printf("server=%s:%s\n", argv[2], argv[3]);
    net_pin("client", cpu);
    print_kernel();
    int rc = net_rr(&sa, rr_count, (size_t)rr_size, buf, ns);
    if (rc == 0) rc = net_setup(&sa, connects, ns);
    if (rc == 0) rc = net_stream(&sa, seconds, omit, (size_t)bufsize, buf);
    return rc;
}

int main(int argc, char **argv) {
    long long t_first = now_ns(CLOCK_REALTIME); /* first instruction of the workload */
    if (argc >= 2 && strcmp(argv[1], "ready") == 0) return cmd_ready(t_first);
    if (argc >= 5 && strcmp(argv[1], "syscall") == 0)
        return cmd_syscall(atoll(argv[2]), atoll(argv[3]), argv[4]);
    if (argc >= 4 && strcmp(argv[1], "idle") == 0) return cmd_idle(atoll(argv[2]), atof(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "netserver") == 0)
        return cmd_netserver(argv[2], atol(argv[3]), argc >= 5 ? atol(argv[4]) : -1);
    if (argc >= 9 && strcmp(argv[1], "netclient") == 0) return cmd_netclient(argc, argv);
    fprintf(stderr,
            "usage: %s ready | syscall NULL_CALLS MIXED_ITERS DIR | idle BYTES SECONDS\n"
            "       | netserver ADDR PORT [CPU]\n"
            "       | netclient ADDR PORT STREAM_SECONDS STREAM_BUF RR_COUNT RR_SIZE CONNECTS "
            "[OMIT [CPU]]\n",
            argv[0]);
    return 64;
}

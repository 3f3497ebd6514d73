/*
 * isobench-launch: times one launch the way `hyperfine -N` does, from a small C process.
 *
 *   isobench-launch REPORT_FD PROGRAM [ARG...]
 *
 * Reads CLOCK_REALTIME and CLOCK_MONOTONIC immediately before posix_spawnp(PROGRAM) and
 * CLOCK_MONOTONIC and CLOCK_REALTIME immediately after waitpid() returned it, then writes
 * "key=value" lines to REPORT_FD (made close-on-exec first, so PROGRAM never holds it):
 *
 *   start_realtime_ns= start_monotonic_ns= end_monotonic_ns= end_realtime_ns= wait_status=
 *
 * or "spawn_errno=N" when PROGRAM cannot be started. PROGRAM inherits everything else:
 * stdin/stdout/stderr (the harness's pipes), the process group and session, the cgroup,
 * the working directory, the environment, other inherited descriptors (bwrap's --seccomp FD).
 * Exit status: PROGRAM's, 128 + signal if a signal ended it, 127 if it could not start,
 * 2 for a usage error. Parsed by bench/backends/native/launch.py (parse_launch_report).
 * Why a C process: Python's subprocess spawn path and pipe handling added 0.3-0.7 ms to a
 * 0.5 ms launch (docs/spectrum.md, "Reproducing the figures by hand").
 * Build: gcc -O2 -static -o isobench-launch launch.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    char *end = NULL;
    long fd = argc >= 3 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 3 || end == argv[1] || *end != '\0' || fd < 0) {
        fprintf(stderr, "usage: %s REPORT_FD PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "isobench-launch: report descriptor %ld: %s\n", fd, strerror(errno));
        return 2;
    }
    pid_t pid;
    int status;
    long long start_realtime = now_ns(CLOCK_REALTIME);
    long long start = now_ns(CLOCK_MONOTONIC);
    int err = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
    if (err != 0) {
        dprintf((int)fd, "spawn_errno=%d\n", err);
        return 127;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "isobench-launch: waitpid: %s\n", strerror(errno));
            return 2;
        }
    }
    long long end_monotonic = now_ns(CLOCK_MONOTONIC);
    long long end_realtime = now_ns(CLOCK_REALTIME);
    dprintf((int)fd,
            "start_realtime_ns=%lld\nstart_monotonic_ns=%lld\nend_monotonic_ns=%lld\n"
            "end_realtime_ns=%lld\nwait_status=%d\n",
            start_realtime, start, end_monotonic, end_realtime, status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

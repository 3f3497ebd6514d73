/*
 * isobench-launch: times one launch the way `hyperfine -N` does, from a small C process.
 *
 *   isobench-launch FD WARMUPS PROGRAM [ARG...]
 *
 * FD is a stream socket to the harness (made close-on-exec first, so PROGRAM never holds it).
 * The launcher waits for one byte on it ("go": the harness is now asleep, waiting for the
 * exit, so it takes no CPU inside the interval). It then runs PROGRAM WARMUPS times untimed,
 * back to back, with stdout and stderr on /dev/null (as hyperfine's warm-up runs: the timed
 * launch then finds the host in the state of hyperfine's loop, not idle), and once more
 * timed: CLOCK_REALTIME and CLOCK_MONOTONIC read immediately before posix_spawnp(), CLOCK_MONOTONIC
 * and CLOCK_REALTIME immediately after waitpid() returned it. It writes "key=value" lines
 * back on FD:
 *
 *   start_realtime_ns= start_monotonic_ns= end_monotonic_ns= end_realtime_ns= wait_status=
 *   warmup_ns= warmup_wait_status=      (the last warm-up run, when WARMUPS > 0)
 *
 * or "spawn_errno=N" when PROGRAM cannot be started. Before each run, inherited descriptors
 * are set back to their start (see rewind_inherited). PROGRAM inherits everything else:
 * stdin/stdout/stderr (the timed run), the process group and session, the cgroup, the working
 * directory, the environment, other inherited descriptors (bwrap's --seccomp FD).
 * Exit status: the timed run's, 128 + signal if a signal ended it, 127 if it could not start,
 * 2 for a usage error. Parsed by bench/backends/native/timed.py (parse_launch_report).
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

static long number(const char *text) {
    char *end = NULL;
    long value = strtol(text, &end, 10);
    return (end == text || *end != '\0' || value < 0) ? -1 : value;
}

/* Every run starts from the same inherited inputs: a descriptor the harness passed on
 * purpose (bwrap's --seccomp FD, a regular file read to its end by each bwrap) is set back to
 * its start before each run, else the timed run after a warm-up would find it consumed.
 * Descriptors that cannot seek (pipes, sockets) and closed numbers are left alone. */
static void rewind_inherited(int report_fd) {
    for (int fd = 3; fd < 1024; fd++)
        if (fd != report_fd) (void)lseek(fd, 0, SEEK_SET);
}

/* Spawn argv and reap it; 0, or the errno of posix_spawnp (-1: waitpid failed). */
static int run(char **argv, const posix_spawn_file_actions_t *actions, int *status) {
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], actions, NULL, argv, environ);
    if (err != 0) return err;
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "isobench-launch: waitpid: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    long fd = argc >= 4 ? number(argv[1]) : -1;
    long warmups = argc >= 4 ? number(argv[2]) : -1;
    if (fd < 0 || warmups < 0) {
        fprintf(stderr, "usage: %s FD WARMUPS PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    if (fcntl((int)fd, F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "isobench-launch: descriptor %ld: %s\n", fd, strerror(errno));
        return 2;
    }
    char go;
    ssize_t got;
    while ((got = read((int)fd, &go, 1)) < 0 && errno == EINTR) {
    }
    if (got != 1) { /* the harness went away (or never meant to start it) */
        fprintf(stderr, "isobench-launch: no go on descriptor %ld\n", fd);
        return 2;
    }
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
    int status = 0, err = 0;
    long long warmup = 0;
    for (long i = 0; i < warmups && err == 0; i++) {
        rewind_inherited((int)fd);
        long long t = now_ns(CLOCK_MONOTONIC);
        err = run(argv + 3, &quiet, &status);
        warmup = now_ns(CLOCK_MONOTONIC) - t;
    }
    if (err == 0 && warmups > 0) {
        dprintf((int)fd, "warmup_ns=%lld\nwarmup_wait_status=%d\n", warmup, status);
    }
    rewind_inherited((int)fd);
    long long start_realtime = now_ns(CLOCK_REALTIME);
    long long start = now_ns(CLOCK_MONOTONIC);
    if (err == 0) err = run(argv + 3, NULL, &status);
    long long end_monotonic = now_ns(CLOCK_MONOTONIC);
    long long end_realtime = now_ns(CLOCK_REALTIME);
    if (err > 0) {
        dprintf((int)fd, "spawn_errno=%d\n", err);
        return 127;
    }
    if (err < 0) return 2;
    dprintf((int)fd,
            "start_realtime_ns=%lld\nstart_monotonic_ns=%lld\nend_monotonic_ns=%lld\n"
            "end_realtime_ns=%lld\nwait_status=%d\n",
            start_realtime, start, end_monotonic, end_realtime, status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

"""Timed launches: the C launcher (``launch.c``), its report, and the harness's quiet wait.

``isobench-launch FD WARMUPS PROGRAM ARG...`` waits for "go" on socket FD (sent when the
harness has nothing left to do but sleep until the exit), runs PROGRAM WARMUPS times untimed,
then reads CLOCK_REALTIME and CLOCK_MONOTONIC immediately before ``posix_spawnp`` and after
``waitpid``, as ``hyperfine -N`` does, and writes them back on FD as ``key=value`` lines.
It is compiled and cached by content hash like the probe's host copy
(:func:`bench.workloads.build_static`). The parsing here is pure; the launch itself is
:meth:`bench.backends.native.launch.ProcessLauncher.run_timed`.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

from bench.paths import cache_dir
from bench.procgroup import kill_tree, release
from bench.values import BackendError, RepetitionTimeout
from bench.workloads import build_static, parse_keyvalues

#: What the launcher's report must hold after a spawn that worked.
_REPORT_KEYS: Final = (
    "start_realtime_ns",
    "start_monotonic_ns",
    "end_monotonic_ns",
    "end_realtime_ns",
    "wait_status",
)


@dataclass(frozen=True)
class LaunchTimes:
    """The launcher's clocks (ns) around posix_spawnp..waitpid, and how the child ended."""

    start_realtime_ns: int
    start_monotonic_ns: int
    end_monotonic_ns: int
    end_realtime_ns: int
    #: As :attr:`subprocess.Popen.returncode`: the exit status, or -N for signal N.
    returncode: int
    #: The last untimed warm-up launch right before (None: none was asked for).
    warmup_ns: int | None = None
    warmup_returncode: int | None = None

    @property
    def total(self) -> float:
        """Seconds from just before the spawn to just after the reap (CLOCK_MONOTONIC)."""
        return (self.end_monotonic_ns - self.start_monotonic_ns) / 1e9


@dataclass(frozen=True)
class TimedRun:
    """A timed launch: the launcher's clocks, the child's output, the command it ran."""

    times: LaunchTimes
    stdout: str
    stderr: str
    #: The command the launcher spawned, as a shell line (what to give hyperfine -N).
    command: str


def parse_launch_report(
    report: str, program: str, exit_status: int | None, stderr: str
) -> LaunchTimes:
    """The launcher's ``key=value`` report; BackendError naming the cause when unusable."""
    values = parse_keyvalues(report)
    if "spawn_errno" in values:
        try:
            reason = os.strerror(int(values["spawn_errno"]))
        except ValueError:
            reason = f"error {values['spawn_errno']!r}"
        msg = f"cannot run {program!r}: {reason}"
        raise BackendError(msg)
    try:
        start_rt, start, end, end_rt, status = (int(values[k]) for k in _REPORT_KEYS)
        returncode = os.waitstatus_to_exitcode(status)
        warmup = int(values["warmup_ns"]) if "warmup_ns" in values else None
        warmup_status = values.get("warmup_wait_status")
        warmup_code = None
        if warmup_status is not None:
            warmup_code = os.waitstatus_to_exitcode(int(warmup_status))
    except (KeyError, ValueError) as exc:
        msg = (
            f"the start-up launcher (isobench-launch) gave no usable report for {program!r} "
            f"(exit status {exit_status}; report {report[-200:]!r}; "
            f"stderr {stderr.strip()[-300:]!r})"
        )
        raise BackendError(msg) from exc
    if end < start:
        msg = f"the start-up launcher reported an end before its start: {report!r}"
        raise BackendError(msg)
    return LaunchTimes(start_rt, start, end, end_rt, returncode, warmup, warmup_code)


def launch_tool() -> Path:
    """The launcher binary, compiled from ``launch.c`` into the cache on first use."""
    source = resources.files("bench.backends.native").joinpath("launch.c").read_bytes()
    return build_static(cache_dir(), "isobench-launch", source, "the start-up launcher")


def read_to_end(fd: int) -> str:
    """Everything left in pipe or socket ``fd`` (its writers have exited)."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def read_file(fd: int) -> str:
    """The whole content of file ``fd`` (a memory file the child wrote through its own fd)."""
    os.lseek(fd, 0, os.SEEK_SET)
    return read_to_end(fd)


def wait_exit(
    proc: subprocess.Popen[bytes],
    timeout: float,
    what: str,
    budget: float,
    go: Callable[[], None],
) -> bool:
    """Call ``go()``, sleep until ``proc`` exits, reap it; False when the kernel has no pidfd.

    ``poll`` on a pidfd returns at the child's exit, like a blocking ``waitpid``, and yet
    gives up after ``timeout`` s: no thread, no polling loop. Past the timeout the group is
    ended the one way (:func:`~bench.procgroup.kill_tree`) and RepetitionTimeout raised
    (naming the repetition's ``budget``, as :meth:`ProcessLauncher.communicate` does);
    Ctrl-C or the runner's watchdog (SIGALRM) end it too and propagate.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        go()  # the last thing before sleeping: the launcher's clock starts now
        exited = poller.poll(math.ceil(max(timeout, 0.001) * 1000))
    except BaseException:  # Ctrl-C or the runner's watchdog: never leave it running
        kill_tree(proc)
        raise
    finally:
        os.close(pidfd)
    if not exited:
        kill_tree(proc)
        msg = f"{what} did not finish within the {budget:g} s timeout (killed)"
        raise RepetitionTimeout(msg)
    proc.wait()  # already a zombie: returns at once
    release(proc)
    return True

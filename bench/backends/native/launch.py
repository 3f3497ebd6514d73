"""How the native backend (and the sandbox, which wraps it) starts and waits for processes.

Every process is spawned in its own process group, watched by the reaper (it dies with the
harness, even a harness killed with SIGKILL) and, when the scenario sets limits, born in the
transient cgroup. A timeout, an error or Ctrl-C kills the whole group.

A *timed* launch (:meth:`ProcessLauncher.run_timed`, the start-up workload) puts a tiny C
process between the harness and the workload: ``isobench-launch`` (``launch.c``, compiled and
cached by content hash like the probe's host copy) reads the clocks immediately around
``posix_spawnp`` and ``waitpid``, as ``hyperfine -N`` does, once the harness sleeps, after
optional untimed warm-up launches, and reports them on a socket of their own (see
:mod:`~bench.backends.native.timed`). Python's spawn path and pipe handling (0.3-0.7 ms here)
stay outside the interval; the launcher is the group's leader, so the one kill and the reaper
work as for any launch.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

from bench.backends.base import Repetition
from bench.backends.cgroup import Cgroup
from bench.backends.native.timed import (
    TimedRun,
    launch_tool,
    parse_launch_report,
    read_file,
    read_to_end,
    wait_exit,
)
from bench.procgroup import kill_tree, release, spawn, terminate_group
from bench.values import BackendError, RepetitionTimeout
from bench.workloads import ExecResult, Executor


class ProcessLauncher:
    """Spawns workload processes on the host; subclasses may wrap argv (``_wrapped``)."""

    def __init__(self) -> None:
        #: The cgroup new processes are born in (None: unlimited).
        self._cgroup: Cgroup | None = None
        self._launch_tool: Path | None = None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        merge_stderr: bool = False,
        report_fd: int | None = None,
        output: tuple[int, int] | None = None,
        warmups: int = 0,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv``; stdout and stderr to pipes, or to the ``output`` descriptors.

        With ``report_fd``, under the launcher (:meth:`run_timed`) talking on that descriptor,
        which runs ``warmups`` untimed launches right before the timed one.
        """
        stdout: int = subprocess.PIPE if output is None else output[0]
        stderr: int = subprocess.PIPE if output is None else output[1]
        if merge_stderr:
            stderr = subprocess.STDOUT
        try:
            with (
                self._wrapped(argv, cwd) as (wrapped, inherited),
                self._cgroup.attached() if self._cgroup else nullcontext(),
            ):
                command, fds = wrapped, inherited
                if report_fd is not None:  # under the launcher, which talks on report_fd
                    command = [str(self.launch_tool()), str(report_fd), str(warmups), *command]
                    fds = (*inherited, report_fd)
                # Its own process group (a timeout kills it all), watched by the reaper (it
                # dies with the harness, even a harness killed with SIGKILL).
                proc = spawn(
                    command,
                    pass_fds=fds,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    cwd=cwd,
                )
        except OSError as exc:
            msg = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            raise BackendError(msg) from exc
        return proc

    def spawn_merged(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stderr merged into stdout."""
        return self.spawn(argv, merge_stderr=True)

    def launch_tool(self) -> Path:
        """The launcher binary (:func:`launch_tool`), built once per harness process."""
        if self._launch_tool is None:
            self._launch_tool = launch_tool()
        return self._launch_tool

    def run_timed(
        self,
        argv: Sequence[str],
        timeout: float,
        what: str,
        *,
        warmups: int = 0,
        budget: float | None = None,
    ) -> TimedRun:
        """Run ``argv`` under the launcher, killed after ``timeout`` s (the repetition's
        ``budget``, if given, named in the error): its clocks, the child's output.

        ``warmups`` untimed launches of the same command run right before the timed one,
        back to back inside the launcher (their output discarded), as hyperfine's warm-up.

        While the child runs the harness only sleeps, as hyperfine does: the launcher starts
        its clock when told "go", sent once the harness has nothing left to do but wait; the
        output goes to memory files (no pipe to drain, no reader woken by each write) and the
        exit is awaited on a pidfd (no watchdog thread). "go" and the launcher's report share
        a socket of their own. A timeout, an error or Ctrl-C ends the group as usual.
        """
        harness_end, launcher_end = socket.socketpair()  # "go" one way, the report back
        out_fd = os.memfd_create("isobench-stdout", os.MFD_CLOEXEC)
        err_fd = os.memfd_create("isobench-stderr", os.MFD_CLOEXEC)
        try:
            try:
                fd = launcher_end.fileno()
                proc = self.spawn(argv, report_fd=fd, output=(out_fd, err_fd), warmups=warmups)
            finally:
                launcher_end.close()  # the launcher holds the only other end now
            budget = timeout if budget is None else budget
            go = functools.partial(_send_go, harness_end)
            if not wait_exit(proc, timeout, what, budget, go):  # no pidfd (kernel < 5.3):
                go()
                self.communicate(proc, timeout, what, budget)  # the watchdog thread
            report = read_to_end(harness_end.fileno())
            out, err = read_file(out_fd), read_file(err_fd)
        finally:
            harness_end.close()
            for fd in (out_fd, err_fd):
                os.close(fd)
        times = parse_launch_report(report, argv[0], proc.returncode, err)
        spawned = proc.args if isinstance(proc.args, list) else [proc.args]
        command = shlex.join(str(arg) for arg in spawned[3:])  # without the launcher itself
        return TimedRun(times, out, err, command)

    @contextlib.contextmanager
    def _wrapped(
        self, argv: Sequence[str], cwd: Path | None
    ) -> Iterator[tuple[list[str], tuple[int, ...]]]:
        """The command actually spawned and the fds it inherits, for one launch (the sandbox
        wraps argv and owns descriptors that live until the launch has them)."""
        yield list(argv), ()

    def workload_pid(self, pid: int) -> int:
        """The workload's own process, given the spawned one (the sandbox wraps it)."""
        return pid

    @staticmethod
    def communicate(
        proc: subprocess.Popen[bytes], timeout: float, what: str, budget: float
    ) -> tuple[str, str]:
        """Wait up to ``timeout`` s; on expiry kill and report the repetition's ``budget``.

        The timeout is enforced by a watchdog timer, not by ``communicate(timeout=...)``:
        with a timeout CPython reaps the child by polling ``waitpid(WNOHANG)`` with sleeps
        (0.5 ms, doubling), which added ~1.4 ms to every measured launch. Without one, the
        reap is a blocking ``waitpid`` that returns the moment the child exits.
        """
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            terminate_group(proc.pid, lambda: proc.poll() is not None)

        watchdog = threading.Timer(max(timeout, 0.001), expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            out, err = proc.communicate()
        except BaseException:  # Ctrl-C or the runner's watchdog: never leave it running
            watchdog.cancel()
            kill_tree(proc)
            raise
        watchdog.cancel()
        if expired.is_set():
            kill_tree(proc)  # members of the group that outlived the leader, then forget it
            msg = f"{what} did not finish within the {budget:g} s timeout (killed)"
            raise RepetitionTimeout(msg)
        release(proc)  # a late watchdog now signals nothing
        return out.decode(errors="replace"), (err or b"").decode(errors="replace")

    def executor(self, repetition: Repetition) -> Executor:
        """An Executor sharing one deadline across every command of the repetition."""
        return self.make_executor(repetition.timeout, repetition.workdir)

    def make_executor(self, budget: float, cwd: Path) -> Executor:
        """An Executor running in ``cwd`` whose calls together stop after ``budget`` s."""
        deadline = time.monotonic() + budget

        def execute(argv: Sequence[str], timeout: float) -> ExecResult:
            left = min(timeout, deadline - time.monotonic())
            if left <= 0:
                msg = f"repetition exceeded its {budget:g} s timeout"
                raise RepetitionTimeout(msg)
            start = time.perf_counter()
            proc = self.spawn(argv, cwd=cwd)
            out, err = self.communicate(proc, left, Path(argv[0]).name, budget)
            return ExecResult(proc.returncode, out, err, time.perf_counter() - start)

        return execute


def _send_go(channel: socket.socket) -> None:
    """Let the launcher start its clock (a launcher that died already gets nothing)."""
    with contextlib.suppress(OSError):
        channel.send(b"g")


def read_until(proc: subprocess.Popen[bytes], marker: bytes, deadline: float) -> str:
    """Read stdout until a full line containing ``marker``; RepetitionTimeout past deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    while marker not in buffer or not buffer.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            kill_tree(proc)
            msg = "probe idle did not report ready before the timeout (killed)"
            raise RepetitionTimeout(msg)
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the probe died
                break
            buffer += chunk
    if marker not in buffer:
        kill_tree(proc)
        msg = f"probe idle exited with status {proc.returncode}: {buffer.decode()[-300:]!r}"
        raise BackendError(msg)
    return buffer.decode(errors="replace")

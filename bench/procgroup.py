"""Child process trees that never outlive their purpose: one group kill, and a reaper.

Every process tree the harness starts (native workloads, the accelerator probe's QEMU) runs in
its own session (:func:`spawn`), so it is one process group, and :func:`kill_tree` ends it the
same way everywhere: SIGTERM to the group, a grace period, SIGKILL to the group, reap.

Workloads also die with the harness, however it dies (SIGKILL included). :func:`spawn`
registers each group with a small watcher process (the *reaper*: standard library only, in its
own session, started once per harness process) over a pipe that only the harness holds. When
the harness dies the kernel closes that pipe; the reaper reads EOF and kills every group still
registered, the same way (SIGTERM, grace, SIGKILL). It checks each group leader's start time
first, so a pid reused by an unrelated process is never signalled.

Why not ``PR_SET_PDEATHSIG`` in a pre-exec hook: it needs ``preexec_fn``, which makes
subprocess fork() the whole interpreter instead of vfork() (about 3 ms per launch here, which
would show in the startup figures), and the signal reaches only the direct child, not fio's
job processes or a shell's children. Registering costs one pipe write per launch.
A process that leaves the group on purpose (``setsid`` inside a workload) escapes both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final

#: Seconds between SIGTERM and SIGKILL.
GRACE: Final = 2.0

#: The reaper's program (run with ``python3 -I -S``; it must not import the harness).
_REAPER: Final = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
GRACE = float(sys.argv[1])

def start(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:].split()[19].decode()

def ours(pgid, started):
    # The leader is the same process, or gone (then its pid stays reserved while any member
    # of the group lives, so the group id cannot name anyone else's group).
    return start(pgid) in (started, None)

def signal_all(groups, sig):
    for pgid, started in groups.items():
        if ours(pgid, started):
            try:
                os.killpg(pgid, sig)
            except OSError:
                pass

watched = {}
for line in sys.stdin.buffer:
    op, _, rest = line.decode(errors="replace").strip().partition(" ")
    if op == "+":
        pgid, _, started = rest.partition(" ")
        watched[int(pgid)] = started
    elif op == "-":
        for pgid in rest.split():
            watched.pop(int(pgid), None)
if watched:
    signal_all(watched, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline:
        alive = False
        for pgid in watched:
            try:
                os.killpg(pgid, 0)
                alive = True
            except OSError:
                pass
        if not alive:
            break
        time.sleep(0.05)
    signal_all(watched, signal.SIGKILL)
"""


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks after boot (/proc/PID/stat field 22), or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


class Reaper:
    """The harness side of the reaper: registers and forgets process groups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0  # the harness pid the reaper belongs to (a fork needs its own)
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: list[int] = []  # forgotten groups, sent with the next registration
        self._started: dict[int, str] = {}  # watched group -> its leader's start time

    def _pipe(self) -> IO[bytes] | None:
        if self._proc is None or self._pid != os.getpid() or self._proc.poll() is not None:
            self._pid = os.getpid()
            self._pending.clear()
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _REAPER, f"{GRACE:g}"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd="/",
                    start_new_session=True,  # Ctrl-C or a kill of our group must not reach it
                )
            except OSError:
                self._proc = None
        return self._proc.stdin if self._proc is not None else None

    def watch(self, pid: int) -> None:
        """Kill group ``pid`` if this process dies before :meth:`forget` is called."""
        started = process_start(pid)
        if started is None:  # already gone and reaped: nothing to watch
            return
        with self._lock:
            self._started[pid] = started
            pipe = self._pipe()
            if pipe is None:
                return
            lines = [f"- {' '.join(map(str, self._pending))}\n"] if self._pending else []
            lines.append(f"+ {pid} {started}\n")
            with contextlib.suppress(OSError):  # a dead reaper is restarted next time
                os.write(pipe.fileno(), "".join(lines).encode())
                self._pending.clear()

    def forget(self, pid: int) -> None:
        """Group ``pid`` ended normally (sent lazily with the next registration, no syscall)."""
        with self._lock:
            if self._started.pop(pid, None) is not None:
                self._pending.append(pid)

    def owns_group(self, pgid: int) -> bool:
        """Whether group ``pgid`` is still the one we spawned (the reaper's rule, see there)."""
        with self._lock:
            started = self._started.get(pgid)
        # Not watched (never spawned here, or already reaped and forgotten): not ours to kill.
        return started is not None and process_start(pgid) in (started, None)


REAPER: Final = Reaper()


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Popen ``argv`` as the leader of a new session, registered with the reaper."""
    proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), start_new_session=True, **popen)
    REAPER.watch(proc.pid)
    return proc


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` if it is one :func:`spawn` started and still ours.

    It is ours until :func:`kill_tree` or :func:`release` forgets it, and only while its
    leader is the same process or gone (a reaped leader's pid stays reserved while any member
    of its group lives). A group that is gone is fine.
    """
    if not REAPER.owns_group(pgid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def terminate_group(pgid: int, exited: Callable[[], bool], grace: float = GRACE) -> None:
    """SIGTERM group ``pgid``; once ``exited()`` (or after ``grace`` s) SIGKILL what is left.

    Does not reap: for a caller whose other thread is blocked waiting on the leader.
    """
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while not exited() and time.monotonic() < deadline:
        time.sleep(0.01)
    signal_group(pgid, signal.SIGKILL)


def kill_tree(proc: subprocess.Popen[Any], grace: float = GRACE, *, close: bool = True) -> None:
    """End a :func:`spawn`-ed tree: SIGTERM the group, grace, SIGKILL the group, reap.

    Then close its pipes, unless ``close`` is False (a reader thread still drains them).
    """
    if proc.poll() is None:
        terminate_group(proc.pid, lambda: proc.poll() is not None, grace)
    else:  # the leader is gone; members of its group may not be
        signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    REAPER.forget(proc.pid)
    for stream in (proc.stdin, proc.stdout, proc.stderr) if close else ():
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def release(proc: subprocess.Popen[Any]) -> None:
    """A :func:`spawn`-ed tree ended on its own: stop watching it."""
    REAPER.forget(proc.pid)

"""Child process trees that never outlive their purpose: one tree kill, and a reaper.

Every process tree the harness starts (native workloads, the accelerator probe's QEMU) runs in
its own session (:func:`spawn`), so it is one process group, and :func:`kill_tree` ends it the
same way everywhere: SIGTERM to the group and to every descendant, a grace period, SIGKILL to
what is left, reap. Descendants count because some programs leave the group on purpose (fio
puts each job process in a session of its own).

Workloads also die with the harness, however it dies (SIGKILL included). :func:`spawn`
registers each group with a small watcher process, the *reaper*: this file run as a script
(standard library only) in its own session, started once per harness process, reading
registrations on a pipe only the harness holds. When the harness dies the kernel closes that
pipe; the reaper reads EOF and ends every tree still registered, the same way. Leaders' and
descendants' start times are checked before each signal, so a pid the kernel has since given
to an unrelated process is never signalled.

Why not ``PR_SET_PDEATHSIG`` in a pre-exec hook: it needs ``preexec_fn``, which makes
subprocess fork() the whole interpreter instead of vfork() (about 3 ms per launch here, which
would show in the startup figures), and it reaches only the direct child. Registering costs
one pipe write per launch. A descendant whose parent exited before the kill (a daemon that
double-forked) is out of reach of both; only a cgroup would hold it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

#: Seconds between SIGTERM and SIGKILL.
GRACE: Final = 2.0

#: pid -> start time of a set of processes (start time: see :func:`process_start`).
Members = dict[int, str]
#: The shared table of watched groups: (pgid, start-time bound) per slot.
_SLOT: Final = struct.Struct("qq")
_SLOTS: Final = 4096
_HZ: Final = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """Fields 3.. of /proc/PID/stat (state, ppid, pgrp, ...), or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = data[data.rindex(b")") + 2 :].split()
    return fields if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks after boot (/proc/PID/stat field 22), or None."""
    fields = _stat_fields(pid)
    return fields[19].decode() if fields else None


def tree_members(groups: Iterable[int]) -> Members:
    """Every live process in process groups ``groups`` or descended from one of them."""
    wanted = set(groups)
    children: dict[int, list[tuple[int, str]]] = {}
    found: Members = {}
    for entry in os.scandir("/proc"):
        fields = _stat_fields(entry.name) if entry.name.isdigit() else None
        if fields is None or fields[0] == b"Z":  # zombies are dead already
            continue
        pid, start = int(entry.name), fields[19].decode()
        children.setdefault(int(fields[1]), []).append((pid, start))
        if int(fields[2]) in wanted:
            found[pid] = start
    stack = list(found)
    while stack:
        for child, start in children.get(stack.pop(), ()):
            if child not in found:
                found[child] = start
                stack.append(child)
    return found


def _alive(pid: int, start: str) -> bool:
    """Whether ``pid`` is still that process (same start time) and not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z" and fields[19].decode() == start


def _signal(members: Members, sig: int) -> None:
    for pid, start in members.items():
        if process_start(pid) == start:  # still that process, not a reused pid
            with contextlib.suppress(OSError):
                os.kill(pid, sig)


def end_trees(
    groups: dict[int, int], grace: float, exited: Callable[[], bool] | None = None
) -> None:
    """SIGTERM groups (pgid -> start-time bound) and descendants; after ``grace`` s, SIGKILL.

    Stops waiting early once nothing of the trees is left (and ``exited()``, if given, says
    so: a caller that must reap the leader passes ``proc.poll() is not None``). A group is
    signalled only while its leader is the same process or gone: a reaped leader's pid stays
    reserved while any member of its group lives, so it names no one else's group.
    """
    ours = {g for g, bound in groups.items() if _leader_ours(g, bound)}
    members = tree_members(ours)
    _signal(members, signal.SIGTERM)
    deadline = time.monotonic() + grace

    def done() -> bool:
        return (exited is None or exited()) and not any(_alive(*m) for m in members.items())

    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    ours = {g for g in ours if _leader_ours(g, groups[g])}
    members.update(tree_members(ours))
    _signal(members, signal.SIGKILL)
    deadline = time.monotonic() + 1.0  # SIGKILL is delivered asynchronously: see it land
    while any(_alive(*m) for m in members.items()) and time.monotonic() < deadline:
        time.sleep(0.005)


def boot_ticks() -> int:
    """Now, in the unit of /proc/PID/stat start times (clock ticks since boot)."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) * _HZ // 1_000_000_000


def _leader_ours(pgid: int, bound: int) -> bool:
    """Whether group ``pgid`` is still the one spawned before ``bound`` (see :class:`Reaper`)."""
    start = process_start(pgid)
    return start is None or int(start) <= bound


def _reaper_main(grace: float, fd: int) -> None:
    """The reaper: wait for EOF on stdin (the harness died), then end the registered trees."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    table = mmap.mmap(fd, _SLOTS * _SLOT.size)
    sys.stdin.buffer.read()  # nothing is ever written: returns at EOF only
    groups = {}
    for slot in range(_SLOTS):
        pgid, bound = _SLOT.unpack_from(table, slot * _SLOT.size)
        if pgid:
            groups[pgid] = bound
    if groups:
        end_trees(groups, grace)


class Reaper:
    """The harness side of the reaper: a table of live groups, shared with the reaper process.

    Registration must cost next to nothing (it happens inside timed launches), so the table
    is shared memory (a memfd the reaper inherits and maps) written with plain stores: no
    system call, no wake-up of the reaper. Each slot holds a group id and a bound on its
    leader's start time (now, in clock ticks, taken right after the spawn): a pid cannot be
    reused before we reap our child, so a process with that pid started at or before the bound
    is ours, and one started later is not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0  # the harness pid the reaper belongs to (a fork needs its own)
        self._proc: subprocess.Popen[bytes] | None = None
        self._table: mmap.mmap | None = None
        self._slots: dict[int, int] = {}  # watched group -> slot
        self._bounds: dict[int, int] = {}  # watched group -> start-time bound
        self._free: list[int] = []

    def start(self) -> bool:
        """Start the reaper now (outside any timed region); False if it cannot run."""
        with self._lock:
            return self._ensure(check=True) is not None

    def _ensure(self, *, check: bool = False) -> mmap.mmap | None:
        # Whether the reaper still runs costs a waitpid(): checked by start() only, which
        # backends call before measuring, never on the launch path.
        alive = self._proc is not None and not (check and self._proc.poll() is not None)
        if alive and self._pid == os.getpid():
            return self._table
        self._pid = os.getpid()
        self._slots.clear()
        self._bounds.clear()
        self._free = list(range(_SLOTS - 1, -1, -1))
        self._proc = self._table = None
        try:
            fd = os.memfd_create("isobench-reaper", os.MFD_CLOEXEC)
            try:
                os.ftruncate(fd, _SLOTS * _SLOT.size)
                table = mmap.mmap(fd, _SLOTS * _SLOT.size)
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", __file__, f"{GRACE:g}", str(fd)],
                    stdin=subprocess.PIPE,  # held, never written: EOF when we die
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(fd,),
                    cwd="/",
                    start_new_session=True,  # Ctrl-C or a kill of our group must not reach it
                )
            finally:
                os.close(fd)
        except OSError:
            return None
        self._table = table
        return table

    def watch(self, pid: int) -> None:
        """End group ``pid`` if this process dies before :meth:`forget` is called."""
        bound = boot_ticks()
        with self._lock:
            table = self._ensure()
            if table is None or not self._free or pid in self._slots:
                return
            slot = self._free.pop()
            _SLOT.pack_into(table, slot * _SLOT.size, pid, bound)
            self._slots[pid], self._bounds[pid] = slot, bound

    def forget(self, pid: int) -> None:
        """Group ``pid`` ended, or was killed and reaped: not ours to signal any more."""
        with self._lock:
            slot = self._slots.pop(pid, None)
            self._bounds.pop(pid, None)
            if slot is not None and self._table is not None:
                _SLOT.pack_into(self._table, slot * _SLOT.size, 0, 0)
                self._free.append(slot)

    def bound(self, pgid: int) -> int | None:
        """The start-time bound of watched group ``pgid`` (None: not ours, or forgotten)."""
        with self._lock:
            return self._bounds.get(pgid)


REAPER: Final = Reaper()


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Popen ``argv`` as the leader of a new session, registered with the reaper."""
    proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), start_new_session=True, **popen)
    REAPER.watch(proc.pid)
    return proc


def terminate_group(pgid: int, exited: Callable[[], bool], grace: float = GRACE) -> None:
    """End the tree of :func:`spawn`-ed group ``pgid`` (see :func:`end_trees`); do not reap.

    For a caller whose other thread is blocked waiting on the leader. A group already
    forgotten (reaped by :func:`kill_tree`, or :func:`release`-d) is left alone.
    """
    bound = REAPER.bound(pgid)
    if bound is not None:
        end_trees({pgid: bound}, grace, exited)


def kill_tree(proc: subprocess.Popen[Any], grace: float = GRACE, *, close: bool = True) -> None:
    """End a :func:`spawn`-ed tree (SIGTERM, grace, SIGKILL), reap it, forget it.

    Then close its pipes, unless ``close`` is False (a reader thread still drains them).
    """
    terminate_group(proc.pid, lambda: proc.poll() is not None, grace)
    proc.wait()
    REAPER.forget(proc.pid)
    for stream in (proc.stdin, proc.stdout, proc.stderr) if close else ():
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def release(proc: subprocess.Popen[Any]) -> None:
    """A :func:`spawn`-ed tree ended on its own: stop watching it."""
    REAPER.forget(proc.pid)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so both stop the run the same clean way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


STOP_SIGNALS: Final = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def stop_signals_held() -> Iterator[Callable[[], None]]:
    """Hold Ctrl-C and SIGTERM back (noted, not lost) until ``release()`` or the block ends.

    For a step that must not be cut in two (a run directory and its end marker's writer):
    a stop signal that arrives meanwhile is raised as KeyboardInterrupt by ``release()``,
    where a ``try`` can record it. (A signal mask would not do: Python runs handlers in the
    main thread whichever thread the kernel delivers to, and any thread may take it.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}

    def release() -> None:
        while previous:
            sig, handler = previous.popitem()
            signal.signal(sig, handler)
        if noted:
            noted.clear()
            raise KeyboardInterrupt

    try:
        yield release
    finally:
        release()


if __name__ == "__main__":  # the reaper process (python3 -I -S procgroup.py GRACE FD)
    _reaper_main(float(sys.argv[1]), int(sys.argv[2]))

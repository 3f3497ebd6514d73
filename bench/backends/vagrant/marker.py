"""Host side of the VM readiness channel: a unix socket that QEMU connects to, read by a thread.

With ``ISOBENCH_MARKER_SOCKET`` set, the Vagrantfile gives the domain a virtio-serial channel
(port ``org.isobench.marker``) whose host end is a unix socket in client mode (libvirt
``<channel type='unix'><source mode='connect' path=...>``). :class:`MarkerChannel` listens on
that socket before ``vagrant up`` is issued; its reader thread blocks in ``select`` (no polling)
and stamps, with ``time.monotonic()`` (CLOCK_MONOTONIC), three kinds of instants:

* QEMU connecting: the VMM process started and opened its chardevs (``startup.domain``);
* each line from the guest as its newline arrives (the box's marker units write
  ``isobench-marker ready`` / the probe's output / ``isobench-marker exit rc=N`` /
  ``isobench-marker ssh rc=N``, see :mod:`bench.envbuild.box`);
* end of file: QEMU exited (the VM's exit, the upper bound of every phase).

:func:`startup_phases` turns that log into phases after the launch instant and refuses any
figure outside [launch, exit]: a failed row with its reason, not a number.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.values import BackendError

MARKER_PREFIX: Final = "isobench-marker "
#: sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH: Final = 107
BOX_HINT: Final = "is the box current? run: isobench env build"


@dataclass(frozen=True, slots=True)
class Arrival:
    """One line from the guest and the host instant (monotonic s) its newline arrived."""

    at: float
    line: str


@dataclass(slots=True)
class ChannelLog:
    """Everything the channel saw: QEMU's connect, the guest's lines, QEMU's exit."""

    connected: float | None = None
    closed: float | None = None
    arrivals: list[Arrival] = field(default_factory=list)


def split_lines(pending: bytes, chunk: bytes, at: float) -> tuple[list[Arrival], bytes]:
    """Complete lines of ``pending + chunk`` stamped ``at``, and the incomplete rest."""
    *lines, rest = (pending + chunk).split(b"\n")
    arrivals = [Arrival(at, ln.decode(errors="replace").rstrip("\r")) for ln in lines]
    return arrivals, rest


def parse_marker(line: str) -> tuple[str, dict[str, str]] | None:
    """``isobench-marker ssh rc=0`` -> ``("ssh", {"rc": "0"})``; None for other lines."""
    if not line.startswith(MARKER_PREFIX):
        return None
    event, *pairs = line[len(MARKER_PREFIX) :].split()
    fields = dict(pair.partition("=")[::2] for pair in pairs)
    return event, fields


def first_marker(log: ChannelLog, event: str) -> tuple[float, dict[str, str]] | None:
    """Arrival instant and fields of the first ``event`` marker, or None."""
    for arrival in log.arrivals:
        parsed = parse_marker(arrival.line)
        if parsed is not None and parsed[0] == event:
            return arrival.at, parsed[1]
    return None


def guest_output(log: ChannelLog) -> str:
    """The non-marker lines (the probe's ``key=value`` output)."""
    return "\n".join(a.line for a in log.arrivals if parse_marker(a.line) is None)


def _required(log: ChannelLog, event: str) -> tuple[float, dict[str, str]]:
    found = first_marker(log, event)
    if found is None:
        msg = f"the guest's `isobench-marker {event}` line never arrived ({BOX_HINT})"
        raise BackendError(msg)
    rc = found[1].get("rc", "0")
    if rc != "0":
        msg = f"the guest reported `isobench-marker {event}` with rc={rc}"
        raise BackendError(msg)
    return found


def startup_phases(launch: float, log: ChannelLog) -> dict[str, float]:
    """Phases (s after ``launch``) from the channel; each checked to lie in [launch, exit]."""
    if log.connected is None:
        msg = "QEMU never connected to the readiness channel (no virtio-serial channel?)"
        raise BackendError(msg)
    if log.closed is None:
        msg = "the readiness channel never closed: QEMU's exit was not observed"
        raise BackendError(msg)
    instants = {
        "startup.domain": log.connected,
        "startup.ready": _required(log, "ready")[0],
        "startup.total": _required(log, "exit")[0],
        "startup.ssh": _required(log, "ssh")[0],
    }
    for metric, at in instants.items():
        if not launch <= at <= log.closed:
            msg = (
                f"{metric} at {at - launch:+.3f} s lies outside [launch, exit] = "
                f"[0, {log.closed - launch:.3f}] s"
            )
            raise BackendError(msg)
    return {metric: at - launch for metric, at in instants.items()}


class MarkerChannel:
    """A listening unix socket for one VM's readiness channel, read by a daemon thread."""

    def __init__(self, path: Path) -> None:
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            msg = f"readiness socket path too long for AF_UNIX ({path}): use a shorter cache dir"
            raise BackendError(msg)
        self.path = path
        self.log = ChannelLog()
        self._cond = threading.Condition()
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._run, name=f"marker-{path}", daemon=True)

    def start(self) -> None:
        """Start reading (before the launch request: QEMU connects at its start)."""
        self._thread.start()

    def _run(self) -> None:
        ready, _, _ = select.select([self._listener.fileno(), self._wake_r], [], [])
        if self._wake_r in ready:
            return
        conn, _ = self._listener.accept()
        with self._cond:
            self.log.connected = time.monotonic()
            self._cond.notify_all()
        pending = b""
        with conn:
            while True:
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                chunk = conn.recv(4096)
                now = time.monotonic()
                arrivals, pending = split_lines(pending, chunk, now)
                with self._cond:
                    self.log.arrivals.extend(arrivals)
                    if not chunk:
                        self.log.closed = now
                    self._cond.notify_all()
                if not chunk:
                    return

    def wait_for(self, events: set[str], deadline: float) -> bool:
        """Block until every marker in ``events`` arrived, the channel closed or ``deadline``."""

        def settled() -> bool:
            seen = {p[0] for a in self.log.arrivals if (p := parse_marker(a.line)) is not None}
            return events <= seen or self.log.closed is not None

        with self._cond:
            self._cond.wait_for(settled, max(0.0, deadline - time.monotonic()))
            return all(first_marker(self.log, event) is not None for event in events)

    def wait_closed(self, deadline: float) -> bool:
        """Block until QEMU closed its end (the VMM exited) or ``deadline``."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.log.closed is not None, max(0.0, deadline - time.monotonic())
            )

    def close(self) -> None:
        """Stop the reader and remove the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(10)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._listener.close()
        self.path.unlink(missing_ok=True)

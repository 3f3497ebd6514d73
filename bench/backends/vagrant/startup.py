"""The VM startup workload: a fresh VM per repetition, timed in phases.

Reference instant t0 = the moment ``vagrant up`` is spawned (the launch request). While ``up``
runs, a watcher thread polls the host: the domain's QEMU process (``startup.domain``), the
guest's DHCP lease, sshd's banner on port 22 (``startup.ssh``), and then immediately runs the
probe's ``ready`` mode over plain ssh, the VM equivalent of a container's create -> ready:
``startup.ready`` = t0 -> the probe's first instruction (guest clock, corrected by the
guest-host offset measured afterwards with Cristian's algorithm) and ``startup.total`` = t0 ->
probe exit observed on the host. ``startup.up`` is ``vagrant up`` end to end (it returns after
Vagrant's own SSH check, usually later than the probe). Guest kernel and userspace boot times
come from ``systemd-analyze`` inside the guest. ``startup.halt`` / ``startup.destroy`` time the
CLI calls, each including Vagrant's own start-up, measured separately as ``startup.vagrant_cli``.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bench.backends.vagrant.vm import (
    SSH_OPTIONS,
    VIRSH,
    VagrantVM,
    kill_group,
    qemu_accel_of,
    run_quiet,
)
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import GUEST_PROBE, parse_keyvalues

POLL: Final = 0.05
#: Metric names :func:`measure_startup` emits.
EMITS: Final = frozenset(
    {
        *("startup.vagrant_cli", "startup.domain", "startup.ssh", "startup.ready"),
        *("startup.total", "startup.up", "startup.kernel", "startup.userspace"),
        *("startup.halt", "startup.destroy"),
    }
)
CLOCK_ROUNDS: Final = 8
_SPAN_RE: Final = re.compile(r"(\d+(?:\.\d+)?)(min|ms|us|s|h)\b")
_UNIT_SECONDS: Final = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_timespan(text: str) -> float:
    """Seconds in a systemd time span such as ``1min 2.345s`` or ``850ms``."""
    spans = _SPAN_RE.findall(text)
    if not spans:
        msg = f"not a systemd time span: {text!r}"
        raise ValueError(msg)
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in spans)


def parse_systemd_analyze(text: str) -> tuple[float, float]:
    """(kernel, userspace) seconds from ``systemd-analyze`` ("Startup finished in ...")."""
    line = next((ln for ln in text.splitlines() if "Startup finished in" in ln), "")
    body = line.partition("Startup finished in")[2].partition(" = ")[0]
    parts: dict[str, float] = {}
    for piece in body.split(" + "):
        match = re.fullmatch(r"\s*(.+?)\s+\((\w+)\)\s*", piece)
        if match:
            parts[match.group(2)] = parse_timespan(match.group(1))
    if "kernel" not in parts or "userspace" not in parts:
        msg = f"no kernel/userspace times in systemd-analyze output: {text[-200:]!r}"
        raise ValueError(msg)
    return parts["kernel"], parts["userspace"]


def parse_domifaddr(text: str) -> str | None:
    """First IPv4 address in ``virsh domifaddr`` output."""
    match = re.search(r"\bipv4\s+(\d+\.\d+\.\d+\.\d+)/\d+", text)
    return match.group(1) if match else None


def ssh_banner(address: str, connect_timeout: float = 1.0, banner_timeout: float = 30.0) -> bool:
    """True when an SSH server answers with its banner on ``address``:22.

    Once the TCP connection is accepted the banner is awaited patiently: under TCG sshd's
    per-connection re-exec takes seconds, and abandoning connections early would only pile
    more half-open sessions onto the booting guest.
    """
    try:
        with socket.create_connection((address, 22), timeout=connect_timeout) as conn:
            conn.settimeout(banner_timeout)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@dataclass(slots=True)
class Timeline:
    """Host-side instants of one boot, seconds after t0 (monotonic clock)."""

    domain: float | None = None
    address: str | None = None
    ssh: float | None = None
    probe_exit: float | None = None
    probe_stdout: str = ""
    qemu_pid: int | None = None
    error: str = ""


class BootWatcher(threading.Thread):
    """Polls the host while ``vagrant up`` runs; runs the probe as soon as SSH answers."""

    def __init__(self, vm: VagrantVM, t0: float, deadline: float) -> None:
        super().__init__(name=f"boot-watcher-{vm.name}", daemon=True)
        self.vm, self.t0, self.deadline = vm, t0, deadline
        self.timeline = Timeline()
        self.stop = threading.Event()

    def _since(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> None:
        """Poll until the probe has run, the deadline passes or :attr:`stop` is set."""
        tl, next_ip_poll = self.timeline, 0.0
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                if tl.domain is None:
                    tl.qemu_pid = self.vm.qemu_pid()
                    if tl.qemu_pid is not None:
                        tl.domain = self._since()
                elif tl.address is None and time.monotonic() >= next_ip_poll:
                    next_ip_poll = time.monotonic() + 0.2
                    out = run_quiet([*VIRSH, "domifaddr", self.vm.domain, "--source", "lease"], 10)
                    tl.address = parse_domifaddr(out.stdout)
                elif tl.address is not None and tl.ssh is None:
                    if ssh_banner(
                        tl.address, banner_timeout=max(1.0, self.deadline - time.monotonic())
                    ):
                        tl.ssh = self._since()
                        continue
                elif tl.ssh is not None and self._run_probe(tl.address or ""):
                    return
                self.stop.wait(POLL)
        except Exception as exc:  # reported to the caller instead of dying silently in a thread
            tl.error = f"{type(exc).__name__}: {exc}"

    def _run_probe(self, address: str) -> bool:
        argv = ["ssh", "-i", str(self.vm.key), *SSH_OPTIONS, "-o", "ConnectTimeout=5"]
        argv += [f"vagrant@{address}", "--", GUEST_PROBE, "ready"]
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        if proc.returncode == 0 and "ready_ns=" in proc.stdout:
            self.timeline.probe_exit = self._since()
            self.timeline.probe_stdout = proc.stdout
            return True
        return False


def _readline(fd: int, deadline: float) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            msg = "guest clock exchange timed out"
            raise RepetitionTimeout(msg)
        chunk = os.read(fd, 256)
        if not chunk:
            msg = "guest clock exchange: ssh closed the channel"
            raise BackendError(msg)
        buf += chunk
    return buf.decode().strip()


def clock_offset(
    vm: VagrantVM, rounds: int = CLOCK_ROUNDS, timeout: float = 60.0
) -> tuple[float, float]:
    """Guest realtime minus host realtime, and its uncertainty (half the best round trip).

    Cristian's algorithm over ONE ssh channel: host t1, guest ``$EPOCHREALTIME`` (a bash
    builtin, no fork), host t2; offset = guest - (t1 + t2) / 2 from the fastest round.
    """
    loop = "bash -c 'while read -r _; do echo $EPOCHREALTIME; done'"
    proc = subprocess.Popen(vm.ssh_argv(loop), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    best: tuple[float, float] | None = None
    try:
        for i in range(rounds + 1):
            t1 = time.time()
            proc.stdin.write(b"\n")
            proc.stdin.flush()
            guest = float(_readline(proc.stdout.fileno(), deadline).replace(",", "."))
            t2 = time.time()
            if i == 0:
                continue  # the first round also waits for bash to start
            rtt = t2 - t1
            if best is None or rtt < best[1]:
                best = (guest - (t1 + t2) / 2, rtt)
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    assert best is not None
    return best[0], best[1] / 2


def guest_boot_times(vm: VagrantVM, deadline: float) -> tuple[float, float]:
    """(kernel, userspace) boot seconds from ``systemd-analyze``, waiting for boot to finish."""
    last = ""
    while time.monotonic() < deadline:
        result = vm.execute(["systemd-analyze"], 60)
        if result.returncode == 0:
            return parse_systemd_analyze(result.stdout)
        last = (result.stderr or result.stdout).strip()
        time.sleep(2)  # "Bootup is not yet finished": units still starting
    msg = f"guest boot did not finish before the timeout: {last[-200:]}"
    raise RepetitionTimeout(msg)


def measure_startup(vm: VagrantVM, timeout: float, log: Callable[[str], None]) -> Outcome:
    """Boot ``vm`` fresh, time every phase, halt and destroy it (always destroyed)."""
    deadline = time.monotonic() + timeout
    destroyed = False
    proc: subprocess.Popen[bytes] | None = None
    try:
        cli = vm.vagrant("status", timeout=120)
        t0_wall, t0 = time.time(), time.monotonic()
        proc = vm.popen("up", "--provider=libvirt")
        watcher = BootWatcher(vm, t0, deadline)
        watcher.start()
        try:
            vm.wait(proc, "up", max(1.0, deadline - time.monotonic()))
        except BackendError:
            watcher.stop.set()
            raise
        t_up = time.monotonic() - t0
        watcher.join(max(1.0, deadline - time.monotonic()))
        watcher.stop.set()
        tl = watcher.timeline
        if tl.probe_exit is None or tl.domain is None or tl.ssh is None:
            msg = f"the probe did not run over SSH before the timeout ({tl.error or tl})"
            raise RepetitionTimeout(msg)
        offset, uncertainty = clock_offset(vm)
        kernel_s, userspace_s = guest_boot_times(vm, deadline)
        ready_host = int(parse_keyvalues(tl.probe_stdout)["ready_ns"]) / 1e9 - offset
        qemu_accel = qemu_accel_of(tl.qemu_pid)
        vm.close_ssh()
        t_halt = vm.vagrant("halt", timeout=max(30.0, deadline - time.monotonic()))
        destroyed = True
        t_destroy = vm.destroy(timeout=max(30.0, deadline - time.monotonic()))
    finally:
        if proc is not None and proc.poll() is None:  # interrupted mid-`up` (Ctrl-C...)
            kill_group(proc)
        if not destroyed:
            try:
                vm.destroy()
            except BackendError as exc:
                log(f"destroying {vm.name} failed: {exc}")
    measurements = [
        Measurement("startup.vagrant_cli", cli, "s"),
        Measurement("startup.domain", tl.domain),
        Measurement("startup.ssh", tl.ssh),
        Measurement("startup.ready", ready_host - t0_wall),
        Measurement("startup.total", tl.probe_exit),
        Measurement("startup.up", t_up),
        Measurement("startup.kernel", kernel_s),
        Measurement("startup.userspace", userspace_s),
        Measurement("startup.halt", t_halt),
        Measurement("startup.destroy", t_destroy),
    ]
    facts = {
        "guest_kernel": parse_keyvalues(tl.probe_stdout).get("kernel", ""),
        "qemu_accel": qemu_accel,
        "clock_offset_s": f"{offset:.6f}",
        "clock_offset_uncertainty_s": f"{uncertainty:.6f}",
        "vm_name": vm.name,
    }
    return Outcome(measurements, facts)

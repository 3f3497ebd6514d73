"""The VM startup workload: a fresh VM per repetition, timed in phases from the guest's markers.

Launch instant t0 = the moment python-vagrant is asked for ``vagrant up`` (the launch request).
Before it, a :class:`~.marker.MarkerChannel` listens on the socket the domain's virtio-serial
readiness channel connects to; every phase below is a host ``time.monotonic()`` instant stamped
by its reader thread as the event arrives, minus t0. Nothing is polled and no guest clock is used:

* ``startup.domain``: QEMU connected the channel (the VMM process started);
* ``startup.ready``: ``isobench-marker ready`` arrived, written by the guest's
  ``isobench-ready.service`` (ordered after basic.target) just before it runs the probe;
* ``startup.total``: ``isobench-marker exit rc=0`` arrived: the probe ran and exited;
* ``startup.ssh``: ``isobench-marker ssh rc=0`` arrived: sshd is up and networkd configured a
  link, i.e. the guest is reachable over SSH (its own phase, not part of ``ready``);
* the VM's exit: the channel's end of file when QEMU exits during ``vagrant halt``.

Every phase must lie in [t0, exit], else the repetition fails with that reason. ``startup.up``
is ``vagrant up`` end to end (it returns after Vagrant's own SSH check). Guest kernel and
userspace boot times come from ``systemd-analyze`` inside the guest. ``startup.halt`` /
``startup.destroy`` time the python-vagrant calls, each including Vagrant's Ruby start-up,
measured on its own as ``startup.vagrant_cli`` (a ``vagrant status`` before t0).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

from bench.backends.vagrant.marker import BOX_HINT, MarkerChannel, guest_output, startup_phases
from bench.backends.vagrant.vm import VagrantVM, qemu_accel_of
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import parse_keyvalues

#: Metric names :func:`measure_startup` emits.
EMITS: Final = frozenset(
    {
        *("startup.vagrant_cli", "startup.domain", "startup.ssh", "startup.ready"),
        *("startup.total", "startup.up", "startup.kernel", "startup.userspace"),
        *("startup.halt", "startup.destroy"),
    }
)
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
    if vm.marker_socket is None:
        msg = "measure_startup needs a VM created with marker=True"
        raise ValueError(msg)
    deadline = time.monotonic() + timeout
    destroyed = False
    channel = MarkerChannel(vm.marker_socket)
    try:
        cli = time.monotonic()
        vm.cli.status(timeout=120)
        cli = time.monotonic() - cli
        channel.start()
        t0 = time.monotonic()
        t_up = vm.up(max(1.0, deadline - t0))
        if not channel.wait_for({"exit", "ssh"}, deadline):
            msg = f"the guest's markers did not all arrive before the timeout ({BOX_HINT})"
            raise RepetitionTimeout(msg)
        qemu_accel = qemu_accel_of(vm.qemu_pid())
        kernel_s, userspace_s = guest_boot_times(vm, deadline)
        vm.close_ssh()
        t_halt = vm.halt(max(30.0, deadline - time.monotonic()))
        channel.wait_closed(time.monotonic() + 30)
        destroyed = True
        t_destroy = vm.destroy(timeout=max(30.0, deadline - time.monotonic()))
    finally:
        channel.close()
        if not destroyed:
            try:
                vm.destroy()
            except BackendError as exc:
                log(f"destroying {vm.name} failed: {exc}")
    phases = startup_phases(t0, channel.log)  # raises when a phase lies outside [t0, exit]
    measurements = [
        Measurement("startup.vagrant_cli", cli, "s"),
        *(Measurement(metric, value) for metric, value in phases.items()),
        Measurement("startup.up", t_up),
        Measurement("startup.kernel", kernel_s),
        Measurement("startup.userspace", userspace_s),
        Measurement("startup.halt", t_halt),
        Measurement("startup.destroy", t_destroy),
    ]
    facts = {
        "guest_kernel": parse_keyvalues(guest_output(channel.log)).get("kernel", ""),
        "qemu_accel": qemu_accel,
        "ready_source": "virtio-serial marker (host CLOCK_MONOTONIC at arrival)",
        "vm_exit_s": f"{(channel.log.closed or t0) - t0:.3f}",
        "vm_name": vm.name,
    }
    return Outcome(measurements, facts)

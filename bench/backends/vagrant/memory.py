"""The VM memory workload: what the whole VM costs on the host while the guest's probe idles.

One definition for every backend (:mod:`bench.workloads.hostmem`): ``memory.environment`` is
the PSS summed over the environment's host processes, read from ``/proc/PID/smaps_rollup``; for
a VM those are the QEMU process of its domain and its descendants (libvirt's daemons are shared
by every VM and are not counted). Each
repetition boots a FRESH VM (the caller's job), so the figure is not inflated by guest RAM a
previous repetition touched.

Also emitted: ``memory.vm_configured`` (the RAM given to the guest), ``memory.guest_touched``
(guest RAM actually backed on the host: the Rss of QEMU's guest-RAM mapping in
``/proc/PID/smaps``, the anonymous read-write mapping exactly as large as the configured RAM),
the guest's own view (``memory.guest_total`` / ``memory.guest_available`` from its
``/proc/meminfo``) and ``memory.workload_peak`` (the probe's peak RSS inside the guest).
"""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.backends.vagrant.vm import VagrantVM
from bench.scenario.model import MemoryWorkload
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import GUEST_PROBE, parse_keyvalues
from bench.workloads.hostmem import EnvironmentMemory, environment_memory, process_tree
from bench.workloads.memfiles import SmapsEntry as Mapping
from bench.workloads.memfiles import parse_smaps

MIB: Final = 1024 * 1024
#: Metric names :func:`measure_memory` emits (startup ones: bench.backends.vagrant.startup).
EMITS: Final = frozenset(
    {
        *("memory.environment", "memory.vm_configured", "memory.guest_touched"),
        *("memory.guest_total", "memory.guest_available", "memory.workload_peak"),
    }
)


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` lines as bytes (``MemTotal: 1000 kB`` -> 1024000)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+):\s+(\d+)(?:\s+kB)?\s*", line)
        if match:
            value = int(match.group(2))
            out[match.group(1)] = value * 1024 if line.rstrip().endswith("kB") else value
    return out


def guest_ram_mapping(mappings: list[Mapping], configured: int) -> Mapping | None:
    """QEMU's guest-RAM mapping: anonymous, read-write, exactly ``configured`` bytes."""
    found = [
        m for m in mappings if m.size == configured and not m.name and m.perms.startswith("rw")
    ]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True, slots=True)
class HostSample:
    """QEMU's memory on the host at one instant."""

    environment: EnvironmentMemory
    guest_ram: Mapping | None


def sample_qemu(pid: int, configured: int) -> HostSample:
    """QEMU's summed smaps_rollup (the environment) and, from its smaps, the guest-RAM mapping."""
    environment = environment_memory(process_tree(pid))
    try:
        mappings = parse_smaps(Path(f"/proc/{pid}/smaps").read_text())
    except OSError as exc:
        msg = f"cannot read QEMU's memory maps (pid {pid}): {exc}"
        raise BackendError(msg) from exc
    if pid not in environment.pids:
        msg = f"QEMU (pid {pid}) exited while its memory was measured"
        raise BackendError(msg)
    return HostSample(environment, guest_ram_mapping(mappings, configured))


def _run_idle_probe(
    vm: VagrantVM, pid: int, workload: MemoryWorkload, prefix: list[str], timeout: float
) -> tuple[str, HostSample]:
    """Run ``probe idle`` in the guest; sample QEMU when the probe says it is idling."""
    probe = [*prefix, GUEST_PROBE, "idle", str(int(workload.alloc)), f"{workload.idle:g}"]
    # Print the guest's /proc/meminfo right after the probe's "ready" line, i.e. while it idles.
    pipeline = f'{" ".join(probe)} | {{ IFS= read -r l; echo "$l"; cat /proc/meminfo; cat; }}'
    argv = vm.ssh_argv(f"timeout -k 5 {timeout:g} sh -c {shlex.quote(pipeline)}")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout + 20
    buf, sampled = b"", None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"memory probe in the VM did not finish within {timeout:g} s"
                raise RepetitionTimeout(msg)
            if not select.select([proc.stdout], [], [], remaining)[0]:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            if sampled is None and b"ready_ns=" in buf:
                sampled = sample_qemu(pid, vm.spec.memory_mb * MIB)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
    text = buf.decode(errors="replace")
    if proc.returncode != 0 or sampled is None:
        msg = f"memory probe in the VM failed (exit {proc.returncode}): {text[-300:]!r}"
        raise BackendError(msg)
    return text, sampled


def measure_memory(
    vm: VagrantVM, workload: MemoryWorkload, prefix: list[str], timeout: float
) -> Outcome:
    """Run ``probe idle`` in the guest; while it idles, measure the QEMU process on the host."""
    pid = vm.qemu_pid()
    if pid is None:
        msg = f"no QEMU process found for domain {vm.domain}"
        raise BackendError(msg)
    text, sample = _run_idle_probe(vm, pid, workload, prefix, timeout)
    kv, meminfo = parse_keyvalues(text), parse_meminfo(text)
    configured = vm.spec.memory_mb * MIB
    if sample.guest_ram is None:
        msg = f"no {configured} B anonymous mapping (guest RAM) in /proc/{pid}/smaps"
        raise BackendError(msg)
    try:
        measurements = [
            Measurement("memory.environment", float(sample.environment.pss), "B"),
            Measurement("memory.vm_configured", float(configured), "B"),
            Measurement("memory.guest_touched", float(sample.guest_ram.rss), "B"),
            Measurement("memory.guest_total", float(meminfo["MemTotal"])),
            Measurement("memory.guest_available", float(meminfo["MemAvailable"])),
            Measurement("memory.workload_peak", float(kv["peak_rss"])),
        ]
    except (KeyError, ValueError) as exc:
        msg = f"unparseable memory probe output: {text[-300:]!r}"
        raise BackendError(msg) from exc
    facts = {
        **sample.environment.facts(),
        "qemu_pid_sampled": str(pid),
        "guest_ram_mapping": f"{sample.guest_ram.start:x}-{sample.guest_ram.end:x}",
    }
    return Outcome(measurements, facts)

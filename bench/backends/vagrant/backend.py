"""Vagrant VM backend: the same workloads inside a real VM (vagrant-libvirt, KVM or TCG).

* ``startup``: a fresh VM per repetition, timed in phases from the guest's readiness markers
  (see :mod:`.startup` and :mod:`.marker`).
* ``memory``: a fresh VM per repetition too (see :mod:`.memory`): a reused VM's QEMU keeps every
  page earlier repetitions touched, so its footprint would grow with the repetition number.
* ``syscall`` / ``disk`` / ``command``: one VM per (scenario, variant), brought up
  in :meth:`VagrantBackend.prepare` and reused by the repetitions; commands run over plain
  ``ssh`` with the options ``vagrant ssh-config`` printed (never ``vagrant ssh``: ~3 s of Ruby
  start-up per call), multiplexed over one master connection.
* Every variant is labelled with the accelerator actually used (``accel=tcg,cpus=2,memory=1024``)
  and each VM's QEMU command line is read back to confirm it.

The runner treats this backend as a block (``interleave = False``): an idle emulated VM would
otherwise steal CPU from native/docker measurements taken meanwhile.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Final

from bench.backends.base import Repetition
from bench.backends.vagrant import accel as accel_mod
from bench.backends.vagrant.cli import VagrantCli
from bench.backends.vagrant.memory import measure_memory
from bench.backends.vagrant.startup import measure_startup
from bench.backends.vagrant.vm import (
    VIRSH,
    VagrantVM,
    VmSpec,
    destroy_orphans,
    qemu_accel_of,
    run_quiet,
    vms_root,
)
from bench.envbuild import box as box_mod
from bench.scenario.model import DiskWorkload, Limits, MemoryWorkload, Scenario
from bench.values import (
    Availability,
    BackendError,
    BackendUnavailable,
    Outcome,
    Variant,
)
from bench.workloads import (
    GUEST_PROBE,
    Executor,
    disk_placement,
    disk_variant,
    run_command,
    run_disk,
    run_syscall,
)

log = logging.getLogger(__name__)

MIB: Final = 1024 * 1024
#: fio's directory in the guest: on the virtio root disk (ext4), not tmpfs.
GUEST_DISK_DIR: Final = "/var/tmp/isobench"
#: Floor for `vagrant up` in prepare(): the first boot also uploads the box into the pool.
UP_TIMEOUT_FLOOR: Final = 600.0
#: Workload kinds measured on a fresh VM per repetition (no VM kept by prepare()).
FRESH_VM_KINDS: Final = frozenset({"startup", "memory"})
#: Workload kinds the VM side does not run yet: a ``skipped`` row with this reason.
UNSUPPORTED_KINDS: Final = {
    "network": (
        "network workloads are not implemented for VMs yet (planned: the probe's server in the "
        "VM behind a port forwarded on 127.0.0.1)"
    ),
    "density": (
        "density workloads are not implemented for VMs yet (planned: N VMs, N capped by host "
        "memory with a message)"
    ),
}
PROVISION_HINT: Final = "isobench provision  (or: sudo scripts/provision-libvirt.sh)"


def variant_label(
    accelerator: str, cpus: int, memory_bytes: int, extra: dict[str, str] | None = None
) -> Variant:
    """The variant of one VM size under ``accelerator`` (``extra``: e.g. ``direct=off``)."""
    size = {"cpus": str(cpus), "memory": str(memory_bytes // MIB)}
    return Variant.of(accel=accelerator, **size, **(extra or {}))


def limits_prefix(limits: Limits) -> list[str]:
    """argv prefix applying scenario limits inside the guest (a transient systemd scope)."""
    props: list[str] = []
    if limits.cpus is not None:
        props += ["-p", f"CPUQuota={round(limits.cpus * 100)}%"]
    if limits.memory is not None:
        props += ["-p", f"MemoryMax={int(limits.memory)}", "-p", "MemorySwapMax=0"]
    if not props:
        return []
    scope = ["sudo", "-n", "systemd-run", "--scope", "--quiet", "--uid=vagrant", "--gid=vagrant"]
    return [*scope, *props, "--"]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


class VagrantBackend:
    """Workloads inside a Vagrant-managed VM (provider libvirt)."""

    name = "vagrant"
    interleave = False

    def __init__(self) -> None:
        self._accel: accel_mod.AccelInfo | None = None
        self._vm: VagrantVM | None = None
        self._vm_key: str | None = None
        self._vm_facts: dict[str, str] = {}
        self._orphans_checked = False
        self._plugin_line: str | None = None
        self._notes: list[str] = []

    # --- discovery ----------------------------------------------------------------------------

    def accelerator(self) -> accel_mod.AccelInfo:
        """The accelerator VMs use here (detected once, cached per host boot on disk)."""
        if self._accel is None:
            self._accel = accel_mod.detect()
        return self._accel

    def _cli(self) -> VagrantCli:
        """python-vagrant for calls that need no VM (version, plugins)."""
        root = vms_root()
        return VagrantCli(root, {**os.environ, "VAGRANT_NO_COLOR": "1"}, root / "vagrant.log")

    def _vagrant_libvirt_plugin(self) -> str:
        if self._plugin_line is None:
            try:
                plugins = self._cli().plugins(timeout=120)
            except BackendError as exc:
                self._notes.append(f"`vagrant plugin list` failed: {exc}")
                plugins = []
            self._plugin_line = next(
                (f"{name} ({version})" for name, version in plugins if name == "vagrant-libvirt"),
                "",
            )
        return self._plugin_line

    def availability(self) -> Availability:
        """Vagrant + vagrant-libvirt + a reachable libvirtd + the isobench box."""
        for tool in ("vagrant", "virsh", "qemu-system-x86_64", "ssh"):
            if shutil.which(tool) is None:
                return Availability(False, f"{tool} is not installed", PROVISION_HINT)
        version = run_quiet([*VIRSH, "version"], 30)
        if version.returncode != 0:
            reason = "libvirtd not reachable at qemu:///system: " + _first_line(version.stderr)
            return Availability(False, reason, PROVISION_HINT)
        if not self._vagrant_libvirt_plugin():
            return Availability(
                False, "the vagrant-libvirt plugin is not installed", PROVISION_HINT
            )
        try:
            name = box_mod.box_name()
        except FileNotFoundError as exc:
            return Availability(False, str(exc), PROVISION_HINT)
        if not box_mod.box_installed(name):
            return Availability(False, f"Vagrant box {name} is not built", "isobench env build")
        return Availability(True)

    def variants(self, scenario: Scenario) -> list[Variant]:
        """One variant per VM size, labelled with the accelerator."""
        accelerator = self.accelerator().accelerator
        workload = scenario.workload
        extra = disk_variant(workload) if isinstance(workload, DiskWorkload) else {}
        return [
            variant_label(accelerator, size.cpus, int(size.memory), extra)
            for size in scenario.vagrant.sizes
        ]

    def _spec(self, variant: Variant) -> VmSpec:
        box = box_mod.box_name()
        if not box_mod.box_installed(box):
            # Never let `vagrant up` look for a missing box in the online catalog.
            msg = f"Vagrant box {box} is not built (run: isobench env build)"
            raise BackendUnavailable(msg)
        params = variant.params
        return VmSpec(
            box=box,
            cpus=int(params.get("cpus", "2")),
            memory_mb=int(params.get("memory", "1024")),
            accel=params.get("accel", self.accelerator().accelerator),
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def _clean_orphans(self) -> None:
        if not self._orphans_checked:
            self._orphans_checked = True
            removed = destroy_orphans()
            if removed:
                self._notes.append(f"removed leftovers of an interrupted run: {', '.join(removed)}")

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Destroy orphans; for non-startup workloads bring up the VM this pair reuses."""
        if scenario.workload.kind in UNSUPPORTED_KINDS:
            raise BackendUnavailable(UNSUPPORTED_KINDS[scenario.workload.kind])
        self._clean_orphans()
        if scenario.workload.kind in FRESH_VM_KINDS:
            self._destroy_vm()  # these boot a fresh VM per repetition
            return
        # Keyed on the variant only: the runner tears down after each scenario x variant block,
        # so a run gets a fresh VM per pair; a caller without teardowns may share one VM.
        key = variant.label
        if self._vm is not None and self._vm_key == key:
            return
        self._destroy_vm()
        vm = VagrantVM(self._spec(variant))
        self._vm, self._vm_key = vm, key
        try:
            up = vm.up(timeout=max(scenario.timeout, UP_TIMEOUT_FLOOR))
            vm.load_ssh_config()
            self._vm_facts = self._inspect(vm, up)
        except BaseException:
            self._destroy_vm()
            raise

    def _inspect(self, vm: VagrantVM, up_seconds: float) -> dict[str, str]:
        """Facts about a VM that just came up; also creates the guest's fio directory."""
        setup = vm.execute(
            ["sudo", "-n", "install", "-d", "-o", "vagrant", "-m", "0755", GUEST_DISK_DIR], 60
        )
        if setup.returncode != 0:
            msg = f"cannot create {GUEST_DISK_DIR} in the guest: {setup.stderr.strip()}"
            raise BackendError(msg)
        walls = [vm.execute(["true"], 30).wall for _ in range(3)]
        info = self.accelerator()
        return {
            "vm_name": vm.name,
            "guest_kernel": vm.execute(["uname", "-r"], 30).stdout.strip(),
            "accelerator": info.accelerator,
            "accelerator_forced": str(info.forced).lower(),
            "qemu_accel": qemu_accel_of(vm.qemu_pid()),
            "vagrant_up_s": f"{up_seconds:.3f}",
            "ssh_exec_overhead_s": f"{min(walls):.4f}",
        }

    def run(self, repetition: Repetition) -> Outcome:
        """One repetition: a fresh VM for startup, the prepared VM otherwise."""
        scenario, workload = repetition.scenario, repetition.scenario.workload
        if workload.kind == "startup":
            self._clean_orphans()
            fresh = VagrantVM(self._spec(repetition.variant), marker=True)
            outcome = measure_startup(fresh, repetition.timeout, log.info)
            return self._with_facts(outcome, {})
        if isinstance(workload, MemoryWorkload):
            return self._fresh_memory(repetition, workload)
        if self._vm is None or self._vm_key != repetition.variant.label:
            self.prepare(scenario, repetition.variant)
        vm = self._vm
        assert vm is not None
        prefix = limits_prefix(scenario.limits)
        execute: Executor = functools.partial(vm.execute, prefix=prefix)
        timeout = repetition.timeout
        if workload.kind == "syscall":
            outcome = run_syscall(execute, GUEST_PROBE, workload, timeout)
        elif workload.kind == "disk":
            outcome = run_disk(execute, workload, GUEST_DISK_DIR, timeout)
            outcome = Outcome(outcome.measurements, {**outcome.facts, **self._disk_facts(vm)})
        elif workload.kind == "command":
            outcome = run_command(execute, workload, timeout)
        else:
            raise BackendUnavailable(UNSUPPORTED_KINDS[workload.kind])
        return self._with_facts(outcome, self._vm_facts)

    def _disk_facts(self, vm: VagrantVM) -> dict[str, str]:
        """Where the guest's disk (the fio file's home) lives on the host: the domain's image."""
        image = run_quiet([*VIRSH, "vol-path", "--pool", "default", f"{vm.domain}.img"], 30)
        path = image.stdout.strip()
        if image.returncode != 0 or not path:
            self._notes.append(f"disk image of {vm.domain} not found: {image.stderr.strip()}")
            return {}
        return disk_placement(Path(path))

    def _fresh_memory(self, repetition: Repetition, workload: MemoryWorkload) -> Outcome:
        """Boot a fresh VM, measure it while the probe idles, destroy it (always)."""
        self._clean_orphans()
        deadline = time.monotonic() + repetition.timeout
        vm = VagrantVM(self._spec(repetition.variant))
        try:
            vm.up(timeout=repetition.timeout)
            vm.load_ssh_config()
            prefix = limits_prefix(repetition.scenario.limits)
            outcome = measure_memory(vm, workload, prefix, max(1.0, deadline - time.monotonic()))
            facts = {
                "vm_name": vm.name,
                "guest_kernel": vm.execute(["uname", "-r"], 30).stdout.strip(),
                "qemu_accel": qemu_accel_of(vm.qemu_pid()),
                "vm_per_repetition": "fresh",
            }
        finally:
            try:
                vm.destroy()
            except BackendError as exc:
                self._notes.append(f"destroying {vm.name} failed: {exc}")
        return self._with_facts(outcome, facts)

    def _with_facts(self, outcome: Outcome, extra: dict[str, str]) -> Outcome:
        info = self.accelerator()
        facts = {"accelerator": info.accelerator, **extra, **outcome.facts}
        return Outcome(outcome.measurements, facts)

    def _destroy_vm(self) -> None:
        vm, self._vm, self._vm_key, self._vm_facts = self._vm, None, None, {}
        if vm is not None:
            try:
                vm.destroy()
            except BackendError as exc:
                self._notes.append(f"destroying {vm.name} failed: {exc}")

    def teardown(self) -> None:
        """Destroy the VM this backend holds (idempotent; also on Ctrl-C)."""
        self._destroy_vm()

    # --- environment.json ---------------------------------------------------------------------

    def notes(self) -> list[str]:
        """Leftovers removed and failed clean-ups, for environment.json and the report."""
        return list(self._notes)

    def _vagrant_version(self) -> str | None:
        try:
            return f"Vagrant {self._cli().version(timeout=60)}"
        except BackendError:
            return None

    def environment(self) -> dict[str, Any]:
        """Accelerator evidence and the versions of every layer of the VM stack."""
        info = self.accelerator()
        qemu = run_quiet(["qemu-system-x86_64", "--version"], 30).stdout
        virsh = run_quiet([*VIRSH, "version"], 30).stdout
        libvirt = re.search(r"Using library: libvirt (\S+)", virsh)
        hypervisor = re.search(r"Running hypervisor: QEMU (\S+)", virsh)
        try:
            box: str | None = box_mod.box_name()
        except FileNotFoundError:
            box = None
        return {
            "accelerator": info.accelerator,
            "accelerator_reason": info.reason,
            "accelerator_forced": info.forced,
            "kvm_device": info.kvm_device,
            "kvm_pvm": info.kvm_pvm,
            "host_virtualized": info.host_virtualized,
            "nested": info.host_virtualized,
            "vagrant": self._vagrant_version(),
            "vagrant_libvirt": self._vagrant_libvirt_plugin(),
            "libvirt": libvirt.group(1) if libvirt else None,
            "qemu": _first_line(qemu),
            "qemu_libvirt_hypervisor": hypervisor.group(1) if hypervisor else None,
            "box": box,
            "box_hash": box.rsplit("-", 1)[-1] if box else None,
            "box_kernel_cmdline": box_mod.KERNEL_CMDLINE,
        }


__all__ = ["VagrantBackend", "limits_prefix", "variant_label"]

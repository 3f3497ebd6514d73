"""Vagrant VM backend: the same workloads inside a real VM (vagrant-libvirt, KVM or TCG).

* ``startup``: a fresh VM per repetition, timed in phases from the guest's readiness markers
  (see :mod:`.startup` and :mod:`.marker`).
* ``memory``: a fresh VM per repetition too (see :mod:`.memory`): a reused VM's QEMU keeps every
  page earlier repetitions touched, so its footprint would grow with the repetition number.
* ``syscall`` / ``disk`` / ``command`` / ``network``: one VM per size, brought up in
  :meth:`VagrantBackend.prepare` and kept across these scenarios (paused between blocks, see
  :mod:`.shared`); commands run over plain ``ssh`` with the options ``vagrant ssh-config``
  printed (never ``vagrant ssh``: ~3 s of Ruby start-up per call), multiplexed over one
  master connection. A ``command`` runs in the storage under test (:data:`GUEST_DISK_DIR`);
  the workload's tools are checked in the guest before any repetition
  (:func:`~bench.workloads.tools.guest_problems`, fio's engines).
* ``network`` / ``density``: see :mod:`.netdensity` (the server in the guest, reached at the
  VM's own libvirt NAT address; N fresh VMs, N capped by host memory).
* Every variant is labelled with the accelerator actually used (``accel=tcg,cpus=2,memory=1024``)
  and each VM's QEMU command line is read back to confirm it.

The runner treats this backend as a block (``interleave = False``): an idle emulated VM would
otherwise steal CPU from native/docker measurements taken meanwhile.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any, Final

from bench.backends.base import Repetition
from bench.backends.vagrant import accel as accel_mod
from bench.backends.vagrant import stack
from bench.backends.vagrant.cli import VagrantCli
from bench.backends.vagrant.guest import (
    GUEST_DISK_DIR,
    check_tools,
    domain_disk_facts,
    run_command_in_storage,
)
from bench.backends.vagrant.memory import measure_memory
from bench.backends.vagrant.netdensity import VmInstances, VmNetwork, density_cap
from bench.backends.vagrant.shared import SHARED_KINDS, KeptVm, vm_key
from bench.backends.vagrant.startup import measure_startup
from bench.backends.vagrant.vm import (
    VagrantVM,
    VmSpec,
    destroy_orphans,
    qemu_accel_of,
    vms_root,
)
from bench.envbuild import box as box_mod
from bench.paths import cache_dir
from bench.scenario.model import (
    CommandWorkload,
    DensityWorkload,
    DiskWorkload,
    Limits,
    MemoryWorkload,
    NetworkWorkload,
    Scenario,
)
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
    build_probe,
    disk_variant,
    run_disk,
    run_syscall,
)
from bench.workloads.density import mem_available, run_density

log = logging.getLogger(__name__)

MIB: Final = 1024 * 1024
#: Floor for `vagrant up` in prepare(): the first boot also uploads the box into the pool.
UP_TIMEOUT_FLOOR: Final = 600.0


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


class VagrantBackend:
    """Workloads inside a Vagrant-managed VM (provider libvirt)."""

    name = "vagrant"
    interleave = False

    def __init__(self) -> None:
        self._accel: accel_mod.AccelInfo | None = None
        self._kept: KeptVm | None = None  # the VM syscall/disk/command/network share
        self._network: VmNetwork | None = None
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
        return stack.availability(self._vagrant_libvirt_plugin)

    def variants(self, scenario: Scenario) -> list[Variant]:
        """One variant per VM size, labelled with the accelerator (x client / x instances)."""
        accelerator = self.accelerator().accelerator
        workload = scenario.workload
        sweeps: list[dict[str, str]] = [{}]
        if isinstance(workload, DiskWorkload):
            sweeps = [disk_variant(workload)]
        elif isinstance(workload, NetworkWorkload):
            sweeps = [{"network": "libvirt-nat", "client": where} for where in workload.client]
        elif isinstance(workload, DensityWorkload):
            sweeps = [
                {"instances": str(n), "start": mode}
                for n in workload.instances
                for mode in workload.start
            ]
        return [
            variant_label(accelerator, size.cpus, int(size.memory), extra)
            for size in scenario.vagrant.sizes
            for extra in sweeps
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

    def shared_environment(self, scenario: Scenario, variant: Variant) -> str | None:
        """The kept VM's key for syscall/disk/command (one VM per size); None otherwise."""
        return vm_key(variant) if scenario.workload.kind in SHARED_KINDS else None

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Destroy orphans; bring up (or resume) the kept VM and check the workload's tools.

        Startup, memory and density boot fresh VMs per repetition (a kept VM is destroyed
        first); a density count that does not fit in host memory is refused here, before any
        VM starts.
        """
        self._clean_orphans()
        key = self.shared_environment(scenario, variant)
        if key is None:
            # A kept VM beside the measured ones would share QEMU's pages with them (lower
            # PSS) and take host memory: destroy it.
            self._destroy_vm()
            if isinstance(scenario.workload, DensityWorkload):
                spec = self._spec(variant)
                n = int(variant.params["instances"])
                cap = density_cap(n, spec.memory_mb * MIB, spec.accel, mem_available())
                if cap is not None:
                    raise BackendUnavailable(cap)
            return
        check_tools(self._take_up(scenario, variant, key), scenario, limits_prefix(scenario.limits))

    def _take_up(self, scenario: Scenario, variant: Variant, key: str) -> VagrantVM:
        """The kept VM for ``key``: resumed if paused, else a freshly booted one."""
        if self._kept is not None and self._kept.key == key:
            try:
                self._kept.use(scenario.name)
            except BackendError as exc:  # cannot resume: boot a new one below
                self._notes.append(f"resuming {self._kept.vm.name} failed ({exc}); rebooted")
            else:
                return self._kept_vm()
        self._destroy_vm()
        vm = VagrantVM(self._spec(variant))
        self._kept = KeptVm(vm, key, {})
        try:
            up = vm.up(timeout=max(scenario.timeout, UP_TIMEOUT_FLOOR))
            vm.load_ssh_config()
            self._kept = KeptVm(vm, key, self._inspect(vm, up))
            self._kept.use(scenario.name)
        except BaseException:
            self._destroy_vm()
            raise
        return vm

    def _kept_vm(self) -> VagrantVM:
        """The kept VM (a :class:`VagrantVM`; the type :class:`KeptVm` sees is narrower)."""
        assert self._kept is not None
        vm = self._kept.vm
        assert isinstance(vm, VagrantVM)
        return vm

    def park(self) -> None:
        """Between blocks: pause the kept VM (no CPU) for a later scenario; never raises."""
        if self._kept is None:
            return
        reason = self._kept.pause()
        if reason is not None:
            self._notes.append(f"pausing {self._kept.vm.name} failed ({reason}); destroyed")
            self._destroy_vm()

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
        if isinstance(workload, DensityWorkload):
            return self._density(repetition, workload)
        kept = self._kept
        if kept is None or kept.paused or kept.key != vm_key(repetition.variant):
            self.prepare(scenario, repetition.variant)
        vm = self._kept_vm()
        prefix = limits_prefix(scenario.limits)
        execute: Executor = functools.partial(vm.execute, prefix=prefix)
        timeout = repetition.timeout
        if workload.kind == "syscall":
            outcome = run_syscall(execute, GUEST_PROBE, workload, timeout)
        elif workload.kind == "disk":
            outcome = run_disk(execute, workload, GUEST_DISK_DIR, timeout)
            placement, note = domain_disk_facts(vm)
            self._notes += [note] if note else []
            outcome = Outcome(outcome.measurements, {**outcome.facts, **placement})
        elif isinstance(workload, CommandWorkload):
            outcome = run_command_in_storage(vm, prefix, workload, timeout)
        elif isinstance(workload, NetworkWorkload):
            outcome = self._network_of(vm, prefix).run(
                workload, repetition.variant.params.get("client", "host"), timeout
            )
        else:  # pragma: no cover - the scenario model admits no other kind
            msg = f"unsupported workload {workload!r}"
            raise BackendError(msg)
        kept_facts = self._kept.facts() if self._kept is not None else {}
        return self._with_facts(outcome, kept_facts)

    def _network_of(self, vm: VagrantVM, prefix: list[str]) -> VmNetwork:
        """The network server of the current VM (started at its first client run)."""
        if self._network is None or self._network.vm is not vm:
            self._network = VmNetwork(vm, str(build_probe(cache_dir())), prefix)
        return self._network

    def _density(self, repetition: Repetition, workload: DensityWorkload) -> Outcome:
        """N fresh VMs at once (:mod:`bench.workloads.density`); all destroyed at the end."""
        params = repetition.variant.params
        instances = VmInstances(self._spec(repetition.variant), repetition.timeout, self._notes)
        outcome = run_density(
            instances, int(params["instances"]), params["start"], workload.settle,
            repetition.timeout,
        )  # fmt: skip
        return self._with_facts(outcome, {"vm_per_repetition": "fresh", **instances.facts()})

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
        kept, self._kept = self._kept, None
        self._network = None  # its server dies with the VM
        if kept is not None:
            vm = kept.vm
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
        return stack.versions(
            self.accelerator(), self._vagrant_version(), self._vagrant_libvirt_plugin()
        )


__all__ = ["VagrantBackend", "limits_prefix", "variant_label"]

"""The Vagrant backend on a REAL VM (vagrant-libvirt; TCG on hosts without a working KVM).

Boots three VMs in all: one fresh VM for the startup workload and one for the memory workload
(both are defined as a fresh boot per repetition, destroyed inside the repetition), and ONE
shared VM, module-scoped, on which syscall, disk and command run once with tiny parameters (and
QEMU's PSS is cross-checked against smem). The watchdog test kills `vagrant up` without a boot.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest

from bench import backends
from bench.backends.base import Repetition
from bench.backends.vagrant.backend import VagrantBackend
from bench.backends.vagrant.memory import MIB, sample_qemu
from bench.backends.vagrant.vm import VagrantVM, parse_vol_list
from bench.results import load
from bench.run.runner import execute_run, plan
from bench.scenario.loader import LoadedScenario
from bench.scenario.model import Scenario, parse_scenario
from bench.values import Availability, RepetitionTimeout
from bench.workloads import CONTRACT
from tests.engines import skip_or_fail
from tests.integration.helpers import kept_vm

pytestmark = [pytest.mark.integration, pytest.mark.vagrant]

TIMEOUT = 600.0
WORKLOADS = {
    "startup": {"kind": "startup"},
    "syscall": {"kind": "syscall", "null_calls": 200_000, "mixed_calls": 20_000},
    "disk": {"kind": "disk", "file_size": "16MiB", "runtime": 1},
    "memory": {"kind": "memory", "alloc": "16MiB", "idle": 2},
    "command": {"kind": "command", "command": ["/usr/bin/true"], "parser": "time"},
}


def scenario_data(kind: str, timeout: float = TIMEOUT) -> dict[str, object]:
    return {
        "format_version": 1,
        "name": f"vagrant-it-{kind}",
        "workload": WORKLOADS[kind],
        "backends": ["vagrant"],
        "repeat": 1,
        "warmup": 0,
        "timeout": timeout,
    }


def scenario(kind: str) -> Scenario:
    return parse_scenario(scenario_data(kind))


def own_leftovers() -> list[str]:
    """Domains and volumes named after THIS test process (isobench-<pid>-...)."""
    prefix = f"isobench-{os.getpid()}-"
    virsh = ["virsh", "-c", "qemu:///system"]
    domains = subprocess.run(
        [*virsh, "list", "--all", "--name"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    volumes = subprocess.run(
        [*virsh, "vol-list", "--pool", "default"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names = [ln.strip() for ln in domains.splitlines()] + parse_vol_list(volumes)
    return [name for name in names if name.startswith(prefix)]


@pytest.fixture(scope="module")
def backend():
    instance = backends.create("vagrant")
    assert isinstance(instance, VagrantBackend)
    available = instance.availability()
    if not available.ok:
        skip_or_fail(f"vagrant backend unavailable: {available.reason} ({available.hint})")
    yield instance
    instance.teardown()
    assert own_leftovers() == [], "the backend left libvirt domains/volumes behind"


def run_once(backend: VagrantBackend, kind: str, tmp: Path):
    sc = scenario(kind)
    variant = backend.variants(sc)[0]
    backend.prepare(sc, variant)
    return variant, backend.run(Repetition(sc, variant, 0, False, TIMEOUT, tmp))


def check_accelerator(backend: VagrantBackend, variant, facts) -> None:
    info = backend.accelerator()
    assert variant.params["accel"] == info.accelerator
    assert facts["accelerator"] == info.accelerator
    # QEMU's real command line must agree with what we labelled the data with.
    assert facts["qemu_accel"] == info.accelerator
    if info.kvm_pvm and not info.forced:
        assert info.accelerator == "tcg"


def check_guest_kernel(facts) -> None:
    assert facts["guest_kernel"]
    assert facts["guest_kernel"] != platform.release(), "the guest must boot its own kernel"


def test_startup_phases_come_from_the_guest_marker(backend, tmp_path):
    variant, outcome = run_once(backend, "startup", tmp_path)
    values = {m.metric: m.value for m in outcome.measurements}
    for metric in (
        *CONTRACT["startup"],
        "startup.up",
        "startup.domain",
        "startup.ssh",
        "startup.kernel",
        "startup.userspace",
        "startup.halt",
        "startup.destroy",
        "startup.vagrant_cli",
    ):
        assert metric in values, metric
        assert values[metric] > 0, metric
    assert outcome.facts["ready_source"].startswith("virtio-serial marker")
    # Every marker phase lies in [launch, exit] and in boot order; the VM exited during halt.
    vm_exit = float(outcome.facts["vm_exit_s"])
    assert 0 < values["startup.domain"] < values["startup.ready"]
    assert values["startup.ready"] <= values["startup.total"] <= values["startup.ssh"] < vm_exit
    # The guest was ready before Vagrant's own SSH check let `vagrant up` return.
    assert values["startup.ready"] < values["startup.up"] < vm_exit
    assert "clock_offset_s" not in outcome.facts
    check_accelerator(backend, variant, outcome.facts)
    check_guest_kernel(outcome.facts)
    assert own_leftovers() == [], "a startup repetition must destroy its VM"


def test_an_absurd_up_timeout_is_a_timeout_row_and_leaves_no_domain(backend, tmp_path):
    # Through the real runner: the watchdog kills `vagrant up`, the row says why.
    data = scenario_data("startup", timeout=1)
    path = tmp_path / "startup.yaml"
    path.write_text(json.dumps(data))
    loaded = LoadedScenario(parse_scenario(data), path, path.read_text())
    items = plan([loaded.scenario], {"vagrant": backend})
    result = execute_run(
        [loaded], items, {"vagrant": backend}, {"vagrant": Availability(True)}, tmp_path / "out"
    )
    rows = load([result.run_dir])
    assert set(rows["status"]) == {"timeout"}
    assert set(rows["metric"]) == set(CONTRACT["startup"])
    assert rows["reason"].str.contains("`vagrant up` did not finish within 1 s").all()
    assert own_leftovers() == []


def test_up_killed_mid_creation_leaves_no_domain(backend):
    # Long enough for vagrant-libvirt to be creating volumes/the domain, far too short to boot.
    vm = VagrantVM(backend._spec(backend.variants(scenario("syscall"))[0]))
    try:
        with pytest.raises(RepetitionTimeout, match="killed by the watchdog"):
            vm.up(timeout=25)
    finally:
        vm.destroy()
    assert own_leftovers() == []


def test_memory_on_a_fresh_vm(backend, tmp_path):
    variant, outcome = run_once(backend, "memory", tmp_path)
    values = {m.metric: m.value for m in outcome.measurements}
    for metric in (*CONTRACT["memory"], "memory.environment", "memory.vm_configured"):
        assert values[metric] > 0, metric
    configured = int(variant.params["memory"]) * MIB
    assert values["memory.vm_configured"] == configured
    # Guest RAM backed on the host: at least the 16 MiB the probe touched, at most all of it.
    assert values["memory.workload_peak"] <= values["memory.guest_touched"] <= configured
    # The whole QEMU process holds the touched guest RAM plus QEMU itself.
    assert values["memory.environment"] >= values["memory.guest_touched"]
    assert 0 < values["memory.guest_available"] < values["memory.guest_total"] <= configured
    assert outcome.facts["vm_per_repetition"] == "fresh"
    check_accelerator(backend, variant, outcome.facts)
    check_guest_kernel(outcome.facts)
    assert own_leftovers() == [], "a memory repetition must destroy its VM"


@pytest.mark.parametrize("kind", ["syscall", "disk", "command"])
def test_workloads_on_the_shared_vm(backend, kind, tmp_path):
    variant, outcome = run_once(backend, kind, tmp_path)
    values = {m.metric: m.value for m in outcome.measurements}
    for metric in CONTRACT[kind]:
        assert metric in values, metric
        assert values[metric] > 0, metric
    check_accelerator(backend, variant, outcome.facts)
    check_guest_kernel(outcome.facts)
    if kind == "disk":
        # The fio file's home on the host is the domain's disk image, with its filesystem.
        assert outcome.facts["disk_host_path"].endswith("_default.img")
        assert outcome.facts["disk_host_fs_dev"]


def domain_state(domain: str) -> str:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", "domstate", domain],
        capture_output=True, text=True, check=False, timeout=60,
    ).stdout.strip()  # fmt: skip


def test_the_kept_vm_is_paused_between_scenarios_and_destroyed_before_a_fresh_boot(
    backend, tmp_path
):
    # Runs after the shared-VM tests above: the VM they used is still up (no extra boot).
    _, first = run_once(backend, "syscall", tmp_path)
    name = first.facts["vm_name"]
    backend.park()  # what the runner does after a block
    assert domain_state(f"{name}_default") == "paused"
    _, second = run_once(backend, "disk", tmp_path)  # another scenario: resumed, not rebooted
    assert second.facts["vm_name"] == name
    assert second.facts["vm_per_repetition"] == "kept"
    assert "vagrant-it-syscall" in second.facts["vm_scenarios_before"].split(",")
    assert domain_state(f"{name}_default") == "running"
    assert second.measurements
    # A fresh-boot scenario (memory) never measures beside a kept VM: it is destroyed first.
    sc = scenario("memory")
    backend.prepare(sc, backend.variants(sc)[0])
    assert own_leftovers() == []


def smem_pss(pid: int) -> int:
    """PSS of ``pid`` according to smem (which sums /proc/PID/smaps itself), in bytes."""
    out = subprocess.run(
        ["smem", "-c", "pid pss", "-P", "qemu-system"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == str(pid):
            return int(fields[1]) * 1024
    raise AssertionError(f"smem lists no qemu process {pid}: {out}")


def test_qemu_pss_matches_smem(backend, tmp_path):
    if not any(Path(d, "smem").exists() for d in os.environ["PATH"].split(":")):
        skip_or_fail("smem is not installed")
    run_once(backend, "syscall", tmp_path)  # the shared VM is up
    vm = kept_vm(backend)
    assert vm is not None
    pid = vm.qemu_pid()
    assert pid is not None
    ours = sample_qemu(pid, vm.spec.memory_mb * MIB).environment.pss
    theirs = smem_pss(pid)
    assert abs(ours - theirs) <= 0.05 * theirs, (ours, theirs)

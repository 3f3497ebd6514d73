"""The Vagrant backend on a REAL VM (vagrant-libvirt; TCG on hosts without a working KVM).

Boots two VMs in all: one fresh VM for the startup workload (that workload is defined as a
fresh boot per repetition, halted and destroyed inside the repetition), and ONE shared VM,
module-scoped, on which every other workload kind runs once with tiny parameters.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

from bench import backends
from bench.backends.base import Repetition
from bench.backends.vagrant.backend import VagrantBackend
from bench.backends.vagrant.vm import parse_vol_list
from bench.scenario.model import Scenario, parse_scenario
from bench.workloads import CONTRACT
from tests.engines import skip_or_fail

pytestmark = [pytest.mark.integration, pytest.mark.vagrant]

TIMEOUT = 600.0
WORKLOADS = {
    "startup": {"kind": "startup"},
    "syscall": {"kind": "syscall", "null_calls": 200_000, "mixed_calls": 20_000},
    "disk": {"kind": "disk", "file_size": "16MiB", "runtime": 1},
    "memory": {"kind": "memory", "alloc": "16MiB", "idle": 2},
    "command": {"kind": "command", "command": ["/usr/bin/true"], "parser": "time"},
}


def scenario(kind: str) -> Scenario:
    return parse_scenario(
        {
            "format_version": 1,
            "name": f"vagrant-it-{kind}",
            "workload": WORKLOADS[kind],
            "backends": ["vagrant"],
            "repeat": 1,
            "warmup": 0,
            "timeout": TIMEOUT,
        }
    )


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


def test_startup_phases_on_a_fresh_vm(backend, tmp_path):
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
    ):
        assert metric in values, metric
        assert values[metric] > 0, metric
    # Host-observed phases happen in this order after `vagrant up` is issued.
    assert values["startup.domain"] < values["startup.ssh"] < values["startup.ready"]
    assert values["startup.ready"] < values["startup.total"]
    assert values["startup.domain"] < values["startup.up"]
    assert float(outcome.facts["clock_offset_uncertainty_s"]) < 0.5
    check_accelerator(backend, variant, outcome.facts)
    check_guest_kernel(outcome.facts)
    assert own_leftovers() == [], "a startup repetition must destroy its VM"


@pytest.mark.parametrize("kind", ["syscall", "disk", "memory", "command"])
def test_workloads_on_the_shared_vm(backend, kind, tmp_path):
    variant, outcome = run_once(backend, kind, tmp_path)
    values = {m.metric: m.value for m in outcome.measurements}
    for metric in CONTRACT[kind]:
        assert metric in values, metric
        assert values[metric] > 0, metric
    check_accelerator(backend, variant, outcome.facts)
    check_guest_kernel(outcome.facts)
    if kind == "memory":
        # The VMM holds at least what the guest's workload touched.
        assert values["memory.vmm_pss"] >= values["memory.workload_peak"]
        assert 0 < values["memory.guest_available"] < values["memory.guest_total"]
        assert values["memory.guest_total"] <= 1024 * 1024 * 1024

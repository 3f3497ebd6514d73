"""The sandbox backend on real bubblewrap: every rung, the kernel inside, nothing left behind."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.backends.base import Repetition
from bench.backends.sandbox import SandboxBackend
from bench.scenario.model import Scenario
from bench.values import Variant
from tests.integration import helpers
from tests.integration.helpers import available, interrupt_with_sigint, run_once
from tests.integration.test_network_density import (
    SMALL_NET,
    check_density,
    check_network,
    interrupt_density_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.sandbox]


@pytest.fixture
def backend() -> Iterator[SandboxBackend]:
    yield from available(SandboxBackend())


scenario = functools.partial(helpers.scenario, timeout=60, name="sb")


def sandboxes() -> list[psutil.Process]:
    """bwrap processes started by this (test) process."""
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "bwrap"]


def test_every_rung_runs_the_probe_on_the_hosts_kernel(
    backend: SandboxBackend, tmp_path: Path
) -> None:
    sc = scenario({"kind": "syscall", "null_calls": 100_000, "mixed_calls": 8_000})
    variants = backend.variants(sc)
    assert [v.params["layers"] for v in variants] == [
        "namespaces",
        "namespaces+cgroup",
        "namespaces+cgroup+seccomp",
    ]
    for variant in variants:  # prepared together, run interleaved: as the runner does
        backend.prepare(sc, variant)
    cgroups = [
        d for rung in backend._rungs.values() if rung.cgroup for d in rung.cgroup.directories
    ]
    assert cgroups
    assert all(d.is_dir() for d in cgroups)
    modes = {}
    for variant in variants:
        outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
        assert outcome.facts["kernel"] == os.uname().release  # uname -r inside: the host's
        values = {m.metric: m.value for m in outcome.measurements}
        assert values["syscall.null_rate"] > 0
        modes[variant.params["layers"]] = outcome.facts
    assert "seccomp_rules" in modes["namespaces+cgroup+seccomp"]
    assert "seccomp_rules" not in modes["namespaces"]
    backend.teardown()
    assert not any(d.exists() for d in cgroups)
    assert sandboxes() == []


def test_seccomp_rung_really_filters(backend: SandboxBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "command", "command": ["grep", "Seccomp:", "/proc/self/status"]})
    top, bottom = backend.variants(sc)[-1], backend.variants(sc)[0]
    assert "Seccomp:\t2" in _stdout(backend, sc, top, tmp_path)
    assert "Seccomp:\t0" in _stdout(backend, sc, bottom, tmp_path)


def _stdout(b: SandboxBackend, sc: Scenario, variant: Variant, tmp_path: Path) -> str:
    b.prepare(sc, variant)
    rep = Repetition(sc, variant, 0, False, sc.timeout, tmp_path)
    execute = b.executor(rep)
    b._seccomp_fd = b._rungs[(sc.hash, variant.label)].seccomp_fd
    if b._seccomp_fd is not None:
        os.lseek(b._seccomp_fd, 0, os.SEEK_SET)
    return execute(list(sc.workload.command), 30).stdout  # type: ignore[union-attr]


def test_startup_memory_and_disk(backend: SandboxBackend, tmp_path: Path) -> None:
    # every rung: the timed launch follows a warm-up launch, and both must find the seccomp
    # program whole (one descriptor, read to its end by each bwrap)
    for layers in ("namespaces", "namespaces+cgroup", "namespaces+cgroup+seccomp"):
        start = run_once(
            backend, scenario({"kind": "startup"}), Variant.of(layers=layers), tmp_path
        )
        ready = {m.metric: m.value for m in start.measurements}
        assert 0 < ready["startup.ready"] <= ready["startup.total"] < 5, layers
    mem_sc = scenario({"kind": "memory", "alloc": "8MiB", "idle": 0.3}, limits={"memory": "64MiB"})
    mem = run_once(backend, mem_sc, Variant.of(layers="namespaces+cgroup"), tmp_path)
    values = {m.metric: m.value for m in mem.measurements}
    assert values["memory.environment"] >= values["memory.workload_peak"] >= 8 * 2**20
    assert len(mem.facts["environment_pids"].split(",")) >= 3  # bwrap, its pid 1, the probe
    assert "memory=67108864" in mem.facts["limits"]
    disk_sc = scenario({"kind": "disk", "file_size": "4MiB", "runtime": 0.2})
    disk = run_once(backend, disk_sc, Variant.of(layers="namespaces"), tmp_path)
    assert "bind mount" in disk.facts["storage"]
    assert disk.facts["disk_host_fs_dev"]


def test_keyboard_interrupt_leaves_no_sandbox_and_no_cgroup(
    backend: SandboxBackend, tmp_path: Path
) -> None:
    sc = scenario({"kind": "command", "command": ["sleep", "60"]})
    variant = Variant.of(layers="namespaces+cgroup")
    backend.prepare(sc, variant)
    (rung,) = backend._rungs.values()
    assert rung.cgroup is not None
    cgroups = list(rung.cgroup.directories)
    interrupt_with_sigint(
        lambda: backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path)),
        after=1.0,
        cleanup=backend.teardown,
    )
    assert sandboxes() == []
    assert not any(d.exists() for d in cgroups)


def test_network_runs_inside_every_rung(backend: SandboxBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "network", "client": ["host", "inside"], **SMALL_NET})
    variants = backend.variants(sc)
    assert [v.params["client"] for v in variants] == ["inside"] * 3  # one per rung
    assert any("client=host is not measured" in note for note in backend.notes())
    for variant in variants:
        outcome = run_once(backend, sc, variant, tmp_path)
        check_network(outcome)
        assert "its own network namespace" in outcome.facts["net_path"]
        assert outcome.facts["layers"] == variant.params["layers"]
    assert sandboxes() == []  # the sandbox, server included, ends with the client


@pytest.mark.parametrize("start", ["sequential", "concurrent"])
def test_density_on_every_rung_leaves_no_sandbox(
    backend: SandboxBackend, tmp_path: Path, start: str
) -> None:
    sc = scenario({"kind": "density", "instances": [3], "start": [start], "settle": 0.2})
    variants = backend.variants(sc)
    assert len(variants) == 3
    for variant in variants:  # on the +seccomp rung every launch reads its own program
        outcome = run_once(backend, sc, variant, tmp_path)
        check_density(outcome, 3)
        assert int(outcome.facts["processes"]) >= 6  # the bwrap above each probe counts
    assert sandboxes() == []


def test_ctrl_c_during_density_leaves_nothing(backend: SandboxBackend, tmp_path: Path) -> None:
    options = {"sandbox": {"layers": ["namespaces", "cgroup"]}}
    assert interrupt_density_run(tmp_path, "sandbox", 6, options) == []

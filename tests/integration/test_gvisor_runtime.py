"""gVisor (runsc) as a Docker runtime: the platform in the label, its own kernel inside."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.backends.base import Repetition
from bench.backends.docker import DockerBackend
from bench.backends.docker.support import RUN_LABEL
from bench.scenario.model import Scenario, parse_scenario
from tests.engines import skip_or_fail

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.gvisor]


@pytest.fixture
def backend() -> Iterator[DockerBackend]:
    b = DockerBackend()
    state = b.availability()
    if not state.ok:
        skip_or_fail(f"{state.reason} ({state.hint})")
    if "runsc" not in b.runtimes():
        skip_or_fail("runsc is not registered with dockerd (sudo scripts/provision-docker.sh)")
    try:
        yield b
    finally:
        b.teardown()


def scenario(kind: dict[str, object]) -> Scenario:
    return parse_scenario(
        {
            "format_version": 1,
            "name": "gv",
            "workload": kind,
            "timeout": 120,
            "docker": {"runtimes": ["runsc"], "seccomp": ["default", "unconfined"]},
        }
    )


def test_syscall_and_startup_under_gvisor(backend: DockerBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "syscall", "null_calls": 20_000, "mixed_calls": 4_000})
    (variant,) = backend.variants(sc)  # seccomp options collapse: gVisor loads no OCI profile
    platform = variant.params["platform"]
    assert platform in {"ptrace", "systrap", "kvm"}
    assert variant.label.startswith(f"runtime=runsc,platform={platform},")
    assert variant.params["seccomp"] == "sentry"
    backend.prepare(sc, variant)
    outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    assert outcome.facts["kernel_inside"] == "4.4.0"  # uname -r under gVisor: its own kernel
    assert outcome.facts["kernel_host"] == os.uname().release
    assert {m.metric for m in outcome.measurements} == {"syscall.null_rate", "syscall.mixed_rate"}
    start_sc = scenario({"kind": "startup"})
    api = next(v for v in backend.variants(start_sc) if "path" not in v.params)
    backend.prepare(start_sc, api)
    started = backend.run(Repetition(start_sc, api, 0, False, start_sc.timeout, tmp_path))
    assert started.facts["kernel"] == "4.4.0"
    run = backend._owner().run
    client = backend._connect()
    backend.teardown()
    client = backend._connect()
    left = client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"})
    assert left == []

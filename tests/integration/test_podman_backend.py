"""The podman backend on real Podman, rootful and rootless: kernel inside, no leftovers."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.backends.base import Repetition
from bench.backends.podman import PodmanBackend
from bench.backends.podman.service import SOCKET_PREFIX, rootless_account
from bench.values import Variant
from tests.engines import skip_or_fail
from tests.integration import helpers
from tests.integration.helpers import available, interrupt_with_sigint

pytestmark = [pytest.mark.integration, pytest.mark.podman]

MODES = [
    Variant.of(mode="rootful", storage="overlay", network="none"),
    Variant.of(mode="rootless", storage="overlay", network="none"),
]


@pytest.fixture
def backend() -> Iterator[PodmanBackend]:
    yield from available(PodmanBackend())


scenario = functools.partial(helpers.scenario, timeout=120, name="pm")


def leftovers() -> list[str]:
    """Services, conmons and rootless-user processes alive now (none may outlive teardown)."""
    rootless = rootless_account()
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "uids"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if (
            (proc.info["name"] == "podman" and SOCKET_PREFIX in cmdline)
            or (proc.info["name"] == "conmon" and "isobench" in cmdline)
            or (rootless is not None and proc.info["uids"].real == rootless.pw_uid)
        ):
            found.append(f"{proc.info['pid']} {cmdline[:80]}")
    return found


@pytest.mark.parametrize("variant", MODES, ids=lambda v: v.params["mode"])
def test_startup_syscall_memory_on_the_hosts_kernel_and_nothing_left(
    backend: PodmanBackend, variant: Variant, tmp_path: Path
) -> None:
    if variant.params["mode"] == "rootless" and rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    facts = {}
    for workload in (
        {"kind": "startup"},
        {"kind": "syscall", "null_calls": 100_000, "mixed_calls": 8_000},
        {"kind": "memory", "alloc": "8MiB", "idle": 0.3},
    ):
        sc = scenario(workload)
        assert variant in backend.variants(sc)
        backend.prepare(sc, variant)
        outcome = backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
        assert outcome.facts["kernel"] == os.uname().release  # uname -r inside: the host's
        assert outcome.facts["storage_driver"] == "overlay"
        values = {m.metric: m.value for m in outcome.measurements}
        assert all(v > 0 for v in values.values()), values
        facts[workload["kind"]] = outcome.facts
    assert facts["syscall"]["seccomp_mode"] == "2"
    rootless = variant.params["mode"] == "rootless"
    assert facts["memory"]["user"] == ("isobench-rootless" if rootless else "root")
    assert "conmon" in facts["memory"]["memory_accounting"]
    assert leftovers()  # the service (and its exec container) run until teardown...
    backend.teardown()
    assert leftovers() == []  # ...and nothing survives it: no service, conmon, pause process


def test_keyboard_interrupt_leaves_nothing(backend: PodmanBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "command", "command": ["sleep", "60"]})
    variant = MODES[0]
    backend.prepare(sc, variant)
    interrupt_with_sigint(
        lambda: backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path)),
        after=1.5,
        cleanup=backend.teardown,
    )
    assert leftovers() == []


def test_rootless_limits_on_cgroup_v1_are_a_skip_with_the_reason(backend: PodmanBackend) -> None:
    if rootless_account() is None:
        skip_or_fail("no rootless user (sudo scripts/provision podman)")
    sc = scenario({"kind": "startup"}, limits={"memory": "64MiB"})
    variant = MODES[1]
    service = backend._service(variant)
    if service.client.info().get("CgroupVersion") != "1":
        pytest.skip("cgroup v2 host: rootless limits may work here")
    with pytest.raises(Exception, match="cgroup v1"):
        backend.prepare(sc, variant)

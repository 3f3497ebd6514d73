"""The podman backend on real Podman, rootful and rootless: kernel inside, no leftovers."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.backends.base import Repetition
from bench.backends.podman import PodmanBackend
from bench.backends.podman.service import SOCKET_PREFIX, rootless_account
from bench.scenario.model import Scenario, parse_scenario
from bench.values import Variant
from tests.engines import skip_or_fail

pytestmark = [pytest.mark.integration, pytest.mark.podman]

MODES = [
    Variant.of(mode="rootful", storage="overlay", network="none"),
    Variant.of(mode="rootless", storage="overlay", network="none"),
]


@pytest.fixture
def backend() -> Iterator[PodmanBackend]:
    b = PodmanBackend()
    state = b.availability()
    if not state.ok:
        skip_or_fail(f"{state.reason} ({state.hint})")
    try:
        yield b
    finally:
        b.teardown()


def scenario(workload: dict[str, Any], **extra: Any) -> Scenario:
    return parse_scenario(
        {"format_version": 1, "name": "pm", "workload": workload, "timeout": 120, **extra}
    )


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

    def run_then_wait() -> None:
        backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
        time.sleep(5)  # only reached if run() returned early: still let the timer fire

    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_then_wait()
    finally:
        timer.cancel()
        backend.teardown()  # what the runner does in its finally
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

"""The docker backend against the real dockerd: image, every workload, phases, cleanup.

Needs a reachable dockerd and debootstrap (the image is built from the shared rootfs when
missing). Without them these tests skip, or fail under ISOBENCH_REQUIRE_ENGINES=1.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bench import ownership
from bench.backends.base import Repetition
from bench.backends.docker.backend import DockerBackend
from bench.backends.docker.support import LABEL, OWNER_LABEL, RUN_LABEL
from bench.envbuild.image import ensure_image, image_exists
from bench.values import BackendError, RepetitionTimeout
from tests.integration.helpers import docker_scenario as scenario
from tests.integration.helpers import interrupt_with_sigint, prepared_variant, run_once, values

pytestmark = [pytest.mark.integration, pytest.mark.docker]


@pytest.fixture
def client(docker_client: docker.DockerClient) -> docker.DockerClient:
    return docker_client


@pytest.fixture
def image(docker_image: str) -> str:
    return docker_image


@pytest.fixture
def backend(image: str) -> Iterator[DockerBackend]:
    b = DockerBackend()
    assert b.availability().ok
    yield b
    b.teardown()


def leftovers(client: docker.DockerClient, run: str) -> list[str]:
    found = [
        c.name or ""
        for c in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"})
    ]
    found += [v.name or "" for v in client.volumes.list(filters={"label": f"{RUN_LABEL}={run}"})]
    return found


# -- image --------------------------------------------------------------------------------------


def test_ensure_image_is_idempotent_and_runs_the_probe(
    client: docker.DockerClient, image: str
) -> None:
    messages: list[str] = []
    start = time.perf_counter()
    assert ensure_image(log=messages.append) == image
    assert time.perf_counter() - start < 30  # reused, not re-imported
    assert any("up to date" in m for m in messages)
    assert image_exists(client, image)
    labels = client.images.get(image).labels
    assert labels["isobench.image.rootfs"] == image.rsplit(":", 1)[1]
    assert LABEL not in labels  # containers inherit image labels: must not look owned
    out = client.containers.run(image, remove=True, network_mode="none").decode()
    assert "ready_ns=" in out


# -- startup ------------------------------------------------------------------------------------


def test_startup_phases_present_and_ordered_and_kernel_is_the_hosts(
    backend: DockerBackend, tmp_path: Path
) -> None:
    sc = scenario({"kind": "startup"})
    api_variant, cli_variant = backend.variants(sc)
    assert cli_variant.label.endswith(",path=cli")
    outcome = run_once(backend, sc, api_variant, tmp_path)
    v = values(outcome)
    assert set(v) == {
        "startup.create",
        "startup.start",
        "startup.ready",
        "startup.exit",
        "startup.total",
        "startup.remove",
    }
    assert all(math.isfinite(x) and x > 0 for x in v.values())
    # Cumulative from t0: create returns, then start returns; the probe's first instruction
    # comes after create and before exit (it may precede the start call's return).
    assert v["startup.create"] < v["startup.start"] < v["startup.total"]
    assert v["startup.create"] < v["startup.ready"] < v["startup.total"]
    assert v["startup.total"] == pytest.approx(v["startup.start"] + v["startup.exit"])
    assert outcome.facts["kernel_inside"] == os.uname().release == outcome.facts["kernel_host"]
    assert "warning" not in outcome.facts

    cli = values(run_once(backend, sc, cli_variant, tmp_path))
    assert cli["startup.cli_run"] == cli["startup.total"]
    assert 0 < cli["startup.ready"] < cli["startup.total"]


# -- exec-based workloads ---------------------------------------------------------------------


def test_syscall_default_and_unconfined_seccomp(backend: DockerBackend, tmp_path: Path) -> None:
    sc = scenario(
        {"kind": "syscall", "null_calls": 20_000, "mixed_calls": 2_000},
        seccomp=["default", "unconfined"],
    )
    default, unconfined = backend.variants(sc)
    confined = run_once(backend, sc, default, tmp_path)
    free = run_once(backend, sc, unconfined, tmp_path)
    for outcome in (confined, free):
        v = values(outcome)
        assert v["syscall.null_rate"] > 0
        assert v["syscall.mixed_rate"] > 0
        assert outcome.facts["kernel_inside"] == os.uname().release
    assert confined.facts["seccomp_profile"] == "docker default profile"
    assert confined.facts["seccomp_mode"] == "2"  # filter
    assert free.facts["seccomp_profile"] == "unconfined"
    assert free.facts["seccomp_mode"] == "0"


def test_disk_on_overlay_and_on_a_volume(
    backend: DockerBackend, client: docker.DockerClient, tmp_path: Path
) -> None:
    sc = scenario({"kind": "disk", "file_size": "2MiB", "runtime": 0.2})
    variants = backend.variants(sc)
    assert [v.params["storage"] for v in variants] == ["overlay", "volume"]
    for variant in variants:
        outcome = run_once(backend, sc, variant, tmp_path)
        v = values(outcome)
        for metric in ("disk.seq_read", "disk.seq_write", "disk.rand_read_iops"):
            assert v[metric] > 0
        assert v["disk.fsync_latency"] > 0
        assert variant.params["storage"] in outcome.facts["storage"]
    run = backend._owner().run
    volumes = client.volumes.list(filters={"label": f"{RUN_LABEL}={run}"})
    assert len(volumes) == 1  # the scratch volume, removed by teardown
    backend.teardown()
    assert leftovers(client, run) == []


def test_command_with_time_parser(backend: DockerBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "command", "command": ["true"], "parser": "time"})
    (variant,) = backend.variants(sc)
    v = values(run_once(backend, sc, variant, tmp_path))
    assert v["command.max_rss"] > 0
    assert v["command.wall"] >= 0


def test_failing_command_is_a_backend_error(backend: DockerBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "command", "command": ["false"]})
    (variant,) = backend.variants(sc)
    with pytest.raises(BackendError, match="status 1"):
        run_once(backend, sc, variant, tmp_path)


# -- memory -------------------------------------------------------------------------------------


def test_memory_environment_is_probe_plus_shim(backend: DockerBackend, tmp_path: Path) -> None:
    alloc = 8 * 1024 * 1024
    sc = scenario({"kind": "memory", "alloc": alloc, "idle": 1.0})
    (variant,) = backend.variants(sc)
    outcome = run_once(backend, sc, variant, tmp_path)
    v = values(outcome)
    assert "memory.overhead" not in v  # the difference to native is the summary's
    assert v["memory.shim_pss"] > 0  # a containerd shim exists for every container
    assert v["memory.environment"] >= alloc + v["memory.shim_pss"]  # probe + shim
    assert v["memory.cgroup_usage"] >= alloc  # the touched pages are charged to the cgroup
    assert alloc <= v["memory.workload_peak"] < alloc + 16 * 1024 * 1024
    assert outcome.facts["shim_processes"].startswith("containerd-shim")
    assert len(outcome.facts["environment_pids"].split(",")) >= 2  # the probe and its shim


# -- timeouts, interrupts, orphans ---------------------------------------------------------


def test_hung_exec_is_killed_and_nothing_is_left(
    backend: DockerBackend, client: docker.DockerClient, tmp_path: Path
) -> None:
    sc = scenario({"kind": "command", "command": ["sleep", "60"]}, timeout=1.5)
    variant = prepared_variant(backend, sc)
    start = time.perf_counter()
    with pytest.raises(RepetitionTimeout):
        backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    assert time.perf_counter() - start < 15
    # The next repetition gets a fresh container.
    sc_ok = scenario({"kind": "command", "command": ["true"]}, timeout=30)
    assert values(run_once(backend, sc_ok, variant, tmp_path))["command.wall"] >= 0
    run = backend._owner().run
    backend.teardown()
    assert leftovers(client, run) == []


def test_hung_memory_container_times_out(
    backend: DockerBackend, client: docker.DockerClient, tmp_path: Path
) -> None:
    sc = scenario({"kind": "memory", "alloc": "1MiB", "idle": 60}, timeout=2)
    (variant,) = backend.variants(sc)
    with pytest.raises(RepetitionTimeout):
        run_once(backend, sc, variant, tmp_path)
    run = backend._owner().run
    assert leftovers(client, run) == []  # killed and removed right away, not at teardown


def test_keyboard_interrupt_mid_run_leaves_zero_containers(
    backend: DockerBackend, client: docker.DockerClient, tmp_path: Path
) -> None:
    sc = scenario({"kind": "command", "command": ["sleep", "60"]}, timeout=60)
    variant = prepared_variant(backend, sc)
    run = backend._owner().run
    assert leftovers(client, run)  # the exec container exists
    # A real SIGINT, as Ctrl-C sends: it interrupts the blocking wait in the main thread.
    interrupt_with_sigint(
        lambda: backend.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path)),
        after=1.0,
        cleanup=backend.teardown,
    )
    assert leftovers(client, run) == []


def test_orphans_of_a_dead_run_are_removed_at_prepare_only(
    client: docker.DockerClient, image: str, tmp_path: Path
) -> None:
    here = ownership.scope()
    # This host, this pid, another start time: the pid was reused, the owner is dead.
    dead_owner = ownership.Owner(here.host, here.boot, here.pidns, os.getpid(), "1").token
    labels = {LABEL: "1", OWNER_LABEL: dead_owner, RUN_LABEL: "deadbeef"}
    container = client.containers.create(
        image, ["sleep", "infinity"], labels=labels, network_mode="none"
    )
    volume = client.volumes.create(labels=labels)
    try:
        fresh = DockerBackend()
        try:
            assert fresh.availability().ok
            assert len(leftovers(client, "deadbeef")) == 2  # probing deletes nothing
            sc = scenario({"kind": "command", "command": ["true"]})
            (variant,) = fresh.variants(sc)
            fresh.prepare(sc, variant)  # the start of a run that uses docker
            assert leftovers(client, "deadbeef") == []
            assert any(container.name in note for note in fresh.notes())
        finally:
            fresh.teardown()
    finally:
        for obj in (container, volume):
            with contextlib.suppress(docker.errors.NotFound):
                obj.remove(force=True)


def test_crun_variant_when_it_works(backend: DockerBackend, tmp_path: Path) -> None:
    sc = scenario({"kind": "startup"}, runtimes=["runc", "crun"])
    crun = [v for v in backend.variants(sc) if v.params["runtime"] == "crun"]
    if not crun:
        pytest.skip("crun is not registered with dockerd (scripts/provision-docker.sh does it)")
    outcome = run_once(backend, sc, crun[0], tmp_path)
    assert outcome.facts["runtime"] == "crun"
    assert values(outcome)["startup.ready"] > 0


def test_environment_describes_the_engine(backend: DockerBackend, image: str) -> None:
    env = backend.environment()
    for key in (
        "engine_version",
        "api_version",
        "storage_driver",
        "cgroup_driver",
        "cgroup_version",
        "runtimes",
        "default_runtime",
        "seccomp_supported",
        "image_id",
    ):
        assert env[key] not in (None, "", []), key
    assert env["image"] == image
    assert env["host_kernel"] == os.uname().release
    assert "runc" in env["runtimes"]

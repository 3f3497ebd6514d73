"""Docker backend logic that needs no engine: variants, settings, ownership, exec timeout.

A tiny fake client stands in for the SDK here; everything that talks to dockerd for real
is in tests/integration/test_docker_backend.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench import ownership
from bench.backends.docker import cgroupmem
from bench.backends.docker import support as docker_support
from bench.backends.docker.backend import DockerBackend
from bench.backends.docker.cgroupmem import CgroupMemory
from bench.backends.docker.measure import Cli, Spec, cli_argv
from bench.backends.docker.support import (
    LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    ContainerExecutor,
    Ownership,
    host_config_kwargs,
    leftovers,
)
from bench.envbuild.image import unreachable_reason
from bench.scenario.model import Limits, parse_scenario
from bench.values import RepetitionTimeout


def scenario(workload: dict[str, Any], **docker: Any) -> Any:
    data: dict[str, Any] = {"format_version": 1, "name": "t", "workload": workload}
    if docker:
        data["docker"] = docker
    return parse_scenario(data)


class InfoOnly:
    """Just enough client for variants(): info() with the engine's runtimes."""

    def __init__(self, runtimes: list[str]) -> None:
        self.runtimes = runtimes

    def info(self) -> dict[str, Any]:
        return {"Runtimes": {name: {} for name in self.runtimes}}


def backend_with(runtimes: list[str]) -> DockerBackend:
    backend = DockerBackend()
    backend._client = InfoOnly(runtimes)  # type: ignore[assignment]
    return backend


# -- variants --------------------------------------------------------------------------------


def test_variants_are_the_product_of_runtime_network_seccomp() -> None:
    backend = backend_with(["runc", "crun"])
    sc = scenario(
        {"kind": "syscall"},
        runtimes=["runc", "crun"],
        network=["none", "bridge"],
        seccomp=["default", "unconfined"],
    )
    labels = [v.label for v in backend.variants(sc)]
    assert len(labels) == 8
    assert labels[0] == "runtime=runc,network=none,seccomp=default"
    assert "runtime=crun,network=bridge,seccomp=unconfined" in labels
    assert not any("storage" in label or "path" in label for label in labels)


def test_disk_variants_add_storage_and_startup_adds_the_cli_path() -> None:
    backend = backend_with(["runc"])
    disk = [v.label for v in backend.variants(scenario({"kind": "disk"}))]
    assert disk == [
        "runtime=runc,network=none,seccomp=default,storage=overlay",
        "runtime=runc,network=none,seccomp=default,storage=volume",
    ]
    startup = backend.variants(scenario({"kind": "startup"}))
    assert [v.label for v in startup] == [
        "runtime=runc,network=none,seccomp=default",
        "runtime=runc,network=none,seccomp=default,path=cli",
    ]
    assert startup[1].params["path"] == "cli"


def test_missing_runtime_is_skipped_with_a_note() -> None:
    backend = backend_with(["runc"])
    variants = backend.variants(scenario({"kind": "syscall"}, runtimes=["runc", "runsc"]))
    assert [v.params["runtime"] for v in variants] == ["runc"]
    assert any("'runsc' is not registered" in note for note in backend.notes())


# -- container settings -----------------------------------------------------------------------


def test_host_config_defaults_are_unprivileged_no_network_no_mounts() -> None:
    kwargs = host_config_kwargs({"runtime": "runc", "seccomp": "default"}, Limits())
    assert kwargs["network_mode"] == "none"
    assert kwargs["privileged"] is False
    assert "security_opt" not in kwargs
    assert "binds" not in kwargs
    assert "nano_cpus" not in kwargs
    assert "mem_limit" not in kwargs


def test_host_config_applies_variant_and_limits() -> None:
    limits = Limits(cpus=1.5, memory=256 * 1024 * 1024)
    params = {"runtime": "crun", "network": "bridge", "seccomp": "unconfined"}
    kwargs = host_config_kwargs(params, limits, volume="vol1")
    assert kwargs["runtime"] == "crun"
    assert kwargs["network_mode"] == "bridge"
    assert kwargs["security_opt"] == ["seccomp=unconfined"]
    assert kwargs["nano_cpus"] == 1_500_000_000
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 256 * 1024 * 1024
    assert kwargs["binds"] == {"vol1": {"bind": "/mnt/isobench", "mode": "rw"}}


def test_cli_argv_mirrors_the_api_settings() -> None:
    params = {"runtime": "crun", "network": "none", "seccomp": "unconfined"}
    hc = host_config_kwargs(params, Limits(cpus=0.5, memory=64 * 1024 * 1024))
    argv = cli_argv(Cli(("docker",)), Spec("img:tag", {"isobench": "1"}, "n1", hc))
    assert argv[:5] == ["docker", "run", "--rm", "--name", "n1"]
    joined = " ".join(argv)
    for part in (
        "--label isobench=1",
        "--network none",
        "--runtime crun",
        "--security-opt seccomp=unconfined",
        "--cpus 0.5",
        "--memory 67108864",
        "img:tag /opt/isobench/bin/isobench-probe ready",
    ):
        assert part in joined


# -- ownership and orphans -------------------------------------------------------------------


def test_ownership_labels_and_names_are_unique() -> None:
    owner = Ownership()
    labels = owner.labels("runtime=runc")
    assert labels[LABEL] == "1"
    assert labels[RUN_LABEL] == owner.run
    assert labels["isobench.variant"] == "runtime=runc"
    assert owner.name("exec") != owner.name("exec")


class FakeObject:
    def __init__(self, name: str, labels: dict[str, str], removed: list[str]) -> None:
        self.name = self.id = self.short_id = name
        self.labels = labels
        self.attrs = {"Labels": labels, "Names": [f"/{name}"]}
        self._removed = removed

    def remove(self, **_: Any) -> None:
        self._removed.append(self.name)


class FakeCollection:
    def __init__(self, items: list[FakeObject]) -> None:
        self.items = items

    def list(self, **_: Any) -> list[FakeObject]:
        return self.items


class FakeClient:
    def __init__(self, containers: list[FakeObject], volumes: list[FakeObject]) -> None:
        self.containers = FakeCollection(containers)
        self.volumes = FakeCollection(volumes)
        self.networks = FakeCollection([])


def test_cleanup_removes_only_this_hosts_dead_owners() -> None:
    removed: list[str] = []
    here = ownership.scope()
    alive = {LABEL: "1", OWNER_LABEL: ownership.current().token}
    dead_owner = ownership.Owner(here.host, here.boot, here.pidns, os.getpid(), "1")
    dead = {LABEL: "1", OWNER_LABEL: dead_owner.token}  # our pid, another start: reused
    issue = {LABEL: "1", OWNER_LABEL: "1:1.00"}  # issue 14's foreign container
    other_host = {LABEL: "1", OWNER_LABEL: dead_owner.token.replace(here.host, "f" * 16)}
    client = FakeClient(
        [
            FakeObject("live", alive, removed),
            FakeObject("orphan", dead, removed),
            FakeObject("issue", issue, removed),
            FakeObject("remote", other_host, removed),
        ],
        [
            FakeObject("live-vol", alive, removed),
            FakeObject("orphan-vol", dead, removed),
            FakeObject("bare-vol", {LABEL: "1"}, removed),
        ],
    )
    result = ownership.sweep(leftovers(client))  # type: ignore[arg-type]
    assert removed == ["orphan", "orphan-vol"]
    assert [r.split(" (")[0] for r in result.removed] == [
        "docker container orphan",
        "docker volume orphan-vol",
    ]
    assert [r.split(" (")[0] for r in result.listed] == [
        "docker container issue",
        "docker container remote",
        "docker volume bare-vol",
    ]


# -- exec timeout ------------------------------------------------------------------------------


class HangingApi:
    """exec_start blocks until the container is removed, like a hung process would."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.removed: list[str] = []

    def exec_create(self, container: str, argv: list[str], **_: Any) -> dict[str, str]:
        return {"Id": "exec1"}

    def exec_start(self, exec_id: str, demux: bool) -> tuple[bytes, bytes]:
        self.released.wait(30)
        return (b"", b"")

    def remove_container(self, container: str, **_: Any) -> None:
        self.removed.append(container)
        self.released.set()


class HangingClient:
    def __init__(self) -> None:
        self.api = HangingApi()


def test_exec_past_timeout_kills_the_container_and_raises() -> None:
    client = HangingClient()
    executor = ContainerExecutor(client, "img", {}, "n", {})  # type: ignore[arg-type]
    executor.container_id = "c1"
    start = time.perf_counter()
    with pytest.raises(RepetitionTimeout, match=r"still running after 0\.2 s"):
        executor._exec(["sleep", "100"], 0.2)
    assert time.perf_counter() - start < 5
    assert client.api.removed == ["c1"]
    assert executor.container_id is None  # recreated lazily by the next call


# -- memory accounting and error texts ---------------------------------------------------------


def test_working_set_excludes_inactive_file_cache() -> None:
    mem = CgroupMemory(1, Path("/x"), usage=10_000, inactive_file=3_000, stat={})
    assert mem.working_set == 7_000
    assert CgroupMemory(2, Path("/x"), usage=1, inactive_file=5, stat={}).working_set == 0


def test_read_stat_parses_key_value_lines(tmp_path: Path) -> None:
    stat = tmp_path / "memory.stat"
    stat.write_text("cache 4096\nrss 8192\ntotal_inactive_file 4096\nbogus line here\n")
    assert cgroupmem._read_stat(stat) == {
        "cache": 4096,
        "rss": 8192,
        "total_inactive_file": 4096,
    }


def test_cgroup_memory_of_this_process_is_readable() -> None:
    # Reads the real /proc and /sys of the test host: works on cgroup v1 and v2.
    mem = cgroupmem.cgroup_memory(os.getpid())
    assert mem.version in {1, 2}
    assert mem.usage > 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))", "socket"),
        ("('Connection aborted.', PermissionError(13, 'Permission denied'))", "permission"),
        ("('Connection aborted.', ConnectionRefusedError(111, 'Connection refused'))", "refused"),
    ],
)
def test_unreachable_reasons_are_specific(
    monkeypatch: pytest.MonkeyPatch, error: str, expected: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    reason = unreachable_reason(Exception(error))
    assert "unix:///nonexistent/docker.sock" in reason
    assert expected in reason


def test_missing_socket_makes_the_backend_unavailable_with_the_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    address = f"unix://{tmp_path}/no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    availability = DockerBackend().availability()
    assert not availability.ok
    assert availability.reason.startswith(f"dockerd not reachable at {address}")
    assert "provision-docker" in availability.hint


def test_seccomp_profile_words() -> None:
    assert docker_support.seccomp_profile({"seccomp": "unconfined"}) == "unconfined"
    assert docker_support.seccomp_profile({"seccomp": "default"}) == "docker default profile"

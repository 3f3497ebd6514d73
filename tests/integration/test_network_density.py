"""network and density against real processes and the real dockerd, cleanup checked.

Native needs a C compiler (the static probe); Docker needs a reachable dockerd and the isobench
image. Without them these tests skip, or fail under ISOBENCH_REQUIRE_ENGINES=1. Only 127.0.0.1
is ever contacted.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import psutil
import pytest

from bench.backends.base import Repetition
from bench.backends.docker.backend import DockerBackend
from bench.backends.docker.support import OWNER_LABEL, RUN_LABEL
from bench.backends.native.backend import NativeBackend
from bench.values import Outcome
from bench.workloads import CONTRACT
from bench.workloads.network import cpu_pair
from tests.engines import skip_or_fail
from tests.integration.helpers import docker_scenario, values

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
#: A repetition timeout no one else uses: density's probes idle for it + 60 s ("idle 0 347"),
#: which is how the Ctrl-C case finds its own probes, on the host and in containers alike.
CTRL_C_TIMEOUT = 287
SMALL_NET = {"duration": 0.5, "requests": 500, "connections": 50}


scenario = functools.partial(docker_scenario, timeout=120)


def my_probes() -> list[psutil.Process]:
    """Live probe processes (netserver, netclient, idle) descended from this test process."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = proc.cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmdline and "isobench-probe" in cmdline[0] and proc.status() != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def idle_probes(timeout: int = CTRL_C_TIMEOUT) -> list[psutil.Process]:
    """Live ``probe idle 0 TIMEOUT+60`` of the Ctrl-C cases (host or container)."""
    idle = ["idle", "0", str(timeout + 60)]
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if (p.info["cmdline"] or [])[1:] == idle and p.status() != psutil.STATUS_ZOMBIE
    ]


def check_network(outcome: Outcome) -> None:
    got = values(outcome)
    assert set(got) == set(CONTRACT["network"])
    assert got["network.tcp_throughput"] > 1e6  # > 1 MB/s on any loopback path
    assert 0 < got["network.rr_latency_p50"] <= got["network.rr_latency_p99"] < 1.0
    assert 0 < got["network.connect_latency_p50"] <= got["network.connect_latency_p99"] < 1.0
    # The omitted warm-up (iperf3's -O) is sent and received, but not counted.
    assert 0 < int(outcome.facts["net_stream_bytes"]) < int(outcome.facts["net_stream_total_bytes"])
    assert outcome.facts["net_stream_iperf3"].startswith("iperf3 -c 127.0.0.1 -l 128K -t ")
    assert outcome.facts["net_stream_congestion"] not in ("", "unknown")  # the sender's
    assert "sockperf ping-pong --tcp -i 127.0.0.1" in outcome.facts["net_rr_sockperf"]


def check_density(outcome: Outcome, n: int) -> None:
    got = values(outcome)
    assert set(got) == set(CONTRACT["density"])
    assert 0 < got["density.startup_mean"] <= got["density.startup_max"]
    assert got["density.startup_max"] <= got["density.startup_all"] + 1e-9
    assert got["density.pss_per_instance"] > 0
    assert int(outcome.facts["processes"]) >= n


# -- native -----------------------------------------------------------------------------------


@pytest.fixture
def native() -> Iterator[NativeBackend]:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        skip_or_fail("no C compiler for the static probe")
    backend = NativeBackend()
    yield backend
    backend.teardown()


def test_native_network_and_its_server_is_gone_after_teardown(
    native: NativeBackend, tmp_path: Path
) -> None:
    sc = scenario({"kind": "network", **SMALL_NET})
    (variant,) = native.variants(sc)
    native.prepare(sc, variant)
    for index in range(2):  # the server is reused across repetitions
        outcome = native.run(Repetition(sc, variant, index, False, sc.timeout, tmp_path))
        check_network(outcome)
    pair = cpu_pair(os.sched_getaffinity(0))
    if pair is not None:  # client and server pinned apart, as iperf3 -A C,S by hand
        assert outcome.facts["net_client_cpu"] == str(pair[0])
        assert outcome.facts["net_server_cpu"] == str(pair[1])
        assert f" -A {pair[0]},{pair[1]}" in outcome.facts["net_stream_iperf3"]
    # The stream's sender used the host's default congestion control, and the by-hand
    # command names it.
    default = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    assert outcome.facts["net_stream_congestion"] == default
    assert outcome.facts["net_stream_iperf3"].endswith(f" -C {default}")
    assert len(my_probes()) == 1  # the server, idle between repetitions
    native.teardown()
    assert my_probes() == []


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_native_density_leaves_no_process(native: NativeBackend, tmp_path: Path, mode: str) -> None:
    sc = scenario({"kind": "density", "instances": [6], "start": [mode], "settle": 0.2})
    (variant,) = native.variants(sc)
    assert variant.label == f"instances=6,start={mode}"
    native.prepare(sc, variant)
    outcome = native.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    check_density(outcome, 6)
    assert my_probes() == []


# -- docker -----------------------------------------------------------------------------------


@pytest.fixture
def client(docker_client: docker.DockerClient, docker_image: str) -> docker.DockerClient:
    return docker_client  # with the isobench image present


@pytest.fixture
def dockerb(client: docker.DockerClient) -> Iterator[DockerBackend]:
    backend = DockerBackend()
    assert backend.availability().ok
    yield backend
    backend.teardown()


def labelled(client: docker.DockerClient, label: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": label}))


@pytest.mark.docker
def test_docker_network_variants_skip_a_host_client_without_network(
    dockerb: DockerBackend,
) -> None:
    sc = scenario({"kind": "network", "client": ["host", "inside"]}, network=["bridge", "none"])
    labels = [v.label for v in dockerb.variants(sc)]
    assert labels == [
        "runtime=runc,network=bridge,seccomp=default,client=host",
        "runtime=runc,network=bridge,seccomp=default,client=inside",
        "runtime=runc,network=none,seccomp=default,client=inside",
    ]
    assert any("network=none has no interface" in note for note in dockerb.notes())


@pytest.mark.docker
@pytest.mark.parametrize(
    ("network", "where"),
    [("bridge", "host"), ("host", "host"), ("none", "inside"), ("bridge", "inside")],
)
def test_docker_network_paths(
    dockerb: DockerBackend,
    client: docker.DockerClient,
    tmp_path: Path,
    network: str,
    where: str,
) -> None:
    sc = scenario({"kind": "network", "client": [where], **SMALL_NET}, network=[network])
    (variant,) = dockerb.variants(sc)
    dockerb.prepare(sc, variant)
    outcome = dockerb.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    check_network(outcome)
    assert "127.0.0.1" in outcome.facts["net_path"]
    if (network, where) == ("bridge", "host"):
        assert outcome.facts["net_proxy"]  # which process served the published port
    run = dockerb._owner().run
    assert labelled(client, f"{RUN_LABEL}={run}")
    dockerb.teardown()
    assert labelled(client, f"{RUN_LABEL}={run}") == []
    assert my_probes() == []  # the host client is gone too


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
@pytest.mark.docker
def test_docker_density_removes_every_container(
    dockerb: DockerBackend, client: docker.DockerClient, tmp_path: Path, mode: str
) -> None:
    sc = scenario({"kind": "density", "instances": [4], "start": [mode], "settle": 0.2})
    (variant,) = dockerb.variants(sc)
    assert variant.label.endswith(f"instances=4,start={mode}")
    dockerb.prepare(sc, variant)
    outcome = dockerb.run(Repetition(sc, variant, 0, False, sc.timeout, tmp_path))
    check_density(outcome, 4)
    # Each container costs at least its shim: far more than a native idle probe (< 1 MiB).
    assert values(outcome)["density.pss_per_instance"] > 1024 * 1024
    run = dockerb._owner().run
    assert labelled(client, f"{RUN_LABEL}={run}") == []  # removed by the repetition itself


def _harness_owned(client: docker.DockerClient, pid: int) -> list[Any]:
    # One list call (no inspect per container): containers come and go while this polls, and
    # the high-level list() would inspect one that was just removed (404).
    out = []
    for container in client.api.containers(all=True, filters={"label": OWNER_LABEL}):
        token = (container.get("Labels") or {}).get(OWNER_LABEL, "")
        if token.split(":")[4:5] == [str(pid)]:
            out.append(container)
    return out


@pytest.mark.docker
def test_ctrl_c_during_docker_and_native_density_leaves_nothing(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    path = tmp_path / "dens.yaml"
    workload = {"kind": "density", "instances": [12], "start": ["sequential"], "settle": 30}
    path.write_text(
        json.dumps(
            {
                "format_version": 1,
                "name": "dens-ctrl-c",
                "workload": workload,
                "backends": ["native", "docker"],
                "repeat": 3,
                "warmup": 0,
                "timeout": CTRL_C_TIMEOUT,
            }
        )
    )
    harness = start_harness(path, tmp_path, "-b", "docker", "-b", "native", "--seed", "7")
    # Interrupt while a dozen containers idle (settle: 30 s).
    interrupt_when(harness, lambda: len(_harness_owned(client, harness.pid)) >= 12)
    assert _harness_owned(client, harness.pid) == []
    assert idle_probes() == []


def start_harness(path: Path, tmp_path: Path, *options: str) -> subprocess.Popen[bytes]:
    """``isobench run PATH --plain OPTIONS`` in the background, results under ``tmp_path``."""
    argv = [sys.executable, "-m", "bench", "run", str(path), "-o", str(tmp_path / "out")]
    return subprocess.Popen(
        [*argv, "--plain", *options],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def interrupt_when(harness: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    """SIGINT the harness once ``ready()`` (within 180 s); it must exit non-zero."""
    try:
        deadline = time.monotonic() + 180
        while not ready():
            assert harness.poll() is None, "the harness ended before starting the instances"
            assert time.monotonic() < deadline, "the instances never all started"
            time.sleep(0.2)
        harness.send_signal(signal.SIGINT)
        assert harness.wait(120) != 0
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()


def interrupt_density_run(
    tmp_path: Path, backend: str, count: int, options: dict[str, Any]
) -> list[psutil.Process]:
    """``isobench run -b BACKEND`` of density, SIGINT while ``count`` instances idle.

    Returns the idle probes still alive afterwards (found by their unusual idle time, on the
    host and in containers alike): none may be.
    """
    path = tmp_path / "dens.yaml"
    workload = {"kind": "density", "instances": [count], "start": ["concurrent"], "settle": 30}
    data = {"format_version": 1, "name": "dens-ctrl-c", "workload": workload, **options}
    # A timeout (so an idle time) of this test process's own: others may run these tests now.
    timeout = 400 + os.getpid() % 5000
    path.write_text(json.dumps({**data, "repeat": 2, "warmup": 0, "timeout": timeout}))
    harness = start_harness(path, tmp_path, "-b", backend, "--seed", "3")
    interrupt_when(harness, lambda: len(idle_probes(timeout)) >= count)
    return idle_probes(timeout)

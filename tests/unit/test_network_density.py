"""network and density: model, parsers, the density driver (its cleanup), native baselines."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import pydantic
import pytest

from bench import stats
from bench.backends.docker.netdensity import client_applies, published_port, server_settings
from bench.metrics import compared_by_difference, lookup
from bench.scenario.model import DensityWorkload, NetworkWorkload, parse_scenario
from bench.values import BackendError
from bench.workloads import CONTRACT
from bench.workloads.density import Started, density_measurements, ksm_facts, run_density
from bench.workloads.hostmem import parse_meminfo
from bench.workloads.network import (
    LOOPBACK,
    client_argv,
    cpu_pair,
    iperf3_equivalent,
    parse_client,
    parse_server_port,
    server_argv,
    server_facts,
    sockperf_equivalent,
)

# What `probe netclient` printed on the development machine (trimmed to what is parsed).
CLIENT_OUTPUT = """server=127.0.0.1:46275
client_cpu=0
kernel=6.1.0-test
rr_count=5000
rr_p50=0.000014460
rr_p99=0.000027482
rr_mean=0.000014871
rr_min=0.000013312
rr_max=0.000062538
connect_count=200
connect_p50=0.000052610
connect_p99=0.000085498
connect_mean=0.000055663
connect_min=0.000046909
connect_max=0.000144608
stream_bytes=2909929472
stream_seconds=2.002101102
stream_rate=1453437825.439
stream_buffer=131072
stream_omit=1.000
stream_total_bytes=4366272512
stream_sender_seconds=3.002871230
stream_congestion=bbr
"""


def scenario(workload: dict[str, Any]) -> Any:
    return parse_scenario({"format_version": 1, "name": "x", "workload": workload})


def test_network_defaults_and_bounds() -> None:
    workload = scenario({"kind": "network"}).workload
    assert isinstance(workload, NetworkWorkload)
    assert workload.client == ("host",)
    assert (workload.duration, workload.buffer, workload.requests) == (2.0, 131072, 5000)
    assert workload.omit == 1.0  # iperf3's -O: the warm-up the receiver does not count
    for bad in (
        {"client": ["host", "host"]},
        {"client": ["guest"]},
        {"requests": 0},
        {"requests": 2_000_000},
        {"message_size": "32MiB"},
        {"duration": 0},
        {"duration": "2"},
        {"omit": -1},
        {"omit": 61},
    ):
        with pytest.raises(pydantic.ValidationError):
            scenario({"kind": "network", **bad})


def test_density_instances_scalar_is_a_one_element_sweep() -> None:
    workload = scenario({"kind": "density", "instances": 8}).workload
    assert isinstance(workload, DensityWorkload)
    assert workload.instances == (8,)
    assert workload.start == ("sequential", "concurrent")
    for bad in ({"instances": [0]}, {"instances": [8, 8]}, {"instances": True}, {"start": []}):
        with pytest.raises(pydantic.ValidationError):
            scenario({"kind": "density", **bad})


def test_contract_metrics_are_catalogued_and_memory_is_compared_by_difference() -> None:
    for name in (*CONTRACT["network"], *CONTRACT["density"]):
        assert lookup(name) is not None, name
    catalogued = lookup("network.tcp_throughput")
    assert catalogued is not None
    assert catalogued.unit == "B/s"
    assert catalogued.higher_is_better
    assert compared_by_difference("density.pss_per_instance")
    assert not compared_by_difference("density.startup_mean")


def test_client_argv_talks_to_loopback_only() -> None:
    workload = scenario({"kind": "network", "message_size": "1KiB", "duration": 1.5}).workload
    assert isinstance(workload, NetworkWorkload)
    argv = client_argv("/p", 4242, workload)
    assert argv == [
        "/p", "netclient", LOOPBACK, "4242", "1.5", "131072", "5000", "1024", "200", "1"
    ]  # fmt: skip


def test_cpu_pair_pins_client_and_server_apart() -> None:
    assert cpu_pair({3, 1, 2}) == (1, 2)  # the two lowest allowed CPUs: client, server
    assert cpu_pair([5]) is None  # one CPU: nothing to separate, both unpinned
    assert cpu_pair([]) is None


def test_argv_carry_the_cpu_only_when_pinned() -> None:
    workload = scenario({"kind": "network"}).workload
    assert isinstance(workload, NetworkWorkload)
    assert client_argv("/p", 1, workload, cpu=0)[-2:] == ["1", "0"]  # after OMIT
    assert len(client_argv("/p", 1, workload)) == 10
    assert server_argv("/p", LOOPBACK, 0, 1) == ["/p", "netserver", LOOPBACK, "0", "1"]
    assert server_argv("/p", LOOPBACK, 0) == ["/p", "netserver", LOOPBACK, "0"]
    command, _, _ = server_settings("bridge", (0, 1))
    assert command[-3:] == ["0.0.0.0", "5201", "1"]


def test_by_hand_equivalents_pin_the_same_way() -> None:
    workload = scenario({"kind": "network"}).workload
    assert isinstance(workload, NetworkWorkload)
    assert iperf3_equivalent(workload, (0, 1)) == "iperf3 -c 127.0.0.1 -l 128K -t 2 -O 1 -A 0,1"
    rr = sockperf_equivalent(workload, (0, 1))
    assert rr.startswith("taskset -c 1 sockperf server --tcp -i 127.0.0.1 -p PORT; ")
    assert rr.endswith(
        "taskset -c 0 sockperf ping-pong --tcp -i 127.0.0.1 -p PORT -m 64 -t 2 --full-rtt"
    )
    assert "taskset" not in sockperf_equivalent(workload)


def test_server_facts_name_its_cpu() -> None:
    assert server_facts("server_cpu=1\nlistening=0.0.0.0\nport=5201\n") == {"net_server_cpu": "1"}
    assert server_facts("listening=0.0.0.0\nport=5201\n") == {}  # an older probe: no fact
    unpinned = "server_cpu=any (cannot pin to CPU 1: Invalid argument)\nport=5201\n"
    assert server_facts(unpinned)["net_server_cpu"].startswith("any (cannot pin")


def test_iperf3_equivalent_names_the_same_stream() -> None:
    workload = scenario({"kind": "network", "duration": 5, "omit": 0.5}).workload
    assert isinstance(workload, NetworkWorkload)
    assert iperf3_equivalent(workload) == "iperf3 -c 127.0.0.1 -l 128K -t 5 -O 0.5"
    odd = scenario({"kind": "network", "buffer": "1000B", "omit": 0}).workload
    assert isinstance(odd, NetworkWorkload)
    assert iperf3_equivalent(odd) == "iperf3 -c 127.0.0.1 -l 1000 -t 2 -O 0"
    # The sender's congestion control, when the probe saw it, is part of the command.
    assert iperf3_equivalent(workload, (0, 1), "bbr").endswith(" -A 0,1 -C bbr")
    assert " -C" not in iperf3_equivalent(workload, None, "unknown")


def test_parse_client_output() -> None:
    outcome = parse_client(CLIENT_OUTPUT)
    values = {m.metric: m.value for m in outcome.measurements}
    assert set(values) == set(CONTRACT["network"])
    assert values["network.tcp_throughput"] == pytest.approx(1453437825.439)
    assert values["network.rr_latency_p50"] == pytest.approx(14.46e-6)
    assert values["network.connect_latency_p99"] == pytest.approx(85.498e-6)
    assert outcome.facts["net_stream_bytes"] == "2909929472"
    assert outcome.facts["net_stream_total_bytes"] == "4366272512"  # omitted ones included
    assert outcome.facts["kernel_client"] == "6.1.0-test"
    assert outcome.facts["net_client_cpu"] == "0"
    assert outcome.facts["net_stream_congestion"] == "bbr"
    with pytest.raises(BackendError, match="unparseable network probe output"):
        parse_client(CLIENT_OUTPUT.replace("stream_rate=", "stream_rat="))


def test_parse_server_port() -> None:
    assert parse_server_port("listening=127.0.0.1\nport=5201\nkernel=x\n") == 5201
    for bad in ("listening=127.0.0.1\n", "port=0\n", "port=70000\n", "port=abc\n"):
        with pytest.raises(BackendError, match="printed no port"):
            parse_server_port(bad)


def test_docker_server_settings_publish_on_loopback_only() -> None:
    command, ports, extra = server_settings("bridge")
    assert command[-2:] == ["0.0.0.0", "5201"]
    assert ports == [5201]
    assert extra == {"port_bindings": {5201: ("127.0.0.1",)}}
    command, ports, extra = server_settings("host")
    assert (command[-2:], ports, extra) == (["127.0.0.1", "0"], [], {})
    command, _, _ = server_settings("none")
    assert command[-2:] == ["127.0.0.1", "5201"]
    assert not client_applies("none", "host")
    assert client_applies("none", "inside")
    assert client_applies("bridge", "host")


def test_published_port_needs_a_loopback_binding() -> None:
    info = {"NetworkSettings": {"Ports": {"5201/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49"}]}}}
    assert published_port(info) == 49
    wide = {"NetworkSettings": {"Ports": {"5201/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49"}]}}}
    with pytest.raises(BackendError, match=r"no port published on 127\.0\.0\.1"):
        published_port(wide)


def test_parse_meminfo_and_ksm_facts(tmp_path: Any) -> None:
    meminfo = parse_meminfo("MemTotal:  1000 kB\nMemAvailable: 500 kB\nHugePages_Total: 0\n")
    assert meminfo == {"MemTotal": 1024000, "MemAvailable": 512000, "HugePages_Total": 0}
    (tmp_path / "run").write_text("0\n")
    facts = ksm_facts(tmp_path)
    assert facts == {
        "ksm_run": "0",
        "ksm_pages_shared": "unavailable",
        "ksm_pages_sharing": "unavailable",
    }


def test_density_measurements_pure() -> None:
    started = [Started("a", 1_000, 3_000), Started("b", 2_000, 8_000)]
    values = {
        m.metric: m.value
        for m in density_measurements(2, started, 0.5, pss_total=4096, available_drop=10_000)
    }
    assert values == {
        "density.startup_mean": pytest.approx(4e-6),
        "density.startup_max": pytest.approx(6e-6),
        "density.startup_all": pytest.approx(7e-6),
        "density.teardown_all": 0.5,
        "density.pss_per_instance": 2048.0,
        "density.available_per_instance": 5000.0,
    }
    with pytest.raises(ValueError, match="expected 3 started instances"):
        density_measurements(3, started, 0.5, 1, 1)


class FakeInstances:
    """In-process instances: the test process stands for each one; records stops."""

    def __init__(self, fail_at: int | None = None, interrupt_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.interrupt_at = interrupt_at
        self.lock = threading.Lock()
        self.running: set[int] = set()
        self.stopped: list[int] = []

    def launch(self, index: int, idle: float) -> int:
        if index == self.fail_at:
            msg = f"instance {index} failed to start"
            raise BackendError(msg)
        with self.lock:
            self.running.add(index)
        return index

    def ready_ns(self, handle: int, deadline: float) -> int:
        if handle == self.interrupt_at:
            raise KeyboardInterrupt
        import time  # noqa: PLC0415

        return time.time_ns()

    def pids(self, handles: Sequence[int]) -> list[int]:
        return [os.getpid()]

    def stop(self, handle: int) -> None:
        with self.lock:
            self.running.discard(handle)
            self.stopped.append(handle)


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_run_density_measures_and_stops_every_instance(mode: str) -> None:
    fake = FakeInstances()
    outcome = run_density(fake, 5, mode, settle=0.0, timeout=30.0)
    assert {m.metric for m in outcome.measurements} == set(CONTRACT["density"])
    assert sorted(fake.stopped) == [0, 1, 2, 3, 4]
    assert not fake.running
    assert outcome.facts["density_instances"] == "5"
    assert outcome.facts["density_start"] == mode
    assert "ksm_run" in outcome.facts


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_run_density_stops_what_started_when_a_launch_fails(mode: str) -> None:
    fake = FakeInstances(fail_at=3)
    with pytest.raises(BackendError, match="instance 3 failed"):
        run_density(fake, 6, mode, settle=0.0, timeout=30.0)
    assert not fake.running
    assert fake.stopped  # the ones launched before (or beside) the failure


@pytest.mark.parametrize("mode", ["sequential", "concurrent"])
def test_run_density_stops_everything_on_ctrl_c(mode: str) -> None:
    fake = FakeInstances(interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_density(fake, 4, mode, settle=0.0, timeout=30.0)
    assert not fake.running
    assert len(fake.stopped) >= 3


def test_native_baseline_matches_the_variant_pairs() -> None:
    def key(variant: str) -> tuple[str, ...]:
        return ("h", "s", "native", variant, "m")

    density = [key("instances=1,start=sequential"), key("instances=8,start=sequential")]
    docker = "runtime=runc,network=none,seccomp=default,instances=8,start=sequential"
    assert stats.native_baseline(density, docker) == key("instances=8,start=sequential")
    assert stats.native_baseline([key("host")], docker) == key("host")
    assert stats.native_baseline([], docker) is None
    disk = [key("direct=off")]
    assert stats.native_baseline(disk, "runtime=runc,storage=volume,direct=off") == disk[0]

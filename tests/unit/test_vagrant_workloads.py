"""The VM side of network, density and command workloads: pure parts (no vagrant, no libvirt)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from bench.backends.vagrant import netdensity
from bench.backends.vagrant.accel import AccelInfo
from bench.backends.vagrant.backend import VagrantBackend
from bench.backends.vagrant.netdensity import (
    GIB,
    MEMORY_SHARE,
    MIB,
    VmInstances,
    density_cap,
    domain_address,
    parse_domifaddr,
    vm_budget,
    vms_that_fit,
)
from bench.scenario.model import NetworkWorkload, Scenario, parse_scenario
from bench.values import BackendError
from bench.workloads import GUEST_PROBE, ExecResult
from bench.workloads.network import client_argv
from bench.workloads.tools import guest_problems, parse_guest_check

DOMIFADDR = """\
 Name       MAC address          Protocol     Address
-------------------------------------------------------------------------------
 vnet3      52:54:00:8e:1a:07    ipv4         192.168.121.57/24
"""


def scenario(workload: dict[str, object], requires: Sequence[str] = ()) -> Scenario:
    return parse_scenario(
        {
            "format_version": 1,
            "name": "vm-unit",
            "workload": workload,
            "backends": ["vagrant"],
            "requires": list(requires),
        }
    )


def test_parse_domifaddr() -> None:
    assert parse_domifaddr(DOMIFADDR) == ["192.168.121.57"]
    assert parse_domifaddr("error: failed to get domain\n") == []


def test_domain_address_refuses_an_address_libvirt_does_not_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_run(argv: Sequence[str], timeout: float) -> object:
        assert list(argv[-4:]) == ["domifaddr", "isobench-1-ab_default", "--source", "lease"]
        return type("P", (), {"stdout": DOMIFADDR, "stderr": "", "returncode": 0})()

    monkeypatch.setattr(netdensity, "run_quiet", fake_run)
    assert domain_address("isobench-1-ab_default", "192.168.121.57") == "192.168.121.57"
    with pytest.raises(BackendError, match=r"refusing to connect to '10\.0\.0\.1'"):
        domain_address("isobench-1-ab_default", "10.0.0.1")


def test_density_pids_record_each_vms_qemu_and_refuse_a_missing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qemu = {"isobench-1-aa_default": 101, "isobench-1-bb_default": 202}
    monkeypatch.setattr(netdensity, "domain_qemu_pid", qemu.get)
    monkeypatch.setattr(netdensity, "process_tree", lambda pid: [pid])
    instances = VmInstances(None, 1.0, [])  # type: ignore[arg-type]  # spec unused here
    handles: Any = [SimpleNamespace(vm=SimpleNamespace(domain=d)) for d in sorted(qemu)]
    assert instances.pids(handles) == [101, 202]
    assert instances.facts() == {
        "density_qemu": "isobench-1-aa_default=101 isobench-1-bb_default=202"
    }
    gone: Any = [SimpleNamespace(vm=SimpleNamespace(domain="isobench-1-cc_default"))]
    with pytest.raises(BackendError, match="no QEMU process found for domain isobench-1-cc"):
        instances.pids(gone)


def test_client_argv_takes_the_vm_address() -> None:
    workload = scenario({"kind": "network"}).workload
    assert isinstance(workload, NetworkWorkload)
    argv = client_argv("probe", 5201, workload, "192.168.121.57")
    assert argv[2:4] == ["192.168.121.57", "5201"]


def test_density_cap_fits_and_refuses_with_the_count_that_fits() -> None:
    per_vm = vm_budget(1024 * MIB, "tcg")
    assert per_vm == 1536 * MIB
    available = 21 * GIB
    fit = vms_that_fit(per_vm, available)
    assert fit == int(available * MEMORY_SHARE) // per_vm == 11
    assert density_cap(fit, 1024 * MIB, "tcg", available) is None
    reason = density_cap(32, 1024 * MIB, "tcg", available)
    assert reason is not None
    assert reason.startswith("capped by host memory: 32 VMs need about 48.0 GiB")
    assert "holds at most 11" in reason
    assert "instances: [11]" in reason
    # Under KVM QEMU's own share is smaller, so more fit.
    assert vms_that_fit(vm_budget(1024 * MIB, "kvm"), available) > fit


def test_parse_guest_check() -> None:
    out = "missing-package sockperf\nmissing-program sockperf\nnoise\n"
    assert parse_guest_check(out) == (["sockperf"], ["sockperf"])


def test_guest_problems_name_the_package_and_the_command() -> None:
    calls: list[list[str]] = []

    def execute(argv: Sequence[str], timeout: float) -> ExecResult:
        calls.append(list(argv))
        return ExecResult(0, "missing-package stress-ng\nmissing-program stress-ng\n", "", 0.1)

    sc = scenario({"kind": "command", "command": ["stress-ng", "--version"]}, ["stress-ng"])
    problems = guest_problems(execute, sc, "the VM", 30)
    assert calls[0][:2] == ["sh", "-c"]
    assert calls[0][-2:] == ["package:stress-ng", "program:stress-ng"]
    assert problems[0].startswith("package stress-ng (requires) is not installed in the VM")
    assert "isobench env build" in problems[0]
    assert problems[1].startswith("program 'stress-ng' (run by the workload) is not found")


def test_guest_problems_runs_nothing_without_tools() -> None:
    def execute(argv: Sequence[str], timeout: float) -> ExecResult:
        raise AssertionError("nothing to check")

    assert guest_problems(execute, scenario({"kind": "syscall"}), "the VM", 30) == []


@pytest.fixture
def tcg_backend() -> VagrantBackend:
    backend = VagrantBackend()
    backend._accel = AccelInfo("tcg", "test", True, True, True)
    return backend


def test_network_and_density_variants_carry_the_accelerator(tcg_backend: VagrantBackend) -> None:
    network = tcg_backend.variants(scenario({"kind": "network", "client": ["host", "inside"]}))
    assert [v.label for v in network] == [
        "accel=tcg,cpus=2,memory=1024,network=libvirt-nat,client=host",
        "accel=tcg,cpus=2,memory=1024,network=libvirt-nat,client=inside",
    ]
    density = tcg_backend.variants(scenario({"kind": "density", "instances": [1, 32]}))
    assert [(v.params["instances"], v.params["start"]) for v in density] == [
        ("1", "sequential"),
        ("1", "concurrent"),
        ("32", "sequential"),
        ("32", "concurrent"),
    ]
    assert all(v.params["accel"] == "tcg" for v in density)


class _GuestVm:
    """A VM stand-in: records what the network side runs in it (no vagrant, no libvirt)."""

    def __init__(self, cpus: int, congestion: ExecResult | None = None) -> None:
        self.spec = SimpleNamespace(cpus=cpus)
        self.domain = "isobench-test_default"
        self.ssh_options = {"hostname": "192.168.121.57"}
        self.argvs: list[list[str]] = []
        self.congestion = congestion or ExecResult(0, "was=x\nnow=x\n", "", 0.1)

    def execute(
        self, argv: Sequence[str], timeout: float, prefix: Sequence[str] = ()
    ) -> ExecResult:
        self.argvs.append(list(argv))
        if any("tcp_congestion_control" in arg for arg in argv):
            return self.congestion
        if "netserver" in argv:
            return ExecResult(0, "server_cpu=1\nlistening=0.0.0.0\nport=5201\n", "", 0.1)
        return ExecResult(0, _CLIENT, "", 0.1)


_CLIENT = "\n".join(
    [
        "client_cpu=0",
        "rr_count=10",
        "rr_p50=0.000100000",
        "rr_p99=0.000200000",
        "rr_mean=0.000110000",
        "rr_min=0.000090000",
        "rr_max=0.000300000",
        "connect_count=2",
        "connect_p50=0.000200000",
        "connect_p99=0.000300000",
        "connect_mean=0.000210000",
        "connect_min=0.000190000",
        "connect_max=0.000300000",
        "stream_bytes=1000000",
        "stream_seconds=1.0",
        "stream_rate=1000000.0",
        "stream_buffer=131072",
        "stream_omit=1.000",
        "stream_total_bytes=2000000",
        "stream_sender_seconds=2.0",
    ]
)


@pytest.mark.parametrize(("cpus", "pinned"), [(2, True), (1, False)])
def test_vm_network_pins_inside_client_and_server_apart(
    monkeypatch: pytest.MonkeyPatch, cpus: int, pinned: bool
) -> None:
    """The placement rule of every backend, inside the guest: client vCPU 0, server vCPU 1."""
    monkeypatch.setattr(netdensity, "domain_address", lambda domain, hostname: hostname)
    vm = _GuestVm(cpus)
    network = netdensity.VmNetwork(vm, "/host/probe", [])  # type: ignore[arg-type]
    workload = scenario({"kind": "network", "duration": 1}).workload
    assert isinstance(workload, NetworkWorkload)
    outcome = network.run(workload, "inside", 30.0)
    server = next(argv for argv in vm.argvs if "netserver" in argv)
    client = vm.argvs[-1]
    unpinned_client = client_argv(GUEST_PROBE, 5201, workload, netdensity.net.LOOPBACK)
    port = str(netdensity.net.SERVER_PORT)
    assert server[-3:] == ["0.0.0.0", port, "1"] if pinned else server[-2:] == ["0.0.0.0", port]
    assert client == ([*unpinned_client, "0"] if pinned else unpinned_client)
    assert outcome.facts.get("net_server_cpu") == "1"  # what the stand-in server said
    assert ("-A 0,1" in outcome.facts["net_stream_iperf3"]) == pinned


@pytest.mark.parametrize(
    ("said", "fact"),
    [
        ("was=cubic\nnow=H\n", "H (set to the host's; the guest's was cubic)"),
        ("was=H\nnow=H\n", "H"),
        ("was=cubic\nnow=cubic\n", "cubic (the host's H could not be set: sudo: no password)"),
    ],
)
def test_vm_network_gives_the_guest_the_hosts_congestion_control(
    monkeypatch: pytest.MonkeyPatch, said: str, fact: str
) -> None:
    """The guest's default is set to the host's before the server starts; the fact says how."""
    monkeypatch.setattr(netdensity, "tcp_congestion_default", lambda: "H")
    monkeypatch.setattr(netdensity, "domain_address", lambda domain, hostname: hostname)
    vm = _GuestVm(2, ExecResult(0, said, "sudo: no password", 0.1))
    network = netdensity.VmNetwork(vm, "/host/probe", [])  # type: ignore[arg-type]
    workload = scenario({"kind": "network", "duration": 1}).workload
    assert isinstance(workload, NetworkWorkload)
    outcome = network.run(workload, "inside", 30.0)
    align = vm.argvs[0]
    assert align[-1] == "H"  # the host's algorithm, as the script's $1
    assert "netserver" in vm.argvs[1]  # set before the server starts
    assert outcome.facts["net_guest_congestion"] == fact

"""Docker network and density: the probe's server in a container, N idle containers.

Network paths, per ``docker.network`` variant (the container's main process is the server):

* ``bridge``: Docker's default bridge; the server's port is published on **127.0.0.1** only
  (a port Docker picks), so a host client goes 127.0.0.1 -> docker-proxy (the userland proxy,
  when dockerd runs with it, its default) -> the container's address on docker0: NAT + proxy;
* ``host``: ``--network host``; the server listens on host loopback (a free port it picks);
* ``none``: no interface but the container's own loopback: only ``client: inside`` applies.

``client: inside`` runs the client in the same container (docker exec) against its own
127.0.0.1. Nothing ever connects to an address other than 127.0.0.1.

Density instances are containers running ``probe idle 0 SECONDS``, labelled like every other
container of the run (removed by teardown and swept by the ownership rule when a harness was
killed); their host processes are the container's cgroup plus its shim, as for
``memory.environment``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import docker
import docker.errors
import psutil

from bench.backends.docker.cgroupmem import cgroup_memory, cgroup_pids
from bench.backends.docker.support import ContainerExecutor, Ownership
from bench.scenario.model import DensityWorkload, NetworkWorkload, Scenario
from bench.values import BackendError, Outcome, RepetitionTimeout, Variant
from bench.workloads import GUEST_PROBE, ExecResult, parse_keyvalues
from bench.workloads.hostmem import process_tree
from bench.workloads.network import (
    LOOPBACK,
    SERVER_PORT,
    CpuPair,
    host_execute,
    parse_server_port,
    run_client,
    server_argv,
    server_facts,
)

#: Seconds the server container may take to print its port.
SERVER_START: Final = 30.0
_POLL: Final = 0.005


def server_settings(
    network: str, cpus: CpuPair = None
) -> tuple[list[str], list[int], dict[str, Any]]:
    """(command, exposed ports, extra host-config) of the server container for ``network``.

    With ``cpus`` the server pins itself to ``cpus[1]`` (host CPU numbers: a container without
    a cpuset may use every host CPU; with one, the probe stays unpinned and says so).
    """
    cpu = None if cpus is None else cpus[1]
    if network == "bridge":
        # All of the container's own interfaces (its netns), reached only through the port
        # Docker publishes on host loopback.
        everywhere = "0.0.0.0"  # noqa: S104
        bind = {SERVER_PORT: (LOOPBACK,)}  # published on 127.0.0.1, Docker picks the port
        return (
            server_argv(GUEST_PROBE, everywhere, SERVER_PORT, cpu),
            [SERVER_PORT],
            {"port_bindings": bind},
        )
    if network == "host":  # host loopback: let the kernel pick a free port
        return server_argv(GUEST_PROBE, LOOPBACK, 0, cpu), [], {}
    return server_argv(GUEST_PROBE, LOOPBACK, SERVER_PORT, cpu), [], {}


def client_applies(network: str, client: str) -> bool:
    """Whether a host client can reach a server on ``network`` (none: inside only)."""
    return not (network == "none" and client == "host")


def sweep_variants(scenario: Scenario, base: dict[str, str], notes: list[str]) -> list[Variant]:
    """Network: ``base`` x client (a host client needs a network); density: x instances x start.

    A skipped combination is explained once in ``notes``.
    """
    workload = scenario.workload
    if isinstance(workload, DensityWorkload):
        return [
            Variant.of(**base, instances=str(n), start=mode)
            for n in workload.instances
            for mode in workload.start
        ]
    assert isinstance(workload, NetworkWorkload)
    out = []
    for where in workload.client:
        if client_applies(base["network"], where):
            out.append(Variant.of(**base, client=where))
            continue
        note = (
            f"{scenario.name}: network={base['network']} has no interface a host client "
            "can reach; its client=host variant is not measured (client=inside is)"
        )
        if note not in notes:
            notes.append(note)
    return out


def _logs(client: docker.DockerClient, container: str) -> str:
    return client.api.logs(container, stdout=True, stderr=True).decode(errors="replace")


def await_line(client: docker.DockerClient, container: str, marker: str, deadline: float) -> str:
    """Poll a container's output until ``marker`` appears (monotonic ``deadline``)."""
    while True:
        text = _logs(client, container)
        if marker in text and text.endswith("\n"):
            return text
        state = client.api.inspect_container(container)["State"]
        if not state["Running"]:
            msg = f"container exited (status {state['ExitCode']}) before printing {marker!r}: "
            raise BackendError(msg + repr(text[-300:]))
        if time.monotonic() > deadline:
            msg = f"container printed no {marker!r} before the timeout: {text[-300:]!r}"
            raise RepetitionTimeout(msg)
        time.sleep(_POLL)


def published_port(info: Mapping[str, Any]) -> int:
    """The host port (on 127.0.0.1) Docker published for the server's port."""
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in ports.get(f"{SERVER_PORT}/tcp") or []:
        if binding.get("HostIp") == LOOPBACK and str(binding.get("HostPort", "")).isdigit():
            return int(binding["HostPort"])
    msg = f"no port published on {LOOPBACK} for {SERVER_PORT}/tcp: {ports!r}"
    raise BackendError(msg)


def proxy_fact(port: int) -> str:
    """Which process serves host port ``port``: docker-proxy (userland proxy) or none."""
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if (proc.info["name"] or "").startswith("docker-proxy") and str(port) in cmdline:
            return f"docker-proxy (userland proxy, pid {proc.info['pid']})"
    return "none found (kernel NAT only)"


class DockerNetwork:
    """The server container of one (scenario, variant) and the clients that talk to it."""

    def __init__(
        self, executor: ContainerExecutor, network: str, host_probe: str, cpus: CpuPair = None
    ) -> None:
        self.executor = executor
        self.network = network
        self.host_probe = host_probe
        self.cpus = cpus  # (client, server), as given to server_settings
        self._ports: tuple[str, int, int] | None = None  # container id, host port, inside
        self._server_facts: dict[str, str] = {}

    def _endpoints(self) -> tuple[int, int]:
        container = self.executor.ensure()
        if self._ports is not None and self._ports[0] == container:
            return self._ports[1], self._ports[2]
        client = self.executor.client
        head = await_line(client, container, "port=", time.monotonic() + SERVER_START)
        inside = parse_server_port(head)
        self._server_facts = server_facts(head)
        host = inside
        if self.network == "bridge":
            host = published_port(client.api.inspect_container(container))
        self._ports = (container, host, inside)
        return host, inside

    def run(self, workload: NetworkWorkload, where: str, timeout: float) -> Outcome:
        """One client run from the host or from inside the container."""
        deadline = time.monotonic() + timeout
        host_port, inside_port = self._endpoints()

        def inside(argv: Sequence[str], limit: float) -> ExecResult:
            return self.executor(argv, max(0.1, min(limit, deadline - time.monotonic())))

        if where == "inside":
            outcome = run_client(
                inside, GUEST_PROBE, inside_port, workload, timeout, cpus=self.cpus
            )
            path = f"container loopback {LOOPBACK}:{inside_port} ({self.network} network)"
            facts = {"net_path": path}
        else:
            left = max(0.1, deadline - time.monotonic())
            outcome = run_client(
                host_execute, self.host_probe, host_port, workload, left, cpus=self.cpus
            )
            facts = {"net_path": f"host {LOOPBACK}:{host_port} -> container ({self.network})"}
            if self.network == "bridge":
                facts["net_proxy"] = proxy_fact(host_port)
        return Outcome(outcome.measurements, {**outcome.facts, **self._server_facts, **facts})


class DockerInstances:
    """Density instances: containers running ``probe idle 0 SECONDS``."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        owner: Ownership,
        variant: str,
        host_config: Mapping[str, Any],
    ) -> None:
        self.client = client
        self.image = image
        self.owner = owner
        self.variant = variant
        self.host_config = dict(host_config)
        self._lock = threading.Lock()

    def launch(self, index: int, idle: float) -> str:
        """Create and start one container; remove it if starting fails."""
        api = self.client.api
        with self._lock:  # names come from a counter
            name = self.owner.name(f"density-{index}")
        created = api.create_container(
            self.image,
            command=[GUEST_PROBE, "idle", "0", f"{idle:g}"],
            labels=self.owner.labels(self.variant),
            name=name,
            host_config=api.create_host_config(**self.host_config),
        )
        container = str(created["Id"])
        try:
            api.start(container)
        except BaseException:
            self.stop(container)
            raise
        return container

    def ready_ns(self, handle: str, deadline: float) -> int:
        """The probe's ready_ns, read from the container's output."""
        text = await_line(self.client, handle, "ready_ns=", deadline)
        try:
            return int(parse_keyvalues(text)["ready_ns"])
        except (KeyError, ValueError) as exc:
            msg = f"idle probe printed no ready_ns: {text[-200:]!r}"
            raise BackendError(msg) from exc

    def pids(self, handles: Sequence[str]) -> list[int]:
        """Every container's cgroup processes, plus each one's shim and its descendants."""
        shims: dict[str, list[int]] = {h: [] for h in handles}
        for proc in psutil.process_iter(["name", "cmdline"]):
            if not (proc.info["name"] or "").startswith(("containerd-shim", "runc", "crun")):
                continue
            args = " ".join(proc.info["cmdline"] or [])
            for handle in handles:
                if handle in args:
                    shims[handle] += process_tree(proc.pid)
        pids: list[int] = []
        for handle in handles:
            pid = int(self.client.api.inspect_container(handle)["State"]["Pid"])
            pids += cgroup_pids(cgroup_memory(pid)) + shims[handle]
        return list(dict.fromkeys(pids))

    def stop(self, handle: str) -> None:
        """Force-remove one container (SIGKILL, then remove)."""
        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(handle, force=True, v=True)

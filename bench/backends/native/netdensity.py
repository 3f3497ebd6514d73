"""Native network and density: the probe's server and idle instances as host processes.

Natively there is no isolation layer: the server listens on host loopback and the client
(the same probe, on the host) connects to it; ``client: inside`` is the same thing. Density's
instances are ``probe idle`` processes; their host processes are their process trees. Every
process is spawned through the backend's own spawn (its own process group, registered with
the reaper, born in the scenario's cgroup when limits are set), so a timeout, an error,
Ctrl-C or the harness's death ends them.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from bench.procgroup import kill_tree
from bench.scenario.model import NetworkWorkload
from bench.values import BackendError, Outcome
from bench.workloads import parse_keyvalues
from bench.workloads.hostmem import process_tree
from bench.workloads.network import (
    LOOPBACK,
    CpuPair,
    host_cpu_pair,
    host_execute,
    parse_server_port,
    run_client,
    server_argv,
    server_facts,
)

#: backend spawn: (argv, merge_stderr) -> the process
Spawn = Callable[[Sequence[str]], subprocess.Popen[bytes]]
#: read a process's stdout until a line with the marker (monotonic deadline) -> text
ReadUntil = Callable[[subprocess.Popen[bytes], bytes, float], str]
#: Seconds a server may take to print its port.
SERVER_START: Final = 10.0


class NativeNetwork:
    """The network server of one scenario on host loopback, started lazily, killed at teardown."""

    def __init__(self, spawn: Spawn, read_until: ReadUntil, probe: str) -> None:
        self._spawn = spawn
        self._read_until = read_until
        self._probe = probe
        #: (client, server) CPUs: the probes pin themselves, as iperf3 -A does by hand
        self._cpus: CpuPair = host_cpu_pair()
        self._server: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._server_facts: dict[str, str] = {}

    def _ensure(self) -> int:
        if self._server is not None and self._server.poll() is None:
            return self._port
        self.stop()
        cpu = None if self._cpus is None else self._cpus[1]
        proc = self._spawn(server_argv(self._probe, LOOPBACK, 0, cpu))
        self._server = proc
        head = self._read_until(proc, b"port=", time.monotonic() + SERVER_START)
        self._port = parse_server_port(head)
        self._server_facts = server_facts(head)
        return self._port

    def run(self, workload: NetworkWorkload, timeout: float) -> Outcome:
        """One client run against the server (host loopback)."""
        port = self._ensure()
        outcome = run_client(host_execute, self._probe, port, workload, timeout, cpus=self._cpus)
        facts = {
            **outcome.facts,
            **self._server_facts,
            "net_path": f"host loopback {LOOPBACK}:{port}",
        }
        return Outcome(outcome.measurements, facts)

    def stop(self) -> None:
        """Kill the server (idempotent)."""
        if self._server is not None:
            kill_tree(self._server, grace=0.5)
            self._server = None


class NativeInstances:
    """Density instances: ``probe idle 0 SECONDS`` processes (see :mod:`bench.workloads.density`).

    Launches are serialised by a lock: the backend's spawn moves the harness into the
    scenario's cgroup and back around each launch, which concurrent threads would race on.
    A launch (vfork + exec) takes about a millisecond; the children then start in parallel.
    """

    def __init__(self, spawn: Spawn, read_until: ReadUntil, probe: str) -> None:
        self._spawn = spawn
        self._read_until = read_until
        self._probe = probe
        self._lock = threading.Lock()

    def launch(self, index: int, idle: float) -> subprocess.Popen[bytes]:
        """Start one idle probe."""
        with self._lock:
            return self._spawn([self._probe, "idle", "0", f"{idle:g}"])

    def ready_ns(self, handle: subprocess.Popen[bytes], deadline: float) -> int:
        """The probe's ready_ns (it is killed when not ready by ``deadline``)."""
        text = self._read_until(handle, b"ready_ns=", deadline)
        try:
            return int(parse_keyvalues(text)["ready_ns"])
        except (KeyError, ValueError) as exc:
            msg = f"idle probe printed no ready_ns: {text[-200:]!r}"
            raise BackendError(msg) from exc

    def pids(self, handles: Sequence[subprocess.Popen[bytes]]) -> list[int]:
        """Each probe's process tree."""
        return [pid for handle in handles for pid in process_tree(handle.pid)]

    def stop(self, handle: subprocess.Popen[bytes]) -> None:
        """Kill and reap one probe."""
        kill_tree(handle, grace=0.5)

"""The ``network`` workload: TCP stream, request/response and connection set-up, one binary.

The static probe is both ends (``probe netserver`` / ``probe netclient``, see probe.c), so
native, container and VM run the very same code, as for syscalls. The server runs *in* the
environment; the client runs on the host (``client: host``) or in the environment too
(``client: inside``). One client invocation runs three tests, each on its own connection:

* request/response: ``requests`` round trips of ``message_size`` bytes each way (TCP_NODELAY),
  each timed with CLOCK_MONOTONIC: ``network.rr_latency_p50`` / ``_p99`` (nearest rank);
* connection set-up: ``connections`` times connect() plus a 1-byte request and its reply
  (the reply proves the server end exists: a userland proxy accepts before it connects on):
  ``network.connect_latency_p50`` / ``_p99``;
* stream: write ``buffer``-sized chunks for ``omit`` + ``duration`` seconds, half-close; the
  server reads in ``buffer``-sized chunks (as iperf3's server does), does not count what
  arrives in the first ``omit`` seconds after the first byte (the warm-up, iperf3's ``-O``),
  and reports what it read after that and over how long (its clock, up to EOF):
  ``network.tcp_throughput`` = those bytes / that time, in B/s: iperf3's "receiver" line of
  ``iperf3 -c 127.0.0.1 -l BUFFER -t DURATION -O OMIT`` (the fact ``net_stream_iperf3``).

Placement (:func:`cpu_pair`): with two or more CPUs the client is pinned to the first CPU
the harness may use and the server to the second (the probe pins itself: its CPU argument),
as ``iperf3 -A CLIENT,SERVER`` and ``taskset -c`` do by hand. Unpinned, the two ends land
sometimes on one CPU and sometimes on two, and the figures differ by 2x between those
placements (docs/native.md), so unpinned pairs of runs compare different things. The facts
``net_client_cpu`` / ``net_server_cpu`` say what the probe got, ``net_stream_iperf3`` and
``net_rr_sockperf`` the equivalent commands by hand.

Addresses are only ever 127.0.0.1 (host loopback, a published or forwarded loopback port,
or the environment's own loopback) or, for a VM, the address of the harness's own domain on
its libvirt NAT network (checked against ``virsh domifaddr`` first); the probe takes numeric
IPv4 addresses and resolves no names. Every loop is bounded by its count or duration, every
socket read/write by a 30 s timeout in the probe, and every process by the repetition's
timeout here.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Sequence
from typing import Final

from bench.procgroup import REAPER, kill_tree, release, spawn
from bench.scenario.model import NetworkWorkload
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import CONTRACT, ExecResult, Executor, parse_keyvalues

#: The only address a network client ever talks to.
LOOPBACK: Final = "127.0.0.1"
#: The server's port inside an environment with its own network namespace.
SERVER_PORT: Final = 5201
EMITS: Final = frozenset(CONTRACT["network"])
#: Probe output key -> metric name.
_METRICS: Final = (
    ("stream_rate", "network.tcp_throughput"),
    ("rr_p50", "network.rr_latency_p50"),
    ("rr_p99", "network.rr_latency_p99"),
    ("connect_p50", "network.connect_latency_p50"),
    ("connect_p99", "network.connect_latency_p99"),
)
#: Probe output keys kept as facts (so a figure can be checked against its raw counts).
_FACTS: Final = (
    "stream_bytes",
    "stream_seconds",
    "stream_omit",
    "stream_total_bytes",
    "stream_sender_seconds",
    "stream_congestion",
    "rr_count",
    "rr_mean",
    "rr_min",
    "rr_max",
    "connect_count",
    "connect_mean",
    "connect_max",
)


#: (client CPU, server CPU), or None: leave both where the scheduler puts them.
CpuPair = tuple[int, int] | None


def cpu_pair(allowed: Iterable[int]) -> CpuPair:
    """(client, server): the two lowest CPUs of ``allowed``; None with fewer than two."""
    cpus = sorted(set(allowed))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def host_cpu_pair() -> CpuPair:
    """:func:`cpu_pair` of the CPUs this process may run on (its affinity mask)."""
    return cpu_pair(os.sched_getaffinity(0))


def server_argv(probe: str, address: str, port: int, cpu: int | None = None) -> list[str]:
    """argv of the probe's TCP server (port 0: the kernel picks a free one; pinned to ``cpu``)."""
    return [probe, "netserver", address, str(port), *([] if cpu is None else [str(cpu)])]


def client_argv(
    probe: str,
    port: int,
    workload: NetworkWorkload,
    address: str = LOOPBACK,
    cpu: int | None = None,
) -> list[str]:
    """argv of one client run (rr, connect, stream) against ``address``:``port``."""
    return [
        probe,
        "netclient",
        address,
        str(port),
        f"{workload.duration:g}",
        str(int(workload.buffer)),
        str(workload.requests),
        str(int(workload.message_size)),
        str(workload.connections),
        f"{workload.omit:g}",
        *([] if cpu is None else [str(cpu)]),
    ]


def iperf3_equivalent(
    workload: NetworkWorkload, cpus: CpuPair = None, congestion: str | None = None
) -> str:
    """The iperf3 client whose "receiver" line is ``network.tcp_throughput`` (fact, docs).

    ``congestion``: the algorithm the probe's stream socket used (``-C``), so that the command
    reproduces the figure on a host whose default differs.
    """
    buffer = int(workload.buffer)
    size = f"{buffer // 1024}K" if buffer % 1024 == 0 else str(buffer)
    pin = "" if cpus is None else f" -A {cpus[0]},{cpus[1]}"
    algorithm = "" if congestion in (None, "", "unknown") else f" -C {congestion}"
    return (
        f"iperf3 -c {LOOPBACK} -l {size} -t {workload.duration:g} -O {workload.omit:g}"
        f"{pin}{algorithm}"
    )


def sockperf_equivalent(workload: NetworkWorkload, cpus: CpuPair = None) -> str:
    """The sockperf client whose "percentile 50.000" is ``network.rr_latency_p50`` (fact)."""
    client = "" if cpus is None else f"taskset -c {cpus[0]} "
    server = "" if cpus is None else f"taskset -c {cpus[1]} "
    return (
        f"{server}sockperf server --tcp -i {LOOPBACK} -p PORT; "
        f"{client}sockperf ping-pong --tcp -i {LOOPBACK} -p PORT "
        f"-m {int(workload.message_size)} -t 2 --full-rtt"
    )


def server_facts(text: str) -> dict[str, str]:
    """Facts from the server's first lines: the CPU it is pinned to (``any``: not pinned)."""
    cpu = parse_keyvalues(text).get("server_cpu")
    return {} if cpu is None else {"net_server_cpu": cpu}


def parse_server_port(text: str) -> int:
    """The port the server printed (``port=N``); BackendError when it printed none."""
    value = parse_keyvalues(text).get("port", "")
    if not value.isdigit() or not 0 < int(value) < 65536:
        msg = f"the network server printed no port: {text[-300:]!r}"
        raise BackendError(msg)
    return int(value)


def parse_client(stdout: str) -> Outcome:
    """Turn ``probe netclient`` output into samples (seconds and B/s) and facts."""
    kv = parse_keyvalues(stdout)
    try:
        measurements = [Measurement(metric, float(kv[key])) for key, metric in _METRICS]
    except (KeyError, ValueError) as exc:
        msg = f"unparseable network probe output: {stdout[-300:]!r}"
        raise BackendError(msg) from exc
    facts = {f"net_{key}": kv[key] for key in _FACTS if key in kv}
    if "kernel" in kv:
        facts["kernel_client"] = kv["kernel"]
    if "client_cpu" in kv:
        facts["net_client_cpu"] = kv["client_cpu"]
    return Outcome(measurements, facts)


def run_client(
    execute: Executor,
    probe: str,
    port: int,
    workload: NetworkWorkload,
    timeout: float,
    *,
    address: str = LOOPBACK,
    cpus: CpuPair = None,
) -> Outcome:
    """Run the client through ``execute`` (host or inside; on ``cpus[0]``) and parse it."""
    cpu = None if cpus is None else cpus[0]
    result = execute(client_argv(probe, port, workload, address, cpu), timeout)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-400:]
        msg = f"network client exited with status {result.returncode}: {tail}"
        raise BackendError(msg)
    outcome = parse_client(result.stdout)
    facts = {
        **outcome.facts,
        "net_stream_iperf3": iperf3_equivalent(
            workload, cpus, outcome.facts.get("net_stream_congestion")
        ),
        "net_rr_sockperf": sockperf_equivalent(workload, cpus),
    }
    return Outcome(outcome.measurements, facts)


def host_execute(argv: Sequence[str], timeout: float) -> ExecResult:
    """An :data:`Executor` on the host: its own process group, killed after ``timeout`` s."""
    REAPER.start()
    start = time.perf_counter()
    try:
        proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        msg = f"cannot run {argv[0]!r} on the host: {exc.strerror or exc}"
        raise BackendError(msg) from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        kill_tree(proc)
        msg = f"{argv[0]} {argv[1] if len(argv) > 1 else ''} still running after {timeout:g} s"
        raise RepetitionTimeout(msg.replace("  ", " ")) from exc
    except BaseException:  # Ctrl-C: never leave a client running
        kill_tree(proc)
        raise
    release(proc)
    return ExecResult(
        proc.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.perf_counter() - start,
    )

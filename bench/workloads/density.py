"""The ``density`` workload: N idle environments at once, what each costs the host.

One driver for every backend (:func:`run_density`); a backend only says how to launch one
idle environment (the probe's ``idle 0 SECONDS``), when it is ready, which host processes it
consists of and how to stop it (:class:`Instances`). Per repetition:

1. read the host's ``MemAvailable``;
2. launch N instances, ``sequential`` (each once the previous one is ready) or ``concurrent``
   (all at once, up to :data:`MAX_THREADS` launches in flight); an instance's start time is
   launch request -> the probe's first instruction (its CLOCK_REALTIME ``ready_ns``, the same
   clock as the launch time), as ``startup.ready``;
3. idle ``settle`` seconds, then sum PSS over every instance's host processes (one
   :func:`~bench.workloads.hostmem.environment_memory` call, the ``memory.environment``
   definition) and read ``MemAvailable`` again;
4. tear all down (in the same mode) and time it.

``density.pss_per_instance`` = total PSS / N and ``density.available_per_instance`` =
(MemAvailable before - after) / N, the two definitions of the issue (Kata's PSS per
container, gVisor's MemAvailable delta / N). MemAvailable is host-wide: anything else that
allocates or frees meanwhile moves it, so both raw readings are kept as facts, with KSM's
state (merged pages lower PSS and raise MemAvailable).

Cleanup is guaranteed: every launched instance is stopped in a ``finally`` (errors, timeouts,
Ctrl-C), and backends label or register what they start so a killed harness's leftovers are
swept by the ownership rule (:mod:`bench.ownership`) or the reaper (:mod:`bench.procgroup`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

from bench.scenario.model import DensityWorkload
from bench.values import BackendError, Measurement, Outcome, RepetitionTimeout
from bench.workloads import CONTRACT
from bench.workloads.hostmem import environment_memory, parse_meminfo

EMITS: Final = frozenset(CONTRACT["density"])
#: Most launches in flight at once in ``concurrent`` mode (and threads for teardown).
MAX_THREADS: Final = 32
KSM: Final = Path("/sys/kernel/mm/ksm")

H = TypeVar("H")


class Instances(Protocol[H]):
    """How a backend starts, watches and stops one idle environment (handle type ``H``)."""

    def launch(self, index: int, idle: float) -> H:
        """Start instance ``index`` idling ``idle`` s; clean up itself if it fails midway."""
        ...

    def ready_ns(self, handle: H, deadline: float) -> int:
        """Wait (until monotonic ``deadline``) for its ready line; its CLOCK_REALTIME ns."""
        ...

    def pids(self, handles: Sequence[H]) -> list[int]:
        """The host processes of these instances (see :mod:`bench.workloads.hostmem`)."""
        ...

    def stop(self, handle: H) -> None:
        """Stop and remove one instance (idempotent, never raises for a gone one)."""
        ...


@dataclass(frozen=True, slots=True)
class Started(Generic[H]):
    """One launched instance: its handle, the launch time and when it was ready (ns)."""

    handle: H
    launched_ns: int
    ready_ns: int = 0


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's MemAvailable in bytes."""
    return parse_meminfo(meminfo.read_text(encoding="ascii"))["MemAvailable"]


def ksm_facts(root: Path = KSM) -> dict[str, str]:
    """KSM's state (run, pages_shared, pages_sharing), or that it is not available."""
    facts: dict[str, str] = {}
    for name in ("run", "pages_shared", "pages_sharing"):
        try:
            facts[f"ksm_{name}"] = (root / name).read_text(encoding="ascii").strip()
        except OSError:
            facts[f"ksm_{name}"] = "unavailable"
    return facts


def density_measurements(
    n: int,
    started: Sequence[Started[Any]],
    teardown: float,
    pss_total: int,
    available_drop: int,
) -> list[Measurement]:
    """The density samples of one repetition (pure)."""
    if n < 1 or len(started) != n:
        msg = f"expected {n} started instances, got {len(started)}"
        raise ValueError(msg)
    starts = [(s.ready_ns - s.launched_ns) / 1e9 for s in started]
    first = min(s.launched_ns for s in started)
    last = max(s.ready_ns for s in started)
    return [
        Measurement("density.startup_mean", sum(starts) / n),
        Measurement("density.startup_max", max(starts)),
        Measurement("density.startup_all", (last - first) / 1e9),
        Measurement("density.teardown_all", teardown),
        Measurement("density.pss_per_instance", pss_total / n),
        Measurement("density.available_per_instance", available_drop / n),
    ]


def _left(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        msg = f"density: {what} did not finish within the repetition's timeout"
        raise RepetitionTimeout(msg)
    return left


def _parallel(jobs: Iterable[Callable[[], object]], threads: int) -> None:
    """Run ``jobs`` on up to ``threads`` threads; on any error or Ctrl-C cancel the rest."""
    pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="isobench-density")
    futures: list[Future[object]] = []
    try:
        futures = [pool.submit(job) for job in jobs]
        for future in futures:
            future.result()
    finally:
        # Launches not begun are dropped; those in flight finish (and register) first.
        pool.shutdown(wait=True, cancel_futures=True)


class _Launcher(Generic[H]):
    """Launches instances and keeps every handle, from any thread, for the final cleanup."""

    def __init__(self, instances: Instances[H], idle: float) -> None:
        self.instances = instances
        self.idle = idle
        self.lock = threading.Lock()
        self.launched: dict[int, Started[H]] = {}

    def launch(self, index: int) -> None:
        launched = time.time_ns()  # CLOCK_REALTIME: the clock the probe's ready_ns uses
        handle = self.instances.launch(index, self.idle)
        with self.lock:
            self.launched[index] = Started(handle, launched)

    def ready(self, index: int, deadline: float) -> None:
        entry = self.launched[index]
        ready = self.instances.ready_ns(entry.handle, deadline)
        if not entry.launched_ns <= ready <= time.time_ns():
            msg = "the realtime clock moved during the measurement (ready outside launch..now)"
            raise BackendError(msg)
        with self.lock:
            self.launched[index] = Started(entry.handle, entry.launched_ns, ready)

    def stop_all(self, threads: int) -> None:
        with self.lock:
            handles = [entry.handle for entry in self.launched.values()]
            self.launched.clear()
        _parallel([functools.partial(self.instances.stop, h) for h in handles], threads)


def run_density(
    instances: Instances[H], n: int, mode: str, settle: float, timeout: float
) -> Outcome:
    """One density repetition (see the module docstring); stops every instance it started."""
    deadline = time.monotonic() + timeout
    threads = min(n, MAX_THREADS) if mode == "concurrent" else 1
    launcher = _Launcher(instances, idle=timeout + 60.0)  # outlives the repetition; stopped
    before = mem_available()
    try:
        if mode == "sequential":
            for index in range(n):
                _left(deadline, "starting the instances")
                launcher.launch(index)
                launcher.ready(index, deadline)
        else:
            _parallel([functools.partial(launcher.launch, i) for i in range(n)], threads)
            for index in range(n):
                launcher.ready(index, deadline)
        time.sleep(min(settle, _left(deadline, "settling")))
        started = [launcher.launched[i] for i in range(n)]
        memory = environment_memory(instances.pids([s.handle for s in started]))
        after = mem_available()
        _left(deadline, "measuring")
        t0 = time.perf_counter()
        launcher.stop_all(threads)
        teardown = time.perf_counter() - t0
    finally:
        launcher.stop_all(max(1, min(n, MAX_THREADS)))  # errors, timeouts, Ctrl-C
    facts = {
        "density_instances": str(n),
        "density_start": mode,
        "mem_available_before": str(before),
        "mem_available_after": str(after),
        "pss_total": str(memory.pss),
        "processes": str(len(memory.pids)),
        **ksm_facts(),
    }
    if before - after < 0:
        facts["warning"] = (
            f"host MemAvailable rose by {after - before} B while {n} instances started: "
            "something else freed memory, density.available_per_instance is negative"
        )
    measurements = density_measurements(n, started, teardown, memory.pss, before - after)
    return Outcome(measurements, facts)


def run_variant(
    instances: Instances[H], workload: DensityWorkload, params: Mapping[str, str], timeout: float
) -> Outcome:
    """:func:`run_density` for a variant's ``instances`` and ``start`` parameters."""
    n, mode = int(params["instances"]), params["start"]
    return run_density(instances, n, mode, workload.settle, timeout)

"""The native backend: the workload runs as a plain child process of the harness.

This is the baseline every other backend is compared with. The workloads are the shared
ones from :mod:`bench.workloads`, run through a subprocess executor that kills the whole
process group on timeout (or Ctrl-C). See docs/native.md for exactly what each metric means
here and how it compares with perf, fio, hyperfine and /usr/bin/time.

Resource limits are applied the way Docker applies them, with a transient cgroup (CFS quota
for ``cpus``, ``memory.limit_in_bytes`` / ``memory.max`` for ``memory``) created as a child
of the harness's own cgroup (see :mod:`bench.backends.cgroup`). Where no cgroup can be
created the workload runs unlimited and that is recorded as a fact and a run warning, never
hidden.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Final

from bench.backends.base import Repetition
from bench.backends.cgroup import Cgroup, limits_text
from bench.backends.native.netdensity import NativeInstances, NativeNetwork
from bench.ownership import make_owned_dir, scratch_leftovers, sweep
from bench.paths import cache_dir
from bench.procgroup import REAPER, kill_tree, release, spawn, terminate_group
from bench.scenario.model import DensityWorkload, Limits, NetworkWorkload, Scenario
from bench.sysinfo import filesystem_facts, vm_hwm
from bench.values import (
    Availability,
    BackendError,
    BackendUnavailable,
    Measurement,
    Outcome,
    RepetitionTimeout,
    Variant,
)
from bench.workloads import (
    CommandWorkload,
    DiskWorkload,
    ExecResult,
    Executor,
    MemoryWorkload,
    StartupWorkload,
    SyscallWorkload,
    build_probe,
    disk_placement,
    disk_variant,
    parse_keyvalues,
    run_command,
    run_disk,
    run_syscall,
)
from bench.workloads.density import run_density
from bench.workloads.fio import check_engines
from bench.workloads.hostmem import environment_memory, process_tree
from bench.workloads.tools import host_problems

HOST: Final = Variant("host", {})
#: Docker's data root unless /etc/docker/daemon.json sets ``data-root``.
DOCKER_DATA_ROOT: Final = Path("/var/lib/docker")
#: Native's disk test directory (as root): beside /var/lib/docker and /var/lib/libvirt/images,
#: so on a default install every backend's test file is on the same host filesystem.
NATIVE_DISK_DIR: Final = Path("/var/lib/isobench/disk")


def disk_directory() -> Path:
    """``$ISOBENCH_DISK_DIR``, else /var/lib/isobench/disk as root, else the cache's disk/."""
    configured = os.environ.get("ISOBENCH_DISK_DIR")
    if configured:
        return Path(configured)
    return NATIVE_DISK_DIR if os.geteuid() == 0 else cache_dir() / "disk"


def docker_data_root(config: Path = Path("/etc/docker/daemon.json")) -> Path:
    """Docker's data root as configured for dockerd (its default when not set)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        configured = json.loads(config.read_text(encoding="utf-8")).get("data-root")
        if configured:
            return Path(str(configured))
    return DOCKER_DATA_ROOT


def native_placement(directory: Path) -> dict[str, str]:
    """Where the test file lived, and whether that is Docker's data-root filesystem."""
    facts = disk_placement(directory)
    root = docker_data_root()
    if root.is_dir():
        same = filesystem_facts(root)["fs_dev"] == facts["disk_host_fs_dev"]
        facts["disk_same_fs_as_docker_data_root"] = "yes" if same else "no"
        if not same:
            facts["warning"] = (
                f"native disk test file is on {facts['disk_host_fs_source']} "
                f"({facts['disk_host_fs_dev']}), not on the filesystem of Docker's data root "
                f"{root}: set ISOBENCH_DISK_DIR to a directory there to compare like with like"
            )
    return facts


#: Metric names this backend emits itself (the workloads module declares the rest).
EMITS: Final = frozenset(
    {"startup.ready", "startup.total", "memory.environment", "memory.workload_peak"}
)


class NativeBackend:
    """Runs workloads as child processes of the harness, on the host kernel."""

    name = "native"
    interleave = True

    def __init__(self) -> None:
        self._probe: Path | None = None
        self._cgroup: Cgroup | None = None
        self._limits_note = "none requested"
        self._counter = 0
        self._swept = False
        self._sweep_notes: list[str] = []
        self._network: NativeNetwork | None = None

    # -- Backend protocol -------------------------------------------------------------------

    def availability(self) -> Availability:
        """Native runs wherever the harness runs on Linux."""
        if not sys.platform.startswith("linux"):
            return Availability(False, f"unsupported platform {sys.platform}", "use Linux")
        return Availability(True)

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """One variant: the host itself (``direct=off`` for buffered disk I/O)."""
        workload = scenario.workload
        if isinstance(workload, DiskWorkload) and disk_variant(workload):
            return [Variant.of(**disk_variant(workload))]
        if isinstance(workload, DensityWorkload):
            return [
                Variant.of(instances=str(n), start=mode)
                for n in workload.instances
                for mode in workload.start
            ]
        return [HOST]

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Check the host has the workload's tools; build the probe, start the reaper; create
        a cgroup when limits are set; check the asynchronous ioengines of fio jobs."""
        problems = host_problems(scenario)
        if problems:  # skipped rows with the reason, not one failure per repetition
            raise BackendUnavailable("; ".join(problems))
        self._probe = build_probe(cache_dir())
        REAPER.start()  # workloads die with the harness; started here, outside any timing
        if not self._swept:  # disk test directories of killed runs (same rule as scratch)
            self._swept = True
            self._sweep_notes = sweep(
                scratch_leftovers(disk_directory(), "disk test directory")
            ).notes()
        self._remove_cgroup()
        limits = scenario.limits
        if limits.cpus is None and limits.memory is None:
            self._limits_note = "none requested"
        else:
            self._limit(limits)
        workload = scenario.workload
        if isinstance(workload, DiskWorkload) and workload.jobs:
            with self._storage_dir("check") as directory:
                execute = self._make_executor(scenario.timeout, directory)
                check_engines(execute, workload, str(directory), scenario.timeout)

    def _limit(self, limits: Limits) -> None:
        """A transient cgroup applying ``limits`` (noted, never hidden, when impossible)."""
        self._counter += 1
        tag = f"isobench-{os.getpid()}-{self._counter}"
        try:
            self._cgroup = Cgroup.create(limits, tag)
        except OSError as exc:
            self._limits_note = f"NOT applied (cannot create a cgroup: {exc.strerror or exc})"
        else:
            self._limits_note = f"{limits_text(limits)} via {self._cgroup.description}"

    def run(self, repetition: Repetition) -> Outcome:
        """Run one repetition of the scenario's workload."""
        if self._probe is None:
            msg = "native backend used before prepare()"
            raise BackendError(msg)
        workload = repetition.scenario.workload
        execute = self._executor(repetition)
        timeout = repetition.timeout
        if isinstance(workload, StartupWorkload):
            outcome = self._startup(timeout)
        elif isinstance(workload, SyscallWorkload):
            outcome = run_syscall(execute, str(self._probe), workload, timeout)
        elif isinstance(workload, DiskWorkload):
            outcome = self._disk(execute, workload, repetition)
        elif isinstance(workload, MemoryWorkload):
            outcome = self._memory(workload, timeout)
        elif isinstance(workload, CommandWorkload):
            outcome = self._command(workload, repetition)
        elif isinstance(workload, NetworkWorkload):
            outcome = self._network_server().run(workload, timeout)
        elif isinstance(workload, DensityWorkload):
            outcome = self._density(workload, repetition)
        else:  # pragma: no cover - the scenario model admits no other kind
            msg = f"unsupported workload {workload!r}"
            raise BackendError(msg)
        return self._with_facts(outcome, {"limits": self._limits_note})

    def teardown(self) -> None:
        """Stop the network server, remove the transient cgroup, if any."""
        if self._network is not None:
            self._network.stop()
            self._network = None
        self._remove_cgroup()

    def notes(self) -> list[str]:
        """Limits that could not be applied, for environment.json and the report."""
        notes = list(self._sweep_notes)
        if "NOT applied" in self._limits_note:
            notes.append(f"limits {self._limits_note}")
        return notes

    def environment(self) -> dict[str, Any]:
        """Kernel, probe and how limits are enforced."""
        return {
            "kind": "native",
            "kernel": platform.release(),
            "probe": str(self._probe) if self._probe else None,
            "limits_mechanism": "transient cgroup (child of the harness's own cgroup)",
        }

    # -- execution --------------------------------------------------------------------------

    def _spawn(
        self, argv: Sequence[str], *, cwd: Path | None = None, merge_stderr: bool = False
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Start ``argv``; also return CLOCK_REALTIME ns taken immediately before spawning."""
        command, fds = self._wrap(argv, cwd)
        try:
            with self._cgroup.attached() if self._cgroup else nullcontext():
                t0 = time.time_ns()
                # Its own process group (a timeout kills it all), watched by the reaper (it
                # dies with the harness, even a harness killed with SIGKILL).
                proc = spawn(
                    command,
                    pass_fds=fds,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                    cwd=cwd,
                )
        except OSError as exc:
            msg = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
            raise BackendError(msg) from exc
        return proc, t0

    def _wrap(self, argv: Sequence[str], cwd: Path | None) -> tuple[list[str], tuple[int, ...]]:
        """The command actually spawned and the fds it inherits (the sandbox wraps argv)."""
        return list(argv), ()

    @staticmethod
    def _communicate(
        proc: subprocess.Popen[bytes], timeout: float, what: str, budget: float
    ) -> tuple[str, str]:
        """Wait up to ``timeout`` s; on expiry kill and report the repetition's ``budget``.

        The timeout is enforced by a watchdog timer, not by ``communicate(timeout=...)``:
        with a timeout CPython reaps the child by polling ``waitpid(WNOHANG)`` with sleeps
        (0.5 ms, doubling), which added ~1.4 ms to every measured launch. Without one, the
        reap is a blocking ``waitpid`` that returns the moment the child exits.
        """
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            terminate_group(proc.pid, lambda: proc.poll() is not None)

        watchdog = threading.Timer(max(timeout, 0.001), expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            out, err = proc.communicate()
        except BaseException:  # Ctrl-C or the runner's watchdog: never leave it running
            watchdog.cancel()
            kill_tree(proc)
            raise
        watchdog.cancel()
        if expired.is_set():
            kill_tree(proc)  # members of the group that outlived the leader, then forget it
            msg = f"{what} did not finish within the {budget:g} s timeout (killed)"
            raise RepetitionTimeout(msg)
        release(proc)  # a late watchdog now signals nothing
        return out.decode(errors="replace"), (err or b"").decode(errors="replace")

    def _executor(self, repetition: Repetition) -> Executor:
        """An Executor sharing one deadline across every command of the repetition."""
        return self._make_executor(repetition.timeout, repetition.workdir)

    def _make_executor(self, budget: float, cwd: Path) -> Executor:
        """An Executor running in ``cwd`` whose calls together stop after ``budget`` s."""
        deadline = time.monotonic() + budget

        def execute(argv: Sequence[str], timeout: float) -> ExecResult:
            left = min(timeout, deadline - time.monotonic())
            if left <= 0:
                msg = f"repetition exceeded its {budget:g} s timeout"
                raise RepetitionTimeout(msg)
            start = time.perf_counter()
            proc, _ = self._spawn(argv, cwd=cwd)
            out, err = self._communicate(proc, left, Path(argv[0]).name, budget)
            return ExecResult(proc.returncode, out, err, time.perf_counter() - start)

        return execute

    # -- workloads --------------------------------------------------------------------------

    def _startup(self, timeout: float) -> Outcome:
        """ready = probe's first-instruction clock - t0; total = reaped - t0 (same clock)."""
        argv = [str(self._probe), "ready"]
        proc, t0 = self._spawn(argv)  # t0: CLOCK_REALTIME, the clock the probe reads
        out, err = self._communicate(proc, timeout, "probe ready", timeout)
        t_end = time.time_ns()
        if proc.returncode != 0:
            msg = f"probe ready exited with status {proc.returncode}: {err.strip()[-300:]}"
            raise BackendError(msg)
        kv = parse_keyvalues(out)
        try:
            ready_ns = int(kv["ready_ns"])
        except (KeyError, ValueError) as exc:
            msg = f"unparseable probe output: {out[-300:]!r}"
            raise BackendError(msg) from exc
        if not t0 <= ready_ns <= t_end:
            msg = "the realtime clock moved during the measurement (ready outside launch..exit)"
            raise BackendError(msg)
        return Outcome(
            [
                Measurement("startup.ready", (ready_ns - t0) / 1e9),
                Measurement("startup.total", (t_end - t0) / 1e9),
            ],
            {"kernel": kv.get("kernel", "")},
        )

    @contextlib.contextmanager
    def _storage_dir(self, tag: str) -> Iterator[Path]:
        """A private directory on the host filesystem the other backends write to."""
        directory = disk_directory() / f"native-{os.getpid()}-{tag}"
        shutil.rmtree(directory, ignore_errors=True)
        make_owned_dir(directory)  # a killed harness leaves it to the next run's sweep
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _disk(self, execute: Executor, workload: DiskWorkload, rep: Repetition) -> Outcome:
        """fio in the storage under test (the private directory of :meth:`_storage_dir`)."""
        with self._storage_dir(str(rep.index)) as directory:
            outcome = run_disk(execute, workload, str(directory), rep.timeout)
            facts = native_placement(directory)
        return self._with_facts(outcome, facts)

    def _command(self, workload: CommandWorkload, rep: Repetition) -> Outcome:
        """The command with the storage under test as its working directory (as in Docker)."""
        with self._storage_dir(str(rep.index)) as directory:
            execute = self._make_executor(rep.timeout, directory)
            outcome = run_command(execute, workload, rep.timeout)
            facts = {"workdir": str(directory), **native_placement(directory)}
        return self._with_facts(outcome, facts)

    def _memory(self, workload: MemoryWorkload, timeout: float) -> Outcome:
        """memory.environment: PSS summed over the idling probe's process tree; its peak.

        Natively the environment *is* the workload's process tree: the same definition as
        every other backend (:mod:`bench.workloads.hostmem`). The peak is the kernel's VmHWM
        read while the probe idles, after it has touched all its memory (the same VmHWM the
        probe itself prints as ``peak_rss``, kept as a cross-check fact). ``maxrss_rusage`` is
        not used: Linux carries ru_maxrss across execve(), so it would include whatever
        forked the probe.
        """
        deadline = time.monotonic() + timeout
        argv = [str(self._probe), "idle", str(int(workload.alloc)), f"{workload.idle:g}"]
        proc, _ = self._spawn(argv, merge_stderr=True)
        try:
            head = _read_until(proc, b"ready_ns=", deadline)
            environment = environment_memory(process_tree(proc.pid))
            hwm = vm_hwm(self._workload_pid(proc.pid))
        except BaseException:
            kill_tree(proc)
            raise
        rest, _ = self._communicate(proc, deadline - time.monotonic(), "probe idle", timeout)
        out = head + rest
        if proc.returncode != 0:
            msg = f"probe idle exited with status {proc.returncode}: {out.strip()[-300:]}"
            raise BackendError(msg)
        if hwm <= 0 or proc.pid not in environment.pids:
            msg = f"probe idle (pid {proc.pid}) exited before it could be measured"
            raise BackendError(msg)
        kv = parse_keyvalues(out)
        facts = {
            "kernel": kv.get("kernel", ""),
            **environment.facts(),
            "probe_peak_rss_bytes": kv.get("peak_rss", ""),
            "probe_ru_maxrss_bytes": kv.get("maxrss_rusage", ""),
        }
        return Outcome(
            [
                Measurement("memory.environment", float(environment.pss)),
                Measurement("memory.workload_peak", float(hwm)),
            ],
            facts,
        )

    def _workload_pid(self, pid: int) -> int:
        """The workload's own process, given the spawned one (the sandbox wraps it)."""
        return pid

    def _spawn_merged(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        return self._spawn(argv, merge_stderr=True)[0]

    def _network_server(self) -> NativeNetwork:
        if self._network is None:
            self._network = NativeNetwork(self._spawn_merged, _read_until, str(self._probe))
        return self._network

    def _density(self, workload: DensityWorkload, repetition: Repetition) -> Outcome:
        """N idle probes on the host (:mod:`bench.workloads.density`)."""
        params = repetition.variant.params
        instances = NativeInstances(self._spawn_merged, _read_until, str(self._probe))
        outcome = run_density(
            instances,
            int(params["instances"]),
            params["start"],
            workload.settle,
            repetition.timeout,
        )
        if self._cgroup is not None:  # one cgroup holds every instance: say so
            extra = {"limits_scope": "one cgroup shared by all instances"}
            return Outcome(outcome.measurements, {**outcome.facts, **extra})
        return outcome

    # -- helpers ----------------------------------------------------------------------------

    def _remove_cgroup(self) -> None:
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

    @staticmethod
    def _with_facts(outcome: Outcome, extra: dict[str, str]) -> Outcome:
        facts = dict(outcome.facts)
        facts.update(extra)
        if extra.get("limits", "").startswith("NOT applied"):
            facts["warning"] = f"scenario limits {extra['limits']}"
        return Outcome(outcome.measurements, facts)


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, deadline: float) -> str:
    """Read stdout until a full line containing ``marker``; RepetitionTimeout past deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    while marker not in buffer or not buffer.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            kill_tree(proc)
            msg = "probe idle did not report ready before the timeout (killed)"
            raise RepetitionTimeout(msg)
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the probe died
                break
            buffer += chunk
    if marker not in buffer:
        kill_tree(proc)
        msg = f"probe idle exited with status {proc.returncode}: {buffer.decode()[-300:]!r}"
        raise BackendError(msg)
    return buffer.decode(errors="replace")

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

The package: this module is the backend's life cycle (variants, prepare, run's dispatch per
workload, teardown); :mod:`~bench.backends.native.launch` spawns and waits for processes,
:mod:`~bench.backends.native.measure` holds the probe's start-up and memory measurements,
:mod:`~bench.backends.native.placement` where the disk workload writes (and the facts saying
so), :mod:`~bench.backends.native.netdensity` the network server and density instances.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from bench.backends.base import Repetition
from bench.backends.cgroup import Cgroup, limits_text
from bench.backends.native import measure
from bench.backends.native.launch import ProcessLauncher, read_until
from bench.backends.native.netdensity import NativeInstances, NativeNetwork
from bench.backends.native.placement import disk_directory, native_placement, storage_dir
from bench.ownership import scratch_leftovers, sweep
from bench.paths import cache_dir
from bench.procgroup import REAPER
from bench.scenario.model import DensityWorkload, Limits, NetworkWorkload, Scenario
from bench.values import Availability, BackendError, BackendUnavailable, Outcome, Variant
from bench.workloads import (
    CommandWorkload,
    DiskWorkload,
    Executor,
    MemoryWorkload,
    StartupWorkload,
    SyscallWorkload,
    build_probe,
    disk_variant,
    run_command,
    run_disk,
    run_syscall,
)
from bench.workloads.density import run_density
from bench.workloads.fio import check_engines
from bench.workloads.tools import host_problems

HOST: Final = Variant("host", {})


class NativeBackend(ProcessLauncher):
    """Runs workloads as child processes of the harness, on the host kernel."""

    name = "native"
    interleave = True

    def __init__(self) -> None:
        super().__init__()
        self._probe: Path | None = None
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
        """Check the host has the workload's tools; build the probe (and for start-up the
        launcher), start the reaper; create a cgroup when limits are set; check the
        asynchronous ioengines of fio jobs."""
        problems = host_problems(scenario)
        if problems:  # skipped rows with the reason, not one failure per repetition
            raise BackendUnavailable("; ".join(problems))
        self._probe = build_probe(cache_dir())
        if isinstance(scenario.workload, StartupWorkload):
            self.launch_tool()  # built here, not in the first repetition: errors surface early
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
            with storage_dir("check") as directory:
                execute = self.make_executor(scenario.timeout, directory)
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
        execute = self.executor(repetition)
        timeout = repetition.timeout
        if isinstance(workload, StartupWorkload):
            outcome = measure.startup(self, str(self._probe), timeout)
        elif isinstance(workload, SyscallWorkload):
            outcome = run_syscall(execute, str(self._probe), workload, timeout)
        elif isinstance(workload, DiskWorkload):
            outcome = self._disk(execute, workload, repetition)
        elif isinstance(workload, MemoryWorkload):
            outcome = measure.memory_idle(self, str(self._probe), workload, timeout)
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

    # -- workloads --------------------------------------------------------------------------

    def _disk(self, execute: Executor, workload: DiskWorkload, rep: Repetition) -> Outcome:
        """fio in the storage under test (a private directory: :func:`.placement.storage_dir`)."""
        with storage_dir(str(rep.index)) as directory:
            outcome = run_disk(execute, workload, str(directory), rep.timeout)
            facts = native_placement(directory)
        return self._with_facts(outcome, facts)

    def _command(self, workload: CommandWorkload, rep: Repetition) -> Outcome:
        """The command with the storage under test as its working directory (as in Docker)."""
        with storage_dir(str(rep.index)) as directory:
            execute = self.make_executor(rep.timeout, directory)
            outcome = run_command(execute, workload, rep.timeout)
            facts = {"workdir": str(directory), **native_placement(directory)}
        return self._with_facts(outcome, facts)

    def _network_server(self) -> NativeNetwork:
        if self._network is None:
            self._network = NativeNetwork(self.spawn_merged, read_until, str(self._probe))
        return self._network

    def _density(self, workload: DensityWorkload, repetition: Repetition) -> Outcome:
        """N idle probes on the host (:mod:`bench.workloads.density`)."""
        params = repetition.variant.params
        instances = NativeInstances(self.spawn_merged, read_until, str(self._probe))
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

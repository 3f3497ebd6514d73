"""Built-in workloads: what runs inside an environment and how its output becomes samples.

The in-environment part is shared by every backend through an :data:`Executor` (run an argv
inside the environment, return exit code/stdout/stderr), so native, container and VM run the
same binary with the same arguments and are parsed by the same code.

One module per concern: :mod:`~bench.workloads.execution` (the executor and its result),
:mod:`~bench.workloads.kinds` (the metrics each kind reports), :mod:`~bench.workloads.probe`
(the static probe binary), :mod:`~bench.workloads.syscall`, :mod:`~bench.workloads.disk`
(with :mod:`~bench.workloads.fio` for named jobs), :mod:`~bench.workloads.command` (with
:mod:`~bench.workloads.parsers`), :mod:`~bench.workloads.network`,
:mod:`~bench.workloads.density` and :mod:`~bench.workloads.hostmem`. The names backends use
are re-exported here.
"""

from __future__ import annotations

from bench.scenario.model import (
    CommandWorkload,
    DiskWorkload,
    MemoryWorkload,
    StartupWorkload,
    SyscallWorkload,
)
from bench.workloads.command import (
    TIME_FORMAT,
    command_argv,
    parse_fio_generic,
    parse_sysbench,
    parse_time,
    run_command,
)
from bench.workloads.disk import disk_placement, disk_variant, fio_argv, parse_fio, run_disk
from bench.workloads.execution import ExecResult, Executor, parse_keyvalues
from bench.workloads.kinds import CONTRACT, EMITS, contract
from bench.workloads.probe import (
    GUEST_PROBE,
    ProbeBuildError,
    build_probe,
    build_static,
    probe_hash,
    probe_source,
)
from bench.workloads.syscall import parse_syscall, run_syscall, syscall_argv

__all__ = [
    "CONTRACT",
    "EMITS",
    "GUEST_PROBE",
    "TIME_FORMAT",
    "CommandWorkload",
    "DiskWorkload",
    "ExecResult",
    "Executor",
    "MemoryWorkload",
    "ProbeBuildError",
    "StartupWorkload",
    "SyscallWorkload",
    "build_probe",
    "build_static",
    "command_argv",
    "contract",
    "disk_placement",
    "disk_variant",
    "fio_argv",
    "parse_fio",
    "parse_fio_generic",
    "parse_keyvalues",
    "parse_sysbench",
    "parse_syscall",
    "parse_time",
    "probe_hash",
    "probe_source",
    "run_command",
    "run_disk",
    "run_syscall",
    "syscall_argv",
]

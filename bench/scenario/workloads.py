"""The workload kinds a scenario can measure: one model per ``workload.kind``.

Pure: startup, syscall, disk (fio jobs), memory, network, density and command workloads, the
:data:`Workload` union discriminated by ``kind``, and the checks across one workload's fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)

from bench import metrics as catalog
from bench.scenario.constraints import (
    MAX_ARGS,
    AllocSize,
    Argument,
    Calls,
    FioFileSize,
    Frozen,
    MiB,
    NonEmptyStr,
    PositiveNumber,
    Seconds,
    at_least,
    format_size,
    no_duplicates,
    non_empty,
    on_off_input,
    size_input,
)
from bench.scenario.fields import check_pattern, check_selector, job_name


def _unique_metric_names(declared: tuple[DeclaredMetric, ...]) -> tuple[DeclaredMetric, ...]:
    no_duplicates(tuple(d.name for d in declared))
    for entry in declared:
        known = catalog.lookup(entry.name)
        if known is not None:
            direction = "higher" if known.higher_is_better else "lower"
            msg = (
                f"expected only metrics outside the catalog; {entry.name!r} is catalogued "
                f"({known.unit}, {direction} is better)"
            )
            raise ValueError(msg)
    return declared


def _unique_job_names(jobs: tuple[FioJob, ...]) -> tuple[FioJob, ...]:
    no_duplicates(tuple(job.name for job in jobs))
    return jobs


def _direct_input(value: Any) -> Any:
    if value == "auto":
        msg = (
            "expected on or off; 'auto' (fall back to buffered I/O when O_DIRECT fails) was "
            "removed because the fallback changed what was measured without saying so: use on "
            "(a filesystem without O_DIRECT then fails the row with the reason) or off "
            "(buffered I/O, labelled direct=off)"
        )
        raise ValueError(msg)
    return on_off_input(value)


class StartupWorkload(Frozen):
    """Launch a trivial command (the probe's ``ready`` mode) and time it."""

    kind: Literal["startup"]


class SyscallWorkload(Frozen):
    """System-call throughput from the static probe binary."""

    kind: Literal["syscall"]
    null_calls: Calls = 5_000_000
    mixed_calls: Calls = 200_000


# Direct I/O needs whole logical blocks: 512 B is the smallest any device has.
BlockSize = Annotated[ByteSize, BeforeValidator(size_input), AfterValidator(at_least(512))]


class FioJob(Frozen):
    """One named fio job: fio's own knobs, run after the previous job (stonewalled)."""

    name: Annotated[str, AfterValidator(job_name)]
    rw: Literal["read", "write", "randread", "randwrite", "randrw"]
    #: Percentage of reads in a ``randrw`` job (fio's ``rwmixread``).
    rwmixread: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    bs: BlockSize = ByteSize(4096)
    iodepth: Annotated[StrictInt, Field(ge=1, le=4096)] = 1
    ioengine: Literal["psync", "libaio", "io_uring"] = "psync"
    numjobs: Annotated[StrictInt, Field(ge=1, le=64)] = 1
    #: Seconds of this job; the workload's ``runtime`` when absent.
    runtime: Seconds | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}

    def reads(self) -> bool:
        """Whether the job reads (read, randread, randrw)."""
        return "read" in self.rw or self.rw == "randrw"

    def writes(self) -> bool:
        """Whether the job writes (write, randwrite, randrw)."""
        return "write" in self.rw or self.rw == "randrw"

    @model_validator(mode="after")
    def _nothing_ignored(self) -> FioJob:
        # Settings fio would silently ignore are refused rather than measured under a label
        # that says something else.
        if self.rwmixread is not None and self.rw != "randrw":
            msg = f"rwmixread applies to rw: randrw only (this job has rw: {self.rw})"
            raise ValueError(msg)
        if self.iodepth > 1 and self.ioengine == "psync":
            msg = (
                f"iodepth {self.iodepth} with ioengine psync would be ignored (psync keeps one "
                "I/O in flight); expected ioengine libaio or io_uring"
            )
            raise ValueError(msg)
        return self


class DiskWorkload(Frozen):
    """fio: the built-in jobs (sequential bandwidth, random 4 KiB IOPS, fsync latency), or
    the scenario's own named ``jobs``."""

    kind: Literal["disk"]
    #: fio's ``size``: the test file every job of the scenario shares.
    file_size: FioFileSize = ByteSize(64 * MiB)
    runtime: Seconds = 5.0
    #: on: O_DIRECT, and a filesystem that refuses it fails the row with fio's reason;
    #: off: buffered I/O, named in every backend's variant label (``direct=off``).
    direct: Annotated[Literal["on", "off"], BeforeValidator(_direct_input)] = "on"
    #: Named jobs run one after another; none: the five built-in jobs (``disk.seq_read``...).
    jobs: Annotated[
        tuple[FioJob, ...], Field(max_length=64), AfterValidator(_unique_job_names)
    ] = ()

    @model_serializer(mode="wrap")
    def _omit_empty_jobs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Without jobs the dump (and so the scenario hash) is what it always was.
        data: dict[str, Any] = handler(self)
        if not data.get("jobs"):
            data.pop("jobs", None)
        return data

    @model_validator(mode="after")
    def _nothing_ignored(self) -> DiskWorkload:
        problems = [
            f"job {job.name!r}: libaio without direct I/O submits synchronously, so iodepth "
            f"{job.iodepth} would be ignored; use direct: on, or ioengine io_uring"
            for job in self.jobs
            if job.ioengine == "libaio" and job.iodepth > 1 and self.direct == "off"
        ]
        problems += [
            f"job {job.name!r}: bs {format_size(job.bs)} is larger than file_size "
            f"{format_size(self.file_size)}"
            for job in self.jobs
            if job.bs > self.file_size
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class MemoryWorkload(Frozen):
    """Allocate and touch ``alloc`` bytes, then idle while the host measures."""

    kind: Literal["memory"]
    alloc: AllocSize = ByteSize(64 * MiB)
    idle: Seconds = 2.0


def _network_size(maximum: int) -> Callable[[ByteSize], ByteSize]:
    def check(value: ByteSize) -> ByteSize:
        if not 1 <= value <= maximum:
            msg = f"expected 1B to {format_size(maximum)}, got {format_size(value)}"
            raise ValueError(msg)
        return value

    return check


# The probe's buffers are at most 16 MiB; sample arrays at most a million entries.
NetworkSize = Annotated[
    ByteSize, BeforeValidator(size_input), AfterValidator(_network_size(16 * MiB))
]
SampleCount = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class NetworkWorkload(Frozen):
    """TCP stream, request/response and connection set-up between two probes (loopback only)."""

    kind: Literal["network"]
    #: Where the client runs: on the host (server inside), or inside beside the server.
    client: Annotated[
        tuple[Literal["host", "inside"], ...], Field(min_length=1), AfterValidator(no_duplicates)
    ] = ("host",)
    duration: Annotated[StrictFloat, Field(gt=0, le=600)] = 2.0  # stream seconds counted
    #: Stream seconds sent first and not counted by the receiver (iperf3's -O): the warm-up.
    omit: Annotated[StrictFloat, Field(ge=0, le=60)] = 1.0
    buffer: NetworkSize = ByteSize(128 * 1024)  # bytes per write() of the stream
    requests: SampleCount = 5000  # request/response round trips
    message_size: NetworkSize = ByteSize(64)  # bytes of each request and each response
    connections: SampleCount = 200  # connection set-ups


def _instances_input(value: Any) -> Any:
    # ``instances: 8`` means the one-element sweep [8].
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class DensityWorkload(Frozen):
    """N idle environments at once: host memory and start time per instance, teardown."""

    kind: Literal["density"]
    instances: Annotated[
        tuple[Annotated[StrictInt, Field(ge=1, le=256)], ...],
        BeforeValidator(_instances_input),
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = (1, 8)
    #: sequential: each instance started once the previous one is ready; concurrent: all at once.
    start: Annotated[
        tuple[Literal["sequential", "concurrent"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("sequential", "concurrent")
    settle: Annotated[StrictFloat, Field(ge=0, le=600)] = 1.0  # idle seconds before measuring


class DeclaredMetric(Frozen):
    """A metric a command emits that the catalog lacks: its unit, direction and source."""

    name: NonEmptyStr
    unit: NonEmptyStr
    direction: Literal["higher", "lower"]  # which way is better
    #: parser json: where the number is in the tool's JSON output.
    select: Annotated[str, Field(max_length=1024), AfterValidator(check_selector)] | None = None
    #: parser regex: the named group of ``pattern`` holding the number.
    group: NonEmptyStr | None = None
    #: Multiplier applied to the number read (e.g. 0.125 for bits/s to B/s).
    scale: PositiveNumber | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


#: Parsers whose metrics are all declared by the scenario (``workload.metrics``).
DECLARING_PARSERS: Final = ("json", "regex")


class CommandWorkload(Frozen):
    """Any command with a named output parser, run in the storage under test."""

    kind: Literal["command"]
    command: tuple[Argument, ...] = Field(min_length=1, max_length=MAX_ARGS)
    parser: Literal["fio-json", "sysbench", "time", "wall", "json", "regex"] = "wall"
    #: parser regex: a Python regular expression with named groups (searched in stdout,
    #: then stderr; the last match counts).
    pattern: Annotated[str, Field(max_length=4096), AfterValidator(check_pattern)] | None = None
    #: Metrics outside the catalog this command may emit; any other uncatalogued name is
    #: refused (a failed row), so no direction is ever guessed from a name.
    metrics: Annotated[tuple[DeclaredMetric, ...], AfterValidator(_unique_metric_names)] = ()

    @field_validator("command")
    @classmethod
    def _program_named(cls, command: tuple[str, ...]) -> tuple[str, ...]:
        non_empty(command[0])
        return command

    @model_validator(mode="after")
    def _sources_match_parser(self) -> CommandWorkload:
        for problem in _parser_problems(self):
            raise ValueError(problem)
        return self

    @model_serializer(mode="wrap")
    def _omit_empty_metrics(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Without declarations the dump (and so the scenario hash) is what it always was.
        data: dict[str, Any] = handler(self)
        if not data.get("metrics"):
            data.pop("metrics", None)
        if data.get("pattern") is None:
            data.pop("pattern", None)
        return data


def _parser_problems(workload: CommandWorkload) -> list[str]:
    """Parser settings that would be ignored or leave a metric without a source."""
    parser, pattern, metrics = workload.parser, workload.pattern, workload.metrics
    out: list[str] = []
    if pattern is not None and parser != "regex":
        out.append(f"pattern is read by parser regex only; this workload has parser {parser}")
    for entry in metrics:
        if entry.select is not None and parser != "json":
            out.append(f"metric {entry.name!r}: select is read by parser json only")
        if entry.group is not None and parser != "regex":
            out.append(f"metric {entry.name!r}: group is read by parser regex only")
    if parser in DECLARING_PARSERS and not metrics:
        out.append(f"parser {parser} needs metrics: [{{name, unit, direction, ...}}]")
    if parser == "json":
        out += [
            f"metric {entry.name!r}: parser json needs select (where the number is)"
            for entry in metrics
            if entry.select is None
        ]
    if parser == "regex":
        if pattern is None:
            out.append("parser regex needs pattern (a regular expression with named groups)")
        groups = set(re.compile(pattern).groupindex) if pattern else set()
        used = {entry.group for entry in metrics}
        out += [
            f"metric {entry.name!r}: group {entry.group!r} is not a named group of pattern"
            if entry.group
            else f"metric {entry.name!r}: parser regex needs group (a named group of pattern)"
            for entry in metrics
            if entry.group not in groups
        ]
        out += [
            f"named group {g!r} of pattern is not declared in metrics (unit and direction)"
            for g in sorted(groups - used)
        ]
    return out


Workload = Annotated[
    StartupWorkload
    | SyscallWorkload
    | DiskWorkload
    | MemoryWorkload
    | CommandWorkload
    | NetworkWorkload
    | DensityWorkload,
    Field(discriminator="kind"),
]
WORKLOAD_KINDS: Final = ("startup", "syscall", "disk", "memory", "command", "network", "density")


def workload_classes() -> Sequence[type[BaseModel]]:
    """The workload models, in :data:`WORKLOAD_KINDS` order."""
    return (
        StartupWorkload,
        SyscallWorkload,
        DiskWorkload,
        MemoryWorkload,
        CommandWorkload,
        NetworkWorkload,
        DensityWorkload,
    )


def sub_models() -> Sequence[type[BaseModel]]:
    """Models nested inside workloads (documented field by field like the workloads)."""
    return (FioJob, DeclaredMetric)

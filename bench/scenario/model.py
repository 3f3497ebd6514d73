"""Scenario format v1: the YAML model, validated into immutable objects.

Pure: :func:`parse_scenario` turns already-loaded data into a :class:`Scenario`;
:mod:`bench.scenario.loader` does the file I/O, safe YAML and error reporting. Validation
messages are phrased as "expected ..." because the loader shows them next to the file, line
and field they concern.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from bench import metrics as catalog
from bench.scenario.fields import (
    check_pattern,
    check_selector,
    job_name,
    package_name,
)

#: Fields that do not change what one sample measures, hence left out of Scenario.hash.
#: ``requires`` names what the guest image must contain, not what a sample measures.
NON_IDENTITY_FIELDS: Final = frozenset(
    {
        "description",
        "repeat",
        "warmup",
        "timeout",
        "backends",
        "ladder",
        "precision",
        "max_repeat",
        "requires",
    }
)
SUPPORTED_FORMAT_VERSIONS: Final = (1,)
#: Backend names a scenario may list; kept in sync with bench.backends.REGISTRY by a test.
KNOWN_BACKENDS: Final = ("native", "sandbox", "docker", "podman", "vagrant")
#: Longest scenario name (it becomes part of file names and report headings), in characters
#: and in bytes of UTF-8: with a backend, variant and counter appended a file name must stay
#: under the 255 bytes every common file system allows.
MAX_NAME_LENGTH: Final = 100
MAX_NAME_BYTES: Final = 128
#: Sane maxima: a value past these is a typo or a hostile file, never a benchmark.
MAX_REPEAT: Final = 10_000
MAX_WARMUP: Final = 1_000
MAX_SECONDS: Final = 86_400.0  # timeouts, idle and run times: at most a day
MAX_CALLS: Final = 10**10  # probe loop counts (4 M null calls take about a second)
MAX_CPUS: Final = 1024
MAX_BYTES: Final = 1 << 40  # 1 TiB: allocations, test files, memory limits, VM memory
MAX_LABEL_BYTES: Final = 64  # runtime names and the like (they become variant labels)
MAX_ARGS: Final = 4096
MAX_ARG_BYTES: Final = 128 * 1024  # the kernel's MAX_ARG_STRLEN
MAX_DESCRIPTION: Final = 10_000

#: Without ``max_repeat``, an adaptive unit stops at this many times ``repeat`` (at least 20).
DEFAULT_MAX_FACTOR: Final = 4

_MiB: Final = 1024 * 1024
_UNIT: Final = re.compile(r"^\s*[\d.]+\s*([A-Za-z]+)\s*$")
_T = TypeVar("_T")


def _size_input(value: Any) -> Any:
    # ByteSize would take True as 1 byte and 3.7 as an unparseable string; YAML gives ints
    # and strings for sizes, so anything else is a typo worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | str):
        msg = (
            "expected a size: an integer number of bytes or a string like 64MiB, 1GiB, 500MB;"
            f" got {value!r}"
        )
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a field error
    unit = _UNIT.match(value) if isinstance(value, str) else None
    if unit and unit.group(1).lower() in {"k", "m", "g", "t", "p", "e"}:
        # fio and docker read "64m" as MiB, pydantic as 10^6 bytes: make the user choose.
        letter = unit.group(1).upper()
        msg = (
            f"ambiguous size unit in {value!r}; expected {letter}iB (binary) or {letter}B (decimal)"
        )
        raise ValueError(msg)
    return value


def format_size(value: int) -> str:
    """Bytes as the shortest exact binary unit: 4MiB, 1536KiB, 1000B."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


def _at_least(minimum: int, maximum: int = MAX_BYTES) -> Callable[[ByteSize], ByteSize]:
    def check(value: ByteSize) -> ByteSize:
        if value < minimum:
            msg = f"expected at least {format_size(minimum)}, got {format_size(value)}"
            raise ValueError(msg)
        if value > maximum:
            msg = f"expected at most {format_size(maximum)}, got {format_size(value)}"
            raise ValueError(msg)
        return value

    return check


def _max_bytes(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limit:
            msg = f"expected at most {limit} bytes of UTF-8, got {size} bytes"
            raise ValueError(msg)
        return value

    return check


def _fraction(value: Any) -> Any:
    # "5%" reads as 0.05; a bare number is already a fraction (0.05). Anything else is
    # left to the float check, which names what was expected.
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            pass
    return value


def _no_duplicates(values: tuple[_T, ...]) -> tuple[_T, ...]:
    seen: list[_T] = []
    for value in values:
        if value in seen:
            msg = f"expected distinct entries, {value!r} is listed twice"
            raise ValueError(msg)
        seen.append(value)
    return values


def _unique_metric_names(declared: tuple[DeclaredMetric, ...]) -> tuple[DeclaredMetric, ...]:
    _no_duplicates(tuple(d.name for d in declared))
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
    _no_duplicates(tuple(job.name for job in jobs))
    return jobs


def _non_empty(value: str) -> str:
    if not value.strip():
        msg = "expected a non-empty string"
        raise ValueError(msg)
    return value


# Strict numbers: YAML already types its scalars, so "5" (a string) or true (a boolean) where a
# number belongs is a mistake to report, not something to coerce.
# Every number is finite and bounded: .inf or 1e300 passes a "positive" check and then
# exhausts the host (a timer that never fires, a plan of 10^8 items).
Count = Annotated[StrictInt, Field(ge=1, le=MAX_REPEAT)]
NonNegativeCount = Annotated[StrictInt, Field(ge=0, le=MAX_WARMUP)]
Calls = Annotated[StrictInt, Field(ge=1, le=MAX_CALLS)]
CpuCount = Annotated[StrictInt, Field(ge=1, le=MAX_CPUS)]
PositiveNumber = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
Cpus = Annotated[StrictFloat, Field(gt=0, le=MAX_CPUS, allow_inf_nan=False)]
Seconds = Annotated[StrictFloat, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
#: Relative half-width of the median's 95 % CI: 0.05 or "5%".
Precision = Annotated[
    StrictFloat, BeforeValidator(_fraction), Field(gt=0, lt=1, allow_inf_nan=False)
]
NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]
Label = Annotated[str, AfterValidator(_non_empty), AfterValidator(_max_bytes(MAX_LABEL_BYTES))]
Argument = Annotated[str, AfterValidator(_max_bytes(MAX_ARG_BYTES))]
# Byte sizes: an integer or a string with a unit (64MiB, 1GiB, 500MB), with a floor each.
AllocSize = Annotated[ByteSize, BeforeValidator(_size_input), AfterValidator(_at_least(1))]
# fio's sequential jobs use 1 MiB blocks, so a smaller file holds no complete block.
FioFileSize = Annotated[ByteSize, BeforeValidator(_size_input), AfterValidator(_at_least(_MiB))]
# Below a few MiB not even the probe's static binary and libc pages fit.
LimitMemory = Annotated[ByteSize, BeforeValidator(_size_input), AfterValidator(_at_least(4 * _MiB))]
# A Debian 12 guest with systemd and sshd does not boot reliably in less.
VmMemory = Annotated[ByteSize, BeforeValidator(_size_input), AfterValidator(_at_least(128 * _MiB))]


_ON: Final = frozenset({"on", "true", "yes"})
_OFF: Final = frozenset({"off", "false", "no"})


def _on_off_input(value: Any) -> Any:
    # YAML 1.1 reads a bare on/off (and yes/no, true/false) as a boolean; quoted, any case.
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value.strip().lower() in _ON | _OFF:
        return "on" if value.strip().lower() in _ON else "off"
    return value


def _direct_input(value: Any) -> Any:
    if value == "auto":
        msg = (
            "expected on or off; 'auto' (fall back to buffered I/O when O_DIRECT fails) was "
            "removed because the fallback changed what was measured without saying so: use on "
            "(a filesystem without O_DIRECT then fails the row with the reason) or off "
            "(buffered I/O, labelled direct=off)"
        )
        raise ValueError(msg)
    return _on_off_input(value)


#: on/off however YAML types it: true/false, on/off, yes/no, quoted or not, any case.
OnOff = Annotated[Literal["on", "off"], BeforeValidator(_on_off_input)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class StartupWorkload(_Frozen):
    """Launch a trivial command (the probe's ``ready`` mode) and time it."""

    kind: Literal["startup"]


class SyscallWorkload(_Frozen):
    """System-call throughput from the static probe binary."""

    kind: Literal["syscall"]
    null_calls: Calls = 5_000_000
    mixed_calls: Calls = 200_000


# Direct I/O needs whole logical blocks: 512 B is the smallest any device has.
BlockSize = Annotated[ByteSize, BeforeValidator(_size_input), AfterValidator(_at_least(512))]


class FioJob(_Frozen):
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


class DiskWorkload(_Frozen):
    """fio: the built-in jobs (sequential bandwidth, random 4 KiB IOPS, fsync latency), or
    the scenario's own named ``jobs``."""

    kind: Literal["disk"]
    #: fio's ``size``: the test file every job of the scenario shares.
    file_size: FioFileSize = ByteSize(64 * _MiB)
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


class MemoryWorkload(_Frozen):
    """Allocate and touch ``alloc`` bytes, then idle while the host measures."""

    kind: Literal["memory"]
    alloc: AllocSize = ByteSize(64 * _MiB)
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
    ByteSize, BeforeValidator(_size_input), AfterValidator(_network_size(16 * _MiB))
]
SampleCount = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class NetworkWorkload(_Frozen):
    """TCP stream, request/response and connection set-up between two probes (loopback only)."""

    kind: Literal["network"]
    #: Where the client runs: on the host (server inside), or inside beside the server.
    client: Annotated[
        tuple[Literal["host", "inside"], ...], Field(min_length=1), AfterValidator(_no_duplicates)
    ] = ("host",)
    duration: Annotated[StrictFloat, Field(gt=0, le=600)] = 2.0  # stream seconds
    buffer: NetworkSize = ByteSize(128 * 1024)  # bytes per write() of the stream
    requests: SampleCount = 5000  # request/response round trips
    message_size: NetworkSize = ByteSize(64)  # bytes of each request and each response
    connections: SampleCount = 200  # connection set-ups


def _instances_input(value: Any) -> Any:
    # ``instances: 8`` means the one-element sweep [8].
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class DensityWorkload(_Frozen):
    """N idle environments at once: host memory and start time per instance, teardown."""

    kind: Literal["density"]
    instances: Annotated[
        tuple[Annotated[StrictInt, Field(ge=1, le=256)], ...],
        BeforeValidator(_instances_input),
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = (1, 8)
    #: sequential: each instance started once the previous one is ready; concurrent: all at once.
    start: Annotated[
        tuple[Literal["sequential", "concurrent"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("sequential", "concurrent")
    settle: Annotated[StrictFloat, Field(ge=0, le=600)] = 1.0  # idle seconds before measuring


class DeclaredMetric(_Frozen):
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


class CommandWorkload(_Frozen):
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
        _non_empty(command[0])
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


class Limits(_Frozen):
    """Resource limits every backend applies the same way (None: unlimited)."""

    cpus: Cpus | None = None  # fractional CPUs allowed (CFS quota)
    memory: LimitMemory | None = None


class DockerOptions(_Frozen):
    """Docker variants to measure; each combination is one backend variant."""

    runtimes: Annotated[
        tuple[Label, ...], Field(min_length=1, max_length=64), AfterValidator(_no_duplicates)
    ] = ("runc",)
    network: Annotated[
        tuple[Literal["none", "bridge", "host"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("none",)
    seccomp: Annotated[
        tuple[Literal["default", "unconfined"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("default",)
    storage: Annotated[
        tuple[Literal["overlay", "volume"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("overlay", "volume")


class PodmanOptions(_Frozen):
    """Podman variants: rootful (overlay) and rootless per storage driver, x network."""

    modes: Annotated[
        tuple[Literal["rootful", "rootless"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("rootful", "rootless")
    #: Rootless storage drivers: vfs copies the whole image per container, overlay does not.
    rootless_storage: Annotated[
        tuple[Literal["overlay", "fuse-overlayfs", "vfs"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("overlay", "vfs")
    network: Annotated[
        tuple[Literal["none", "host"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = ("none",)


#: Kernel mechanisms the sandbox backend stacks, in ladder order.
SANDBOX_LAYERS: Final = ("namespaces", "cgroup", "seccomp")


class SandboxOptions(_Frozen):
    """Bare-mechanism rungs (bubblewrap): each variant adds the next listed layer."""

    layers: Annotated[
        tuple[Literal["namespaces", "cgroup", "seccomp"], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = SANDBOX_LAYERS

    @field_validator("layers")
    @classmethod
    def _starts_with_namespaces(cls, layers: tuple[str, ...]) -> tuple[str, ...]:
        if layers[0] != "namespaces":
            msg = "expected namespaces first: every rung runs in bubblewrap's namespaces"
            raise ValueError(msg)
        return tuple(sorted(layers, key=SANDBOX_LAYERS.index))


class VmSize(_Frozen):
    """One VM size: vCPUs and memory."""

    cpus: CpuCount = 2
    memory: VmMemory = ByteSize(1024 * _MiB)


class VagrantOptions(_Frozen):
    """VM sizes to measure (each is one backend variant) and, optionally, fewer repetitions."""

    sizes: Annotated[
        tuple[VmSize, ...], Field(min_length=1, max_length=64), AfterValidator(_no_duplicates)
    ] = (VmSize(),)
    #: Repetitions of the VM variants when they differ from the scenario's (a VM boot under
    #: software emulation takes a minute): None = the scenario's ``repeat`` / ``warmup``.
    repeat: Count | None = None
    warmup: NonNegativeCount | None = None


#: What a backend name looks like; whether one is registered is the loader's question.
_BACKEND_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _backend_name(name: str) -> str:
    if not _BACKEND_NAME.match(name):
        msg = f"expected a backend name (lower-case letters, digits, '-', '_'), got {name!r}"
        raise ValueError(msg)
    return name


def check_name(name: str) -> str:
    """Validate a scenario name: printable, no '/', not '.' or '..', short (it names files)."""
    if not name.strip():
        msg = "expected a non-empty name"
        raise ValueError(msg)
    _max_bytes(MAX_NAME_BYTES)(name)
    bad = [ch for ch in name if unicodedata.category(ch).startswith("C")]
    if bad:
        msg = f"expected printable characters only, found {bad[0]!r}"
        raise ValueError(msg)
    if "/" in name or name in {".", ".."}:
        msg = "expected a name usable in a file name (no '/', not '.' or '..')"
        raise ValueError(msg)
    return name


class Scenario(_Frozen):
    """One validated scenario file."""

    format_version: StrictInt
    name: Annotated[str, Field(max_length=MAX_NAME_LENGTH), AfterValidator(check_name)]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] = ""
    workload: Workload
    backends: Annotated[
        tuple[Annotated[str, AfterValidator(_backend_name)], ...],
        Field(min_length=1),
        AfterValidator(_no_duplicates),
    ] = KNOWN_BACKENDS
    repeat: Count = 5
    warmup: NonNegativeCount = 1
    #: Adaptive repetitions: after ``repeat``, keep repeating until the median's 95 % CI
    #: half-width is within ``precision`` of the median for every metric, or ``max_repeat``.
    precision: Precision | None = None
    max_repeat: Count | None = None
    timeout: Seconds = 300.0
    limits: Limits = Limits()
    docker: DockerOptions = DockerOptions()
    podman: PodmanOptions = PodmanOptions()
    sandbox: SandboxOptions = SandboxOptions()
    vagrant: VagrantOptions = VagrantOptions()
    #: Show the isolation ladder (each rung's cost over the rung below) in the report.
    ladder: bool = False
    #: Debian packages the workload needs in the guest (baked in by ``isobench env build``)
    #: and on the host (native).
    requires: Annotated[
        tuple[Annotated[str, AfterValidator(package_name)], ...],
        Field(max_length=256),
        AfterValidator(_no_duplicates),
    ] = ()

    @field_validator("format_version")
    @classmethod
    def _supported(cls, version: int) -> int:
        if version not in SUPPORTED_FORMAT_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
            msg = f"unsupported format_version {version}; expected one of: {supported}"
            raise ValueError(msg)
        return version

    @field_validator("max_repeat")
    @classmethod
    def _not_below_repeat(cls, value: int | None, info: ValidationInfo) -> int | None:
        repeat = info.data.get("repeat")
        if value is not None and isinstance(repeat, int) and value < repeat:
            msg = f"expected at least repeat ({repeat}), got {value}"
            raise ValueError(msg)
        return value

    @property
    def repeat_cap(self) -> int:
        """Most measured repetitions a unit may get (``repeat`` unless adaptive)."""
        if self.precision is None:
            return self.repeat
        return self.max_repeat or min(MAX_REPEAT, max(DEFAULT_MAX_FACTOR * self.repeat, 20))

    @property
    def hash(self) -> str:
        """Hash of what one sample measures (12 hex digits of SHA-256).

        It covers the name, format, workload, limits and backend options, normalized (defaults
        filled in, key order irrelevant). How many samples are taken (repeat, warmup), the
        timeout, the backend selection and the description are left out, so runs with
        ``--repeat`` or a subset of backends stay comparable with ``isobench compare``.
        """
        exclude: dict[str, Any] = dict.fromkeys(NON_IDENTITY_FIELDS, True)
        exclude["vagrant"] = {"repeat": True, "warmup": True}  # sample counts, not identity
        canonical = json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def counts_for(self, backend: str) -> tuple[int, int]:
        """(warm-ups, measured repetitions) of ``backend``'s variants."""
        if backend == "vagrant":
            warmup, repeat = self.vagrant.warmup, self.vagrant.repeat
            return (self.warmup if warmup is None else warmup, repeat or self.repeat)
        return (self.warmup, self.repeat)

    def without_backend_counts(self, *, repeat: bool = True, warmup: bool = True) -> Scenario:
        """Copy in which every backend takes the scenario's own repeat/warmup (profiles)."""
        update = {k: None for k, drop in (("repeat", repeat), ("warmup", warmup)) if drop}
        return self.model_copy(update={"vagrant": self.vagrant.model_copy(update=update)})

    def with_repeat(self, repeat: int) -> Scenario:
        """Copy with another repeat count (``--repeat``); ValueError unless 1..MAX_REPEAT."""
        return self.with_counts(repeat=repeat)

    def with_counts(
        self,
        *,
        repeat: int | None = None,
        warmup: int | None = None,
        precision: float | None = None,
        max_repeat: int | None = None,
    ) -> Scenario:
        """Copy with other sample counts (profiles, ``--repeat``, ``--precision``), validated."""
        update: dict[str, Any] = {
            k: v
            for k, v in {
                "repeat": repeat,
                "warmup": warmup,
                "precision": precision,
                "max_repeat": max_repeat,
            }.items()
            if v is not None
        }
        if "repeat" in update and "max_repeat" not in update and self.max_repeat is not None:
            update["max_repeat"] = max(self.max_repeat, update["repeat"])
        data = self.model_dump(mode="python") | update
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "scenario"
            expected = str(first["msg"]).replace("Input should be", "expected")
            msg = f"{where}: {expected}, got {first.get('input')!r}"
            raise ValueError(msg) from None


#: Workload kinds whose Docker variants differ by ``docker.storage`` (where they write).
STORAGE_KINDS: Final = ("disk", "command")
#: Workload kinds on which ``docker.network`` changes nothing that is measured.
NETWORKLESS_KINDS: Final = ("syscall", "disk", "memory")


def ignored_settings(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Settings the scenario states explicitly that its workload would ignore: (field, why)."""
    kind = scenario.workload.kind
    explicit = scenario.docker.model_fields_set
    out: list[tuple[tuple[str | int, ...], str]] = []
    if "storage" in explicit and kind not in STORAGE_KINDS:
        out.append(
            (
                ("docker", "storage"),
                f"the {kind} workload does not use storage, so this list would be ignored; "
                f"expected it only on {' and '.join(STORAGE_KINDS)} workloads (remove it)",
            )
        )
    for engine, options in (("docker", scenario.docker), ("podman", scenario.podman)):
        if "network" in options.model_fields_set and kind in NETWORKLESS_KINDS:
            out.append(
                (
                    (engine, "network"),
                    f"the {kind} workload does not use the network, so this list would be "
                    "ignored; remove it",
                )
            )
    return out


def storage_variants(scenario: Scenario) -> tuple[str, ...]:
    """Docker storage variants: disk always, command when ``docker.storage`` is given."""
    kind = scenario.workload.kind
    if kind == "disk" or (kind == "command" and "storage" in scenario.docker.model_fields_set):
        return scenario.docker.storage
    return ()


def parse_scenario(data: Any) -> Scenario:
    """Validate already-loaded YAML data (raises pydantic.ValidationError)."""
    return Scenario.model_validate(data)


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

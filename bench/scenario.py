"""Scenario format v1: the YAML model, validated into immutable objects.

Pure: :func:`parse_scenario` turns already-loaded data into a :class:`Scenario`;
:mod:`bench.scenario_loader` does the file I/O, safe YAML and error reporting.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

SUPPORTED_FORMAT_VERSIONS: Final = (1,)
#: Backend names a scenario may list; kept in sync with bench.backends.REGISTRY by a test.
KNOWN_BACKENDS: Final = ("native", "docker", "vagrant")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class StartupWorkload(_Frozen):
    """Launch a trivial command (the probe's ``ready`` mode) and time it."""

    kind: Literal["startup"]


class SyscallWorkload(_Frozen):
    """System-call throughput from the static probe binary."""

    kind: Literal["syscall"]
    null_calls: PositiveInt = 5_000_000
    mixed_calls: PositiveInt = 200_000


class DiskWorkload(_Frozen):
    """fio: sequential bandwidth, random 4 KiB IOPS, fsync latency."""

    kind: Literal["disk"]
    file_size: ByteSize = ByteSize(64 * 1024 * 1024)
    runtime: PositiveFloat = 5.0
    direct: Literal["auto", "on", "off"] = "auto"


class MemoryWorkload(_Frozen):
    """Allocate and touch ``alloc`` bytes, then idle while the host measures."""

    kind: Literal["memory"]
    alloc: ByteSize = ByteSize(64 * 1024 * 1024)
    idle: PositiveFloat = 2.0


class CommandWorkload(_Frozen):
    """Any command with a named output parser."""

    kind: Literal["command"]
    command: tuple[str, ...] = Field(min_length=1)
    parser: Literal["fio-json", "sysbench", "time", "wall"] = "wall"


Workload = Annotated[
    StartupWorkload | SyscallWorkload | DiskWorkload | MemoryWorkload | CommandWorkload,
    Field(discriminator="kind"),
]
WORKLOAD_KINDS: Final = ("startup", "syscall", "disk", "memory", "command")


class Limits(_Frozen):
    """Resource limits every backend applies the same way (None: unlimited)."""

    cpus: PositiveFloat | None = None
    memory: ByteSize | None = None


class DockerOptions(_Frozen):
    """Docker variants to measure; each combination is one backend variant."""

    runtimes: tuple[str, ...] = Field(default=("runc",), min_length=1)
    network: tuple[Literal["none", "bridge", "host"], ...] = Field(default=("none",), min_length=1)
    seccomp: tuple[Literal["default", "unconfined"], ...] = Field(
        default=("default",), min_length=1
    )
    storage: tuple[Literal["overlay", "volume"], ...] = Field(
        default=("overlay", "volume"), min_length=1
    )


class VmSize(_Frozen):
    """One VM size: vCPUs and memory."""

    cpus: PositiveInt = 2
    memory: ByteSize = ByteSize(1024 * 1024 * 1024)


class VagrantOptions(_Frozen):
    """VM sizes to measure; each is one backend variant."""

    sizes: tuple[VmSize, ...] = Field(default=(VmSize(),), min_length=1)


class Scenario(_Frozen):
    """One validated scenario file."""

    format_version: int
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    workload: Workload
    backends: tuple[str, ...] = KNOWN_BACKENDS
    repeat: PositiveInt = 5
    warmup: NonNegativeInt = 1
    timeout: PositiveFloat = 300.0
    limits: Limits = Limits()
    docker: DockerOptions = DockerOptions()
    vagrant: VagrantOptions = VagrantOptions()

    @property
    def hash(self) -> str:
        """Content hash of the normalized scenario (12 hex digits of SHA-256)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def with_repeat(self, repeat: int) -> Scenario:
        """Copy with another repeat count (``--repeat``)."""
        return self.model_copy(update={"repeat": repeat})


def parse_scenario(data: Any) -> Scenario:
    """Validate already-loaded YAML data (raises pydantic.ValidationError)."""
    return Scenario.model_validate(data)

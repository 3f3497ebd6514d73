"""Per-backend sections of a scenario: resource limits and each backend's variants.

Pure. ``docker``, ``podman``, ``sandbox`` and ``vagrant`` list what to measure (each
combination is one backend variant); ``limits`` applies to every backend alike.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, ByteSize, Field, field_validator

from bench.scenario.constraints import (
    Count,
    CpuCount,
    Cpus,
    Frozen,
    Label,
    LimitMemory,
    MiB,
    NonNegativeCount,
    VmMemory,
    no_duplicates,
)


class Limits(Frozen):
    """Resource limits every backend applies the same way (None: unlimited)."""

    cpus: Cpus | None = None  # fractional CPUs allowed (CFS quota)
    memory: LimitMemory | None = None


class DockerOptions(Frozen):
    """Docker variants to measure; each combination is one backend variant."""

    runtimes: Annotated[
        tuple[Label, ...], Field(min_length=1, max_length=64), AfterValidator(no_duplicates)
    ] = ("runc",)
    network: Annotated[
        tuple[Literal["none", "bridge", "host"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("none",)
    seccomp: Annotated[
        tuple[Literal["default", "unconfined"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("default",)
    storage: Annotated[
        tuple[Literal["overlay", "volume"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("overlay", "volume")


class PodmanOptions(Frozen):
    """Podman variants: rootful (overlay) and rootless per storage driver, x network."""

    modes: Annotated[
        tuple[Literal["rootful", "rootless"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("rootful", "rootless")
    #: Rootless storage drivers: vfs copies the whole image per container, overlay does not
    #: (vfs: about 10 s per container start here; add it to see what the copy costs).
    rootless_storage: Annotated[
        tuple[Literal["overlay", "fuse-overlayfs", "vfs"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("overlay",)
    network: Annotated[
        tuple[Literal["none", "bridge", "host"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = ("none",)


#: Kernel mechanisms the sandbox backend stacks, in ladder order.
SANDBOX_LAYERS: Final = ("namespaces", "cgroup", "seccomp")


class SandboxOptions(Frozen):
    """Bare-mechanism rungs (bubblewrap): each variant adds the next listed layer."""

    layers: Annotated[
        tuple[Literal["namespaces", "cgroup", "seccomp"], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
    ] = SANDBOX_LAYERS

    @field_validator("layers")
    @classmethod
    def _starts_with_namespaces(cls, layers: tuple[str, ...]) -> tuple[str, ...]:
        if layers[0] != "namespaces":
            msg = "expected namespaces first: every rung runs in bubblewrap's namespaces"
            raise ValueError(msg)
        return tuple(sorted(layers, key=SANDBOX_LAYERS.index))


class VmSize(Frozen):
    """One VM size: vCPUs and memory."""

    cpus: CpuCount = 2
    memory: VmMemory = ByteSize(1024 * MiB)


class VagrantOptions(Frozen):
    """VM sizes to measure (each is one backend variant) and, optionally, fewer repetitions."""

    sizes: Annotated[
        tuple[VmSize, ...], Field(min_length=1, max_length=64), AfterValidator(no_duplicates)
    ] = (VmSize(),)
    #: Repetitions of the VM variants when they differ from the scenario's (a VM boot under
    #: software emulation takes a minute): None = the scenario's ``repeat`` / ``warmup``.
    repeat: Count | None = None
    warmup: NonNegativeCount | None = None

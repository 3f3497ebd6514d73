"""Scenario format v1: the YAML model, validated into immutable objects.

Pure: :func:`parse_scenario` turns already-loaded data into a :class:`Scenario`;
:mod:`bench.scenario.loader` does the file I/O, safe YAML and error reporting. Validation
messages are phrased as "expected ..." because the loader shows them next to the file, line
and field they concern.

The model is assembled from :mod:`~bench.scenario.constraints` (bounded field types),
:mod:`~bench.scenario.workloads` (one model per workload kind) and
:mod:`~bench.scenario.options` (limits and the per-backend sections); this module holds the
:class:`Scenario` root, its checks across sections and its hash. It is also the one import
point for the rest of the package: everything in ``__all__`` is re-exported.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bench.scenario.constraints import (
    MAX_DESCRIPTION,
    MAX_NAME_BYTES,
    MAX_NAME_LENGTH,
    MAX_REPEAT,
    Count,
    Frozen,
    NonNegativeCount,
    Precision,
    Seconds,
    format_size,
    max_bytes,
    no_duplicates,
)
from bench.scenario.fields import backend_name, package_name
from bench.scenario.options import (
    SANDBOX_LAYERS,
    DockerOptions,
    Limits,
    PodmanOptions,
    SandboxOptions,
    VagrantOptions,
    VmSize,
)
from bench.scenario.workloads import (
    DECLARING_PARSERS,
    WORKLOAD_KINDS,
    CommandWorkload,
    DeclaredMetric,
    DensityWorkload,
    DiskWorkload,
    FioJob,
    MemoryWorkload,
    NetworkWorkload,
    StartupWorkload,
    SyscallWorkload,
    Workload,
    sub_models,
    workload_classes,
)

__all__ = [
    "DECLARING_PARSERS",
    "KNOWN_BACKENDS",
    "NETWORKLESS_KINDS",
    "NON_IDENTITY_FIELDS",
    "SANDBOX_LAYERS",
    "STORAGE_KINDS",
    "SUPPORTED_FORMAT_VERSIONS",
    "WORKLOAD_KINDS",
    "CommandWorkload",
    "DeclaredMetric",
    "DensityWorkload",
    "DiskWorkload",
    "DockerOptions",
    "FioJob",
    "Limits",
    "MemoryWorkload",
    "NetworkWorkload",
    "PodmanOptions",
    "SandboxOptions",
    "Scenario",
    "StartupWorkload",
    "SyscallWorkload",
    "VagrantOptions",
    "VmSize",
    "Workload",
    "check_name",
    "format_size",
    "ignored_settings",
    "parse_scenario",
    "storage_variants",
    "sub_models",
    "workload_classes",
]

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

#: Without ``max_repeat``, an adaptive unit stops at this many times ``repeat`` (at least 20).
DEFAULT_MAX_FACTOR: Final = 4


def check_name(name: str) -> str:
    """Validate a scenario name: printable, no '/', not '.' or '..', short (it names files)."""
    if not name.strip():
        msg = "expected a non-empty name"
        raise ValueError(msg)
    max_bytes(MAX_NAME_BYTES)(name)
    bad = [ch for ch in name if unicodedata.category(ch).startswith("C")]
    if bad:
        msg = f"expected printable characters only, found {bad[0]!r}"
        raise ValueError(msg)
    if "/" in name or name in {".", ".."}:
        msg = "expected a name usable in a file name (no '/', not '.' or '..')"
        raise ValueError(msg)
    return name


class Scenario(Frozen):
    """One validated scenario file."""

    format_version: StrictInt
    name: Annotated[str, Field(max_length=MAX_NAME_LENGTH), AfterValidator(check_name)]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)] = ""
    workload: Workload
    backends: Annotated[
        tuple[Annotated[str, AfterValidator(backend_name)], ...],
        Field(min_length=1),
        AfterValidator(no_duplicates),
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
        AfterValidator(no_duplicates),
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

"""The one small interface every isolation backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bench.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a backend can run here, and if not, why and what enables it."""

    ok: bool
    reason: str = ""
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Variant:
    """One configuration of a backend (runtime, accelerator, VM size...).

    ``label`` is the value of the ``variant`` column: canonical ``key=value`` pairs joined
    by commas, e.g. ``runtime=runc,network=none,seccomp=default``; ``"host"`` for native.
    """

    label: str
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, **params: str) -> Variant:
        """Build a variant whose label lists ``params`` in the given order."""
        label = ",".join(f"{k}={v}" for k, v in params.items()) or "default"
        return cls(label, dict(params))


@dataclass(frozen=True, slots=True)
class Measurement:
    """One value produced by a repetition; unit defaults to the catalog's."""

    metric: str
    value: float
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one repetition produced: values plus facts observed (kernel seen inside...)."""

    measurements: Sequence[Measurement]
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Repetition:
    """Everything a backend needs to run one repetition."""

    scenario: Scenario
    variant: Variant
    index: int
    warmup: bool
    timeout: float
    workdir: Path


class BackendError(Exception):
    """A repetition failed; the message is the reason recorded in the row."""


class RepetitionTimeout(BackendError):
    """A repetition exceeded the scenario timeout (the backend has killed it)."""


class BackendUnavailable(BackendError):
    """Raised by prepare() when the backend turns out unusable for this scenario."""


@runtime_checkable
class Backend(Protocol):
    """An isolation backend: native, docker, vagrant..."""

    name: str

    def availability(self) -> Availability:
        """Can this backend run here? Cheap, no side effects beyond probing."""
        ...

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """The variants of this backend the scenario asks for."""
        ...

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Set up what repetitions of this scenario x variant share (image, VM...)."""
        ...

    def run(self, repetition: Repetition) -> Outcome:
        """Run one repetition; raise BackendError / RepetitionTimeout on failure."""
        ...

    def teardown(self) -> None:
        """Release everything prepare()/run() created. Idempotent; also called on Ctrl-C."""
        ...

    def environment(self) -> dict[str, Any]:
        """Versions and settings of this backend, for environment.json."""
        ...

"""Value types shared by backends, workloads and the runner (a leaf: imports nothing of bench)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


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


class BackendError(Exception):
    """A repetition failed; the message is the reason recorded in the row."""


class RepetitionTimeout(BackendError):
    """A repetition exceeded the scenario timeout (the backend has killed it)."""


class BackendUnavailable(BackendError):
    """Raised by prepare() when the backend turns out unusable for this scenario."""

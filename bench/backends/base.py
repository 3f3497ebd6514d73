"""The one small interface every isolation backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.values import Availability, Outcome, Variant

if TYPE_CHECKING:
    from bench.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Repetition:
    """Everything a backend needs to run one repetition."""

    scenario: Scenario
    variant: Variant
    index: int
    warmup: bool
    timeout: float
    workdir: Path


@runtime_checkable
class Backend(Protocol):
    """An isolation backend: native, docker, vagrant..."""

    name: str
    #: False for a backend whose environment must not idle beside others' measurements (a VM
    #: under emulation steals CPU): the runner then runs its repetitions as one block.
    interleave: bool

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

    def notes(self) -> list[str]:
        """What the user should know about this run (leftovers removed, fallbacks taken...).

        The one channel from a backend to the user: the runner stores these in
        environment.json and the report shows them. Never raises.
        """
        ...


@runtime_checkable
class KeepsEnvironment(Protocol):
    """A backend that can keep one environment (a booted VM) across scenarios.

    Between its blocks the runner calls :meth:`park` instead of ``teardown()``: the backend
    keeps the environment but must leave it unable to disturb the other backends' measurements
    (a VM is paused: no CPU). ``teardown()`` at the end of the run (or on Ctrl-C) releases it.
    """

    def shared_environment(self, scenario: Scenario, variant: Variant) -> str | None:
        """Key of the kept environment this pair would run in (None: its own, fresh)."""
        ...

    def park(self) -> None:
        """Keep the environment, idle and paused, for a later scenario. Never raises."""
        ...

"""A deterministic in-process backend for unit tests of the runner and everything above it.

Nothing is measured: every value is ``base + repetition index`` so tests can check exactly
which repetition produced which row. Failures, timeouts, hangs, crashes and Ctrl-C are
scripted per *call number* (the n-th call of :meth:`FakeBackend.run`, counting from 0), which
is deterministic because the runner is sequential.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench import backends as registry
from bench.backends import register
from bench.backends.base import Repetition
from bench.scenario.model import Scenario
from bench.values import (
    Availability,
    BackendError,
    Measurement,
    Outcome,
    RepetitionTimeout,
    Variant,
)
from bench.workloads import contract


@dataclass
class FakeScript:
    """What a :class:`FakeBackend` does; sets hold call numbers (0-based)."""

    values: Mapping[str, float] = field(default_factory=dict)  # metric -> base value
    fail: set[int] = field(default_factory=set)  # raise BackendError
    timeout: set[int] = field(default_factory=set)  # raise RepetitionTimeout
    hang: set[int] = field(default_factory=set)  # sleep past the timeout, raise nothing
    crash: set[int] = field(default_factory=set)  # raise RuntimeError (a backend bug)
    interrupt: set[int] = field(default_factory=set)  # raise KeyboardInterrupt (Ctrl-C)
    prepare_error: str | None = None  # prepare() raises BackendError with this reason
    sleep: float = 0.0  # seconds every run() takes
    variants: Sequence[str] = ("default",)
    available: bool = True
    facts: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()


class FakeBackend:
    """Backend whose behaviour is scripted by a :class:`FakeScript`; records every call."""

    def __init__(
        self,
        name: str = "fake",
        script: FakeScript | None = None,
        *,
        interleave: bool = True,
        journal: list[str] | None = None,
    ) -> None:
        self.name = name
        self.script = script or FakeScript()
        self.interleave = interleave
        #: shared, ordered log of "<name>:<event>" lines (several fakes may share one list)
        self.journal: list[str] = journal if journal is not None else []
        self.calls: list[Repetition] = []
        self.prepared: list[str] = []
        self.teardowns = 0

    def availability(self) -> Availability:
        """Available unless the script says otherwise."""
        if self.script.available:
            return Availability(True)
        return Availability(False, "fake backend scripted as unavailable", "nothing to do")

    def variants(self, scenario: Scenario) -> Sequence[Variant]:
        """The scripted variant labels."""
        return [Variant(label, {}) for label in self.script.variants]

    def prepare(self, scenario: Scenario, variant: Variant) -> None:
        """Record the call; fail if scripted."""
        self.journal.append(f"{self.name}:prepare:{variant.label}")
        if self.script.prepare_error is not None:
            raise BackendError(self.script.prepare_error)
        self.prepared.append(variant.label)

    def run(self, repetition: Repetition) -> Outcome:
        """Produce ``base + index`` for each contract metric, or the scripted misbehaviour."""
        call = len(self.calls)
        self.calls.append(repetition)
        tag = "w" if repetition.warmup else "r"
        self.journal.append(f"{self.name}:run:{repetition.variant.label}:{tag}{repetition.index}")
        if self.script.sleep:
            time.sleep(self.script.sleep)
        if call in self.script.interrupt:
            raise KeyboardInterrupt
        if call in self.script.fail:
            msg = f"scripted failure at call {call}"
            raise BackendError(msg)
        if call in self.script.timeout:
            msg = f"scripted timeout after {repetition.timeout:g} s"
            raise RepetitionTimeout(msg)
        if call in self.script.crash:
            msg = f"scripted crash at call {call}"
            raise RuntimeError(msg)
        if call in self.script.hang:
            time.sleep(repetition.timeout * 10 + 5)
        metrics = contract(repetition.scenario.workload)
        return Outcome(
            [
                Measurement(metric, self.script.values.get(metric, 1.0) + repetition.index)
                for metric in metrics
            ],
            dict(self.script.facts),
        )

    def teardown(self) -> None:
        """Count teardowns (idempotent)."""
        self.journal.append(f"{self.name}:teardown")
        self.teardowns += 1

    def notes(self) -> list[str]:
        return list(self.script.notes)

    def environment(self) -> dict[str, Any]:
        """Static description."""
        return {"kind": "fake", "variants": list(self.script.variants)}


class KeepingFakeBackend(FakeBackend):
    """A fake that keeps one environment across scenarios of ``shared_kinds`` (like a VM)."""

    def __init__(
        self,
        name: str = "fake",
        script: FakeScript | None = None,
        *,
        shared_kinds: Sequence[str] = (),
        journal: list[str] | None = None,
    ) -> None:
        super().__init__(name, script, interleave=False, journal=journal)
        self.shared_kinds = frozenset(shared_kinds)

    def shared_environment(self, scenario: Scenario, variant: Variant) -> str | None:
        """The one kept environment for the shared kinds."""
        return "env" if scenario.workload.kind in self.shared_kinds else None

    def park(self) -> None:
        """Record the call."""
        self.journal.append(f"{self.name}:park")


def register_fake(
    name: str = "fake",
    script: FakeScript | None = None,
    *,
    interleave: bool = True,
    journal: list[str] | None = None,
) -> FakeBackend:
    """Create a fake and register it under ``name``; the registry returns this very object."""
    backend = FakeBackend(name, script, interleave=interleave, journal=journal)
    register(name, lambda: backend)
    return backend


#: A startup scenario on the backend ``fake``, as a file's text: ``FAKE_SCENARIO.format(name=N)``.
FAKE_SCENARIO = """\
format_version: 1
name: {name}
workload: {{kind: startup}}
backends: [fake]
repeat: 3
warmup: 1
timeout: 5
"""


def scenario_data(backends: Sequence[str], /, **overrides: Any) -> dict[str, Any]:
    """A small valid scenario named ``s`` over ``backends`` (startup, 3 + 1 warm-up).

    ``overrides`` replace fields, ``backends`` included."""
    data: dict[str, Any] = {
        "format_version": 1,
        "name": "s",
        "workload": {"kind": "startup"},
        "backends": list(backends),
        "repeat": 3,
        "warmup": 1,
    }
    return data | overrides


def register_fakes(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Register :class:`FakeBackend` under each name for one test (validation needs them)."""
    for name in names:
        monkeypatch.setitem(registry._EXTRA, name, FakeBackend)


def use_fake(
    monkeypatch: pytest.MonkeyPatch, script: FakeScript, host: dict[str, Any]
) -> FakeBackend:
    """Register ``fake`` (this very object) for one test; the run records ``host`` as its host."""
    monkeypatch.setattr("bench.run.runner.host_info", lambda: host)
    backend = FakeBackend("fake", script)
    monkeypatch.setitem(registry._EXTRA, "fake", lambda: backend)
    return backend

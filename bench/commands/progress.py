"""Progress of a run: a live bar with ETA on a terminal, plain lines in logs and pipes.

The ETA is the plan's expected time of what remains (:mod:`bench.run.estimate`), scaled by
how the run has gone so far against the same estimates (clamped to 0.25x..4x, so one odd
repetition does not swing it wildly). Verbosity: ``-q`` prints nothing per repetition,
the default one line per repetition with its first value, ``-v`` every value.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

if TYPE_CHECKING:
    from bench.results import Sample
    from bench.run.plan import PlannedItem


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    return (
        f"{minutes} min {secs:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


class Eta:
    """Remaining time from per-item expectations, calibrated on the elapsed time."""

    def __init__(
        self, expected: Mapping[tuple[str, str, str], tuple[float, float]], total: float
    ) -> None:
        self.expected = expected  # (scenario, backend, variant) -> (s per rep, setup s)
        self.remaining = total
        self.expected_done = 0.0
        self.started = time.monotonic()
        self._seen: set[tuple[str, str, str]] = set()

    def done(self, item: PlannedItem) -> None:
        """One repetition of ``item`` finished (its unit's setup counts with the first)."""
        key = (item.scenario.name, item.backend, item.variant.label)
        per_rep, setup = self.expected.get(key, (0.0, 0.0))
        seconds = per_rep + (setup if key not in self._seen else 0.0)
        self._seen.add(key)
        self.remaining = max(0.0, self.remaining - seconds)
        self.expected_done += seconds

    def text(self) -> str:
        """``eta 3 min 10 s`` (empty when nothing is known)."""
        if self.remaining <= 0:
            return ""
        elapsed = time.monotonic() - self.started
        scale = elapsed / self.expected_done if self.expected_done > 0 else 1.0
        return f"eta {_duration(self.remaining * min(4.0, max(0.25, scale)))}"


def _values(samples: Sequence[Sample], verbose: bool) -> str:
    if not samples:
        return ""
    bad = [s for s in samples if s.status != "ok"]
    if bad:
        return f"{bad[0].status}: {bad[0].reason}"
    shown = samples if verbose else samples[:1]
    return ", ".join(f"{s.metric}={s.value:.4g} {s.unit}".rstrip() for s in shown)


class PlainProgress:
    """One line per repetition (none with -q), for logs and pipes."""

    def __init__(self, stream: TextIO, eta: Eta | None = None, verbosity: int = 0) -> None:
        self.stream = stream
        self.eta = eta
        self.verbosity = verbosity
        self._where = ""

    def message(self, text: str) -> None:
        """Print a status line (not with -q)."""
        if self.verbosity >= 0:
            print(text, file=self.stream, flush=True)

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Remember the position for the end line."""
        self._where = f"[{position}/{total}]"

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """Print the repetition, its value(s) (or why it has none) and the ETA."""
        if self.eta:
            self.eta.done(item)
        if self.verbosity < 0:
            return
        eta = f"  ({self.eta.text()})" if self.eta and self.eta.text() else ""
        value = _values(samples, self.verbosity > 0)
        print(f"{self._where} {item.describe()}: {value}{eta}", file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()


class RichProgress:
    """A live bar on a terminal: item, bar, i/n, ETA, last value."""

    def __init__(self, eta: Eta | None = None, verbosity: int = 0) -> None:
        self.console = Console(stderr=True)
        self.eta = eta
        self.verbosity = verbosity
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[last]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.bar.add_task("starting", total=None, last="", eta="")

    def message(self, text: str) -> None:
        """Print a status line above the bar (not with -q)."""
        if self.verbosity >= 0:
            self.bar.console.print(text, markup=False, highlight=False)

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Show the repetition about to run."""
        self.bar.update(self.task, description=item.describe(), total=total, completed=position - 1)

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """Advance; show its value and the ETA (-v: also a line per repetition)."""
        if self.eta:
            self.eta.done(item)
        value = _values(samples, self.verbosity > 0)
        if self.verbosity > 0:
            self.bar.console.print(f"{item.describe()}: {value}", markup=False, highlight=False)
        eta = self.eta.text() if self.eta else ""
        self.bar.update(self.task, advance=1, last=value, eta=eta)

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def progress(*, plain: bool, eta: Eta | None, verbosity: int) -> PlainProgress | RichProgress:
    """A live bar on a terminal (unless ``plain``), plain lines elsewhere."""
    if plain or not sys.stderr.isatty():
        return PlainProgress(sys.stderr, eta, verbosity)
    return RichProgress(eta, verbosity)

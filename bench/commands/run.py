"""`isobench run`: plan and execute scenarios on backends, writing one run directory."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bench import backends as registry
from bench.paths import results_dir, scenarios_dir

if TYPE_CHECKING:  # pandas/pydantic are imported only when a run starts (fast --help)
    from bench.results import Sample
    from bench.run.runner import PlannedItem

HELP = "run scenarios on backends and record every sample"
DESCRIPTION = """\
Run scenarios natively, in containers and in VMs, one repetition at a time, and write a run
directory RESULTS/<run-id>/ with samples.jsonl (appended as measured), samples.parquet,
environment.json (host, tools, backends, health warnings), facts.jsonl, runner.log, a
copy of the scenario files and end.json (written last: the run ended).

Per scenario: warmups first (kept, flagged warmup=true), then the measured repetitions,
every backend once per round in an order shuffled per round by a seeded generator (--seed;
the seed is recorded in environment.json) so host drift and order effects do not favour one;
backends that must run alone (VMs) keep their repetitions together as one block, placed at a
seeded position between two rounds, with native measured right before and right after it
(the report warns when native drifted across it). A failure,
a timeout or a backend that cannot be prepared becomes rows with status failed/timeout/
skipped and a reason; the run goes on. Ctrl-C (or SIGTERM) stops cleanly: what was measured
stays on disk and the run is marked interrupted (exit status 130). A run is complete only
once its end marker (end.json) is written, last; a write error (disk full, read-only
--out...) stops the run with a one-line message and exit status 1, the journal kept up to
the last whole sample and no end marker (`isobench report` consolidates such a run later).

Output: progress and messages go to stderr; the LAST line of stdout is the run directory,
so scripts can do  RUN=$(isobench run ... | tail -n1).

exit status: 0 run complete (individual rows may still be failed/timeout/skipped),
1 invalid scenario or nothing to run (nothing written), or a write error (run incomplete),
2 usage error (e.g. unknown --backend), 130 interrupted.
"""


def register(sub: Any) -> None:
    """Add the `run` subcommand."""
    parser = sub.add_parser(
        "run",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="SCENARIO_FILE_OR_DIR",
        help="scenario files or directories of *.yaml (default: scenarios/)",
    )
    parser.add_argument(
        "--backend",
        "-b",
        action="append",
        dest="backends",
        metavar="NAME",
        help="only this backend (repeatable; default: every available backend; "
        "see `isobench backends`)",
    )
    parser.add_argument(
        "--repeat",
        "-n",
        type=_positive_int,
        metavar="N",
        help="measured repetitions per scenario x backend variant (default: each scenario's "
        "own `repeat`)",
    )
    parser.add_argument(
        "--out",
        "-o",
        type=Path,
        metavar="DIR",
        help="parent directory of the run directory (default: results/)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        metavar="N",
        help="seed of the execution order (default: a fresh random one; always recorded in "
        "environment.json, so a run's order can be replayed)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="plain progress lines even on a terminal",
    )
    parser.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        msg = f"expected a non-negative integer seed, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def run(args: argparse.Namespace) -> int:
    """Validate scenarios, plan, run; print the run directory last on stdout."""
    from bench.results import SAMPLES_JSONL, StorageError  # noqa: PLC0415
    from bench.run.runner import (  # noqa: PLC0415 - heavy, only when running
        execute_run,
        order_facts,
        plan,
    )
    from bench.scenario.loader import ScenarioLoadError, load_scenarios  # noqa: PLC0415

    known = registry.names()
    unknown = [n for n in args.backends or () if n not in known]
    if unknown:
        print(f"isobench run: unknown backend(s) {', '.join(unknown)}", file=sys.stderr)
        print(f"known backends: {', '.join(known)}", file=sys.stderr)
        return 2
    paths = args.paths or [scenarios_dir()]
    try:
        loaded = load_scenarios(paths)
    except ScenarioLoadError as exc:
        print("isobench run: invalid scenario file(s), nothing was run:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    if not loaded:
        print(f"isobench run: no scenario files in {', '.join(map(str, paths))}", file=sys.stderr)
        return 1

    names = list(dict.fromkeys(args.backends)) if args.backends else known
    probed = registry.probe(names)
    backends = {n: p.backend for n, p in probed.items() if p.backend is not None}
    availability = {n: p.availability for n, p in probed.items()}
    for name, avail in availability.items():
        if not avail.ok:
            hint = f" (enable: {avail.hint})" if avail.hint else ""
            print(f"backend {name} unavailable: {avail.reason}{hint}", file=sys.stderr)
    usable = {n: b for n, b in backends.items() if availability[n].ok}
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    items = plan([entry.scenario for entry in loaded], usable, args.repeat, seed)
    if not items:
        print(
            "isobench run: nothing to run (no available backend applies to these scenarios)",
            file=sys.stderr,
        )
        return 1

    out_dir = args.out or results_dir()
    try:
        with _progress(plain=args.plain) as progress:
            result = execute_run(
                loaded,
                items,
                backends,
                availability,
                out_dir,
                progress=progress,
                order=order_facts(items, seed, usable),
            )
    except StorageError as exc:  # the run directory could not even be created
        print(f"isobench run: {exc}; nothing was run", file=sys.stderr)
        return 1
    print(f"order seed: {seed} (replay with --seed {seed})", file=sys.stderr)
    if result.error:
        print(
            f"isobench run: {result.error}; the run stopped after {result.samples} samples, kept "
            f"in {result.run_dir / SAMPLES_JSONL} (the run is incomplete)",
            file=sys.stderr,
        )
        return 1
    print(f"run {result.state}: {result.samples} samples", file=sys.stderr)
    print(f"run directory: {result.run_dir}", file=sys.stderr)
    print(result.run_dir)
    return 130 if result.interrupted else 0


# -- progress ------------------------------------------------------------------------------


def _last_value(samples: Sequence[Sample]) -> str:
    if not samples:
        return ""
    bad = [s for s in samples if s.status != "ok"]
    if bad:
        return f"{bad[0].status}: {bad[0].reason}"
    first = samples[0]
    return f"{first.metric}={first.value:.4g} {first.unit}".rstrip()


class PlainProgress:
    """One line per repetition, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._where = ""

    def message(self, text: str) -> None:
        """Print a status line."""
        print(text, file=self.stream, flush=True)

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Remember the position for the end line."""
        self._where = f"[{position}/{total}]"

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """Print the repetition and its first value (or why it has none)."""
        print(f"{self._where} {item.describe()}: {_last_value(samples)}", file=self.stream)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()


class RichProgress:
    """A rich progress bar on a terminal: scenario, backend/variant, rep i/n, last value."""

    def __init__(self) -> None:

        self.console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.bar.add_task("starting", total=None, last="")

    def message(self, text: str) -> None:
        """Print a status line above the bar."""
        self.bar.console.print(text, markup=False, highlight=False)

    def begin(self, item: PlannedItem, position: int, total: int) -> None:
        """Show the repetition about to run."""
        self.bar.update(self.task, description=item.describe(), total=total, completed=position - 1)

    def end(self, item: PlannedItem, samples: Sequence[Sample]) -> None:
        """Advance and show its first value."""
        self.bar.update(self.task, advance=1, last=_last_value(samples))

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _progress(*, plain: bool) -> PlainProgress | RichProgress:
    if plain or not sys.stderr.isatty():
        return PlainProgress(sys.stderr)
    return RichProgress()

"""``isobench plan``: what ``isobench run`` would do and how long it should take (a dry run)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.commands import common
from bench.paths import results_dir

if TYPE_CHECKING:
    from bench.run.estimate import Estimate

DESCRIPTION = """\
Show the plan of a run without running anything: one line per scenario x backend x variant
with its warm-ups and measured repetitions (adaptive ones as MIN..MAX), the expected seconds
per repetition and for the whole item, and the total.

Expected times come from previous runs of THIS host (same host fingerprint) found under
--out (default ./results): the median wall time per repetition of the same scenario,
backend and variant, plus its prepare/teardown time. Items never measured here get a stated
default derived from the workload's parameters and each backend's typical cost (column
"from": history or default; see docs/report.md). Unavailable backends are listed with the
reason; they are not part of the plan.

Takes the same options as `isobench run` and prints the same plan as `isobench run --dry-run`.
"""

EPILOG = f"""\
examples:
  isobench plan                                  the default suite (./scenarios)
  isobench plan --profile quick -k '!vagrant'    the CI smoke test without VMs
  isobench plan scenarios/syscall.yaml --precision 2% --json
  isobench plan --include-unavailable            the whole suite, before `isobench env build`

{common.EXIT_STATUS}"""


def register(sub: Any) -> None:
    """Add the ``plan`` subcommand."""
    parser = common.add_command(
        sub,
        "plan",
        help="show what `run` would do and how long it should take (a dry run)",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    common.add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable plan")
    parser.add_argument(
        "--include-unavailable",
        action="store_true",
        help="also plan the backends that are not available here (marked in the 'from' "
        "column): the estimate of the whole suite before `env build`, or for a similar host",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the plan; 0 when there is something to run."""
    planned = common.make_plan(args)
    if isinstance(planned, int):
        return planned
    return show(args, planned)


def estimates_for(args: argparse.Namespace, planned: common.Planned) -> list[Estimate]:
    """Estimates of every plan row from this host's history under --out."""
    from bench.run.estimate import estimate, load_history  # noqa: PLC0415
    from bench.run.plan import plan_rows  # noqa: PLC0415
    from bench.sysinfo import host_identity  # noqa: PLC0415

    out_dir: Path = args.out or results_dir()
    history = load_history(out_dir, host_identity()["fingerprint"])
    return estimate(plan_rows(planned.items, planned.usable), history)


def show(args: argparse.Namespace, planned: common.Planned) -> int:
    """Print the plan (text or JSON) of ``planned``; 1 when nothing would run."""
    estimates = estimates_for(args, planned)
    down = {n for n, a in planned.availability.items() if not a.ok}
    estimates = [
        replace(e, source=f"{e.source}, unavailable") if e.row.backend in down else e
        for e in estimates
    ]
    if getattr(args, "json", False):
        print(json.dumps(as_json(estimates, planned), indent=2))
    else:
        common.report_unavailable(planned, sys.stdout)
        sys.stdout.write(render(estimates, args.profile))
    if not planned.items:
        return common.failure(args, "nothing to run: no available backend applies")
    return common.OK


def _reps(estimate: Estimate) -> str:
    row = estimate.row
    return f"{row.repetitions}..{row.cap}" if row.cap > row.repetitions else str(row.repetitions)


def render(estimates: list[Estimate], profile: str) -> str:
    """The plan as an aligned text table with a total line."""
    from bench.run.estimate import duration, totals  # noqa: PLC0415

    header = ["scenario", "backend", "variant", "warm-up", "reps", "s/rep", "setup", "expected"]
    header.append("from")
    rows = [
        [
            e.row.scenario.name,
            e.row.backend,
            e.row.variant,
            str(e.row.warmups),
            _reps(e),
            f"{e.per_rep:.2f}",
            f"{e.setup:.1f}",
            duration(e.seconds)
            + (f" .. {duration(e.seconds_max)}" if e.row.cap > e.row.repetitions else ""),
            e.source,
        ]
        for e in estimates
    ]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    low, high = totals(estimates)
    items = sum(e.row.warmups + e.row.repetitions for e in estimates)
    known = sum(e.source.startswith("history") for e in estimates)
    total = f"total ({profile} profile): {len(estimates)} items, {items} repetitions, "
    total += f"expected {duration(low)}"
    if high > low:
        total += f" (up to {duration(high)} if every adaptive item reaches its cap)"
    total += f"; {known} of {len(estimates)} items estimated from this host's previous runs"
    return "\n".join([*lines, total]) + "\n"


def as_json(estimates: list[Estimate], planned: common.Planned) -> dict[str, Any]:
    """The plan as a JSON document."""
    from bench.run.estimate import totals  # noqa: PLC0415

    low, high = totals(estimates)
    return {
        "items": [
            {
                "scenario": e.row.scenario.name,
                "backend": e.row.backend,
                "variant": e.row.variant,
                "warmups": e.row.warmups,
                "repetitions": e.row.repetitions,
                "max_repetitions": e.row.cap,
                "seconds_per_repetition": e.per_rep,
                "setup_seconds": e.setup,
                "expected_seconds": e.seconds,
                "expected_seconds_max": e.seconds_max,
                "source": e.source,
            }
            for e in estimates
        ],
        "unavailable": {
            name: {"reason": a.reason, "hint": a.hint}
            for name, a in planned.availability.items()
            if not a.ok
        },
        "expected_seconds": low,
        "expected_seconds_max": high,
    }

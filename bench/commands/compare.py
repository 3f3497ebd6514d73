"""`isobench compare BASE_RUN [BASE_RUN ...] NEW_RUN [--threshold 5%]`: the regression gate.

Exit status: 0 no gated regression, 1 at least one regression whose interval lies beyond the
threshold, 2 bad input (missing run, unreadable samples, scenario definitions that changed,
runs from different hosts without --allow-host-change, a run that is not complete unless
``--allow-incomplete``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.commands import common

if TYPE_CHECKING:
    import pandas as pd

    from bench.compare import HostCheck
    from bench.results import LoadedRun

FORMATS = ("text", "markdown", "json")


def _threshold(text: str) -> float:
    from bench import compare  # noqa: PLC0415 - keep CLI start-up light

    try:
        return compare.parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any) -> None:
    """Add the `compare` subcommand."""
    parser = common.add_command(
        sub,
        "compare",
        help="compare runs against a baseline; exit 1 on a regression beyond the threshold",
        description="""\
Compare NEW_RUN against one or more BASE_RUNs (a directory holding run directories counts as
all of them) per scenario/backend/variant/metric. Gated: the overhead ratios measured within
each run (container/native, VM/native) and, when every run comes from one host, the raw
medians. A change counts when its interval (the run is the unit when a side has several
runs; Bonferroni within each metric family) lies entirely beyond --threshold. Every row
shows the smallest change the data could detect and, when that exceeds the threshold, the n
it would need. Exit 1 on a regression, 0 otherwise, 2 on bad input (including a run that did
not complete: interrupted, killed, still running) or a change of host.
""",
        epilog="""\
Both sides' sample counts (measured, warm-up, failed, skipped) are printed on stderr, the
same count `run` and `report` print.

examples:
  isobench compare results/BASE results/NEW                    text table, gate on 5%
  isobench compare results/nightly/ results/NEW                rolling baseline: every run in it
  isobench compare results/BASE results/NEW --threshold 10% --format markdown -o cmp.md

exit status:
  0    no regression beyond the threshold
  1    at least one regression whose interval lies beyond the threshold
  2    bad input: missing run directory, unreadable samples, an incomplete run, changed
       scenarios, runs from different hosts (without --allow-host-change), a bad option
""",
    )
    parser.add_argument("base", type=Path, nargs="+", metavar="BASE_RUN")
    parser.add_argument("new", type=Path, metavar="NEW_RUN")
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default="5%",
        help="smallest relative change that matters: 5%% or 0.05 (default 5%%)",
    )
    parser.add_argument(
        "--allow-host-change",
        action="store_true",
        help="runs from different hosts: gate the within-run ratios only, show raw medians",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="default: text")
    parser.add_argument("-o", "--output", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="compare runs that did not complete (interrupted, killed, still running) instead "
        "of refusing them with exit status 2",
    )
    parser.set_defaults(func=run)


def _run_dirs(paths: list[Path]) -> list[Path]:
    """Each path, or the run directories directly inside it; raises on a missing path."""
    from bench import results  # noqa: PLC0415 - keep CLI start-up light

    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            msg = f"no such run directory: {path}"
            raise FileNotFoundError(msg)
        markers = (results.SAMPLES_PARQUET, results.SAMPLES_JSONL)
        if any((path / m).exists() for m in markers):
            found.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if any((p / m).exists() for m in markers))
        if not inner:
            msg = f"{path}: not a run directory and holds none"
            raise FileNotFoundError(msg)
        found.extend(inner)
    return found


def run(args: argparse.Namespace) -> int:
    """Compare the runs and return the gate's exit status."""
    from bench import compare  # noqa: PLC0415 - keep CLI start-up light

    problem = common.missing_paths(args, [*args.base, args.new], "run directory")
    if problem is not None:
        return problem
    sides = _read_sides(args)
    if sides is None:
        return 2
    base_runs, new_runs = sides
    base, new = _frame("base", base_runs), _frame("new", new_runs)
    hosts = _comparable(base, new, base_runs, new_runs, args.allow_host_change)
    if hosts is None:
        return 2
    table = compare.compare(base, new, args.threshold, gate_medians=hosts.same)
    return _gate(table, args, len(base_runs), len(new_runs))


def _read_sides(args: argparse.Namespace) -> tuple[list[LoadedRun], list[LoadedRun]] | None:
    """Both sides' runs; None (the reason printed) when one is unreadable or refused."""
    from bench import results  # noqa: PLC0415 - keep CLI start-up light

    try:
        base_dirs, new_dirs = _run_dirs(args.base), _run_dirs([args.new])
        base_runs = [results.read_run(p) for p in base_dirs]
        new_runs = [results.read_run(p) for p in new_dirs]
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"isobench compare: {exc}", file=sys.stderr)
        return None
    roles = ["BASE_RUN"] * len(base_runs) + ["NEW_RUN"] * len(new_runs)
    if _refuse_incomplete([*base_runs, *new_runs], roles, allow=args.allow_incomplete):
        return None
    return base_runs, new_runs


def _frame(label: str, runs: list[LoadedRun]) -> pd.DataFrame:
    """One side's samples in one frame; its row counts go to stderr."""
    import pandas as pd  # noqa: PLC0415 - keep CLI start-up light

    from bench import results  # noqa: PLC0415 - keep CLI start-up light

    frame = pd.concat([r.frame for r in runs], ignore_index=True)
    print(f"{label}: {results.count_frame(frame).describe()}", file=sys.stderr)
    return frame


def _comparable(
    base: pd.DataFrame,
    new: pd.DataFrame,
    base_runs: list[LoadedRun],
    new_runs: list[LoadedRun],
    allow_host_change: bool,
) -> HostCheck | None:
    """The host check; None (the reason printed) for changed scenarios or a refused host."""
    from bench import compare  # noqa: PLC0415 - keep CLI start-up light

    mismatches = compare.hash_mismatches(base, new)
    if mismatches:
        for mismatch in mismatches:
            print(f"isobench compare: incompatible runs: {mismatch}", file=sys.stderr)
        return None
    hosts = compare.check_hosts(
        [r.environment for r in base_runs], [r.environment for r in new_runs]
    )
    for note in hosts.notes:
        print(f"isobench compare: note: {note}", file=sys.stderr)
    if not hosts.same:
        print("isobench compare: the runs come from different hosts:", file=sys.stderr)
        for fact in hosts.differences:
            print(f"  {fact}", file=sys.stderr)
        if not allow_host_change:
            print(
                "isobench compare: raw medians of different hosts are not comparable; "
                "pass --allow-host-change to gate on the within-run overhead ratios only",
                file=sys.stderr,
            )
            return None
    return hosts


def _gate(table: pd.DataFrame, args: argparse.Namespace, n_base: int, n_new: int) -> int:
    """Print the table (and write ``-o``), then the verdict's summary; the exit status."""
    from bench import compare  # noqa: PLC0415 - keep CLI start-up light

    text = render(table, args.format, args.threshold)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    if not bool(table["gated"].any()):
        print(
            "isobench compare: the runs share no gateable metric (see the notes above)",
            file=sys.stderr,
        )
        return 2
    regressions = int((table["verdict"] == "regression").sum())
    print(
        f"\n{regressions} regression(s) beyond {args.threshold:.1%}; "
        f"{int((table['verdict'] == 'improvement').sum())} improvement(s); "
        f"{int(table['gated'].sum())} gated comparisons of {len(table)} "
        f"({n_base} base run(s), {n_new} new run(s))",
        file=sys.stderr,
    )
    return 1 if compare.has_regression(table) else 0


def _refuse_incomplete(runs: list[Any], roles: list[str], *, allow: bool) -> bool:
    """Print the loader's notes; True when a run is incomplete and that is not allowed."""
    refused = False
    for role, run in zip(roles, runs, strict=True):
        for note in run.notes:
            print(f"isobench compare: {role} {run.path}: {note}", file=sys.stderr)
        if not run.complete and not allow:
            print(
                f"isobench compare: {role} {run.path} is {run.state}, not complete: refusing to "
                "compare it (--allow-incomplete to compare it anyway)",
                file=sys.stderr,
            )
            refused = True
    return refused


HEADER = (
    "kind",
    "scenario",
    "backend",
    "variant",
    "metric",
    "base",
    "new",
    "change",
    "interval",
    "coverage",
    "run spread",
    "detectable",
    "verdict",
)


def _cells(r: dict[str, Any]) -> list[str]:
    from bench.report import format as fmt  # noqa: PLC0415 - keep CLI start-up light

    def number(x: Any) -> float:
        return float(x) if x is not None and not _missing(x) else math.nan

    unit, ratio = str(r["unit"]), r["kind"] == "ratio"

    def shown(x: Any, n: Any, runs: Any) -> str:
        text = fmt.ratio(number(x)) if ratio else fmt.value(number(x), unit)
        return f"{text} (n={n}{f', {runs} runs' if runs > 1 else ''})"

    low, high = number(r["change_low"]), number(r["change_high"])
    interval = f"[{fmt.percent(low)}, {fmt.percent(high)}]" if math.isfinite(low) else fmt.DASH
    confidence = number(r["confidence"])
    coverage = f"{confidence:.1%} {r['basis']}" if math.isfinite(confidence) else fmt.DASH
    spread = number(r["between_spread"])
    verdict = str(r["verdict"])
    return [
        str(r["kind"]),
        str(r["scenario"]),
        str(r["backend"]),
        str(r["variant"]),
        str(r["metric"]),
        shown(r["base"], r["n_base"], r["runs_base"]),
        shown(r["new"], r["n_new"], r["runs_new"]),
        fmt.percent(number(r["change"])),
        interval,
        coverage,
        f"±{spread:.1%}" if math.isfinite(spread) else fmt.DASH,
        f"{number(r['detectable']):.1%}" if math.isfinite(number(r["detectable"])) else fmt.DASH,
        verdict.upper() if verdict == "regression" else verdict,
    ]


def _missing(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def warnings(table: Any, threshold: float) -> list[str]:
    """One line per comparison that cannot see the threshold, and per row note."""
    lines = []
    for r in table.to_dict("records"):
        name = f"{r['kind']} {r['scenario']}/{r['backend']}[{r['variant']}] {r['metric']}"
        detectable = r["detectable"]
        if r["gated"] and not _missing(detectable) and detectable > threshold:
            needed = r["needed_n"]
            if not _missing(needed):
                how = f"needs n >= {int(needed)} per run"
            elif str(r["basis"]).startswith("within"):
                how = "needs more than 1000 samples per run"
            else:
                how = "run-to-run spread alone exceeds it: needs more runs, not more samples"
            lines.append(
                f"{name}: cannot see {threshold:.0%} here (detects {detectable:.0%}); {how}"
            )
        if r["note"]:
            lines.append(f"{name}: {r['note']}")
    return lines


def render(table: Any, fmt_name: str, threshold: float) -> str:
    """The comparison table as aligned text, GitHub markdown or JSON."""
    if fmt_name == "json":
        return str(table.to_json(orient="records", indent=2)) + "\n"
    from bench.report import format as fmt  # noqa: PLC0415 - keep CLI start-up light

    rows = [_cells(r) for r in table.to_dict("records")]
    legend = (
        f"Threshold {threshold:.1%}. A change counts when its interval lies beyond it. "
        "coverage: the interval's confidence (Bonferroni within each metric family) and its "
        "noise: 'within-run' = samples of one run only (a rerun may differ by more), "
        "'between-run' = the run is the unit. detectable: smallest change the data tell "
        "from none (80 % power). ratio = overhead vs native within each run."
    )
    notes = warnings(table, threshold)
    if fmt_name == "markdown":
        lines = [legend, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(fmt.markdown_cell(c) for c in row) + " |" for row in rows]
        lines += ["", *(f"- {fmt.markdown_cell(n)}" for n in notes)] if notes else []
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADER)]
    out = [legend, ""]
    out.append("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    out += ["", *(f"warning: {n}" for n in notes)] if notes else []
    return "\n".join(out) + "\n"

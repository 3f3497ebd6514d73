"""`isobench compare BASE_RUN NEW_RUN [--threshold 5%]`: the CI regression gate.

Exit status: 0 no significant regression, 1 at least one significant regression beyond the
threshold, 2 bad input (missing run, unreadable samples, scenario definitions that changed, a
run that is not complete unless ``--allow-incomplete``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from bench.commands import common

FORMATS = ("text", "markdown", "json")


def register(sub: Any) -> None:
    """Add the `compare` subcommand."""
    parser = sub.add_parser(
        "compare",
        help="compare two runs; exit 1 on a significant regression",
        description="Compare NEW_RUN against BASE_RUN per scenario/backend/variant/metric. "
        "A change counts only when it exceeds --threshold AND a two-sided Mann-Whitney U "
        "test gives p < 0.05 after Benjamini-Hochberg adjustment across the comparisons. "
        "Exit 1 on a significant regression, 0 otherwise, 2 on bad input (including a run "
        "that did not complete: interrupted, killed, still running).",
        epilog="""\
Both runs' sample counts (measured, warm-up, failed, skipped) are printed on stderr, the
same count `run` and `report` print.

examples:
  isobench compare results/BASE results/NEW                    text table, gate on 5%
  isobench compare results/BASE results/NEW --threshold 10% --format markdown -o cmp.md

exit status:
  0    no significant regression beyond the threshold
  1    at least one significant regression
  2    bad input: missing run directory, unreadable samples, an incomplete run, changed
       scenarios, a bad option
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", type=Path, metavar="BASE_RUN")
    parser.add_argument("new", type=Path, metavar="NEW_RUN")
    parser.add_argument(
        "--threshold", default="5%", help="minimum relative change of the median (default 5%%)"
    )
    parser.add_argument(
        "--correction",
        choices=("bh", "none"),
        default="bh",
        help="multiple-comparison adjustment of the p-values (default: bh, Benjamini-Hochberg)",
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


def run(args: argparse.Namespace) -> int:
    """Compare the two runs and return the gate's exit status."""
    from bench import compare, results  # noqa: PLC0415 - keep CLI start-up light

    try:
        threshold = compare.parse_threshold(args.threshold)
    except ValueError as exc:
        print(f"isobench compare: {exc}", file=sys.stderr)
        return 2
    problem = common.missing_paths(args, [args.base, args.new], "run directory")
    if problem is not None:
        return problem
    try:
        runs = [results.read_run(args.base), results.read_run(args.new)]
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"isobench compare: {exc}", file=sys.stderr)
        return 2
    if _refuse_incomplete(runs, allow=args.allow_incomplete):
        return 2
    base, new = runs[0].frame, runs[1].frame
    for label, frame in (("base", base), ("new", new)):
        print(f"{label}: {results.count_frame(frame).describe()}", file=sys.stderr)
    mismatches = compare.hash_mismatches(base, new)
    if mismatches:
        for mismatch in mismatches:
            print(f"isobench compare: incompatible runs: {mismatch}", file=sys.stderr)
        return 2
    table = compare.compare(base, new, threshold, correction=args.correction)
    comparable = table[~table["verdict"].isin(["only in base", "only in new"])]
    if comparable.empty:
        print("isobench compare: the two runs share no measured metric", file=sys.stderr)
        return 2
    text = render(table, args.format, threshold)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    regressions = int((table["verdict"] == "regression").sum())
    print(
        f"\n{regressions} significant regression(s) beyond {threshold:.1%}; "
        f"{int((table['verdict'] == 'improvement').sum())} improvement(s); "
        f"{len(comparable)} comparisons",
        file=sys.stderr,
    )
    return 1 if compare.has_regression(table) else 0


def _refuse_incomplete(runs: list[Any], *, allow: bool) -> bool:
    """Print the loader's notes; True when a run is incomplete and that is not allowed."""
    refused = False
    for role, run in zip(("BASE_RUN", "NEW_RUN"), runs, strict=True):
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


def render(table: Any, fmt_name: str, threshold: float) -> str:
    """The comparison table as aligned text, GitHub markdown or JSON."""
    from bench.report import format as fmt  # noqa: PLC0415 - keep CLI start-up light

    if fmt_name == "json":
        return str(table.to_json(orient="records", indent=2)) + "\n"
    header = [
        "scenario",
        "backend",
        "variant",
        "metric",
        "base",
        "new",
        "change",
        "95% CI",
        "p",
        "q (BH)",
        "verdict",
    ]
    rows = []
    for r in table.to_dict("records"):
        unit = str(r["unit"])
        ci = (
            f"[{fmt.percent(r['change_low'])}, {fmt.percent(r['change_high'])}]"
            if math.isfinite(r["change_low"])
            else fmt.DASH
        )
        p_value = f"{r['p_value']:.3f}" if math.isfinite(r["p_value"]) else fmt.DASH
        q_value = f"{r['q_value']:.3f}" if math.isfinite(r["q_value"]) else fmt.DASH
        rows.append(
            [
                str(r["scenario"]),
                str(r["backend"]),
                str(r["variant"]),
                str(r["metric"]),
                f"{fmt.value(r['base_median'], unit)} (n={r['n_base']})",
                f"{fmt.value(r['new_median'], unit)} (n={r['n_new']})",
                fmt.percent(r["change"]),
                ci,
                p_value,
                q_value,
                str(r["verdict"]).upper() if r["verdict"] == "regression" else str(r["verdict"]),
            ]
        )
    if fmt_name == "markdown":
        lines = [
            f"Threshold {threshold:.1%}; Mann-Whitney U, q (adjusted p) < 0.05",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(fmt.markdown_cell(c) for c in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out) + "\n"

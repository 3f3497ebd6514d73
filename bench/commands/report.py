"""`isobench report RUN_DIR... -o FILE`: the self-contained HTML report or a summary export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

FORMATS = ("html", "csv", "markdown", "json")
_SUFFIX = {"html": ".html", "csv": ".csv", "markdown": ".md", "json": ".json"}


def register(sub: Any) -> None:
    """Add the `report` subcommand."""
    parser = sub.add_parser(
        "report",
        help="build the HTML report (or csv/markdown/json summary) from run directories",
        description="Build one self-contained HTML report from one or more run directories "
        "(several hosts merge with the host as a dimension), or export the summary table.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="results/<run-id>")
    parser.add_argument(
        "-o", "--output", type=Path, help="output file (default: report.<ext>; '-' = stdout)"
    )
    parser.add_argument("--format", choices=FORMATS, default="html", help="default: html")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report; exit 2 when a run directory is missing or unreadable.

    A run whose harness died is consolidated from its journal first (said on stderr); every
    incomplete run is named on stderr and in a banner of the report.
    """
    from bench import report  # noqa: PLC0415 - pandas/matplotlib only when used

    missing = [str(p) for p in args.runs if not p.is_dir()]
    if missing:
        print(f"isobench report: no such run directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        frame, envs = report.load_runs(args.runs, consolidate=True)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"isobench report: {exc}", file=sys.stderr)
        return 2
    for env in envs:
        for note in env["load"]["notes"]:
            print(f"isobench report: {env['load']['path']}: {note}", file=sys.stderr)
    if args.format == "html":
        text = report.render_html(frame, envs)
    else:
        declared = report.declared_directions(envs)
        text = report.export_summary(report.summary_table(frame, declared=declared), args.format)
    if args.output is not None and str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    output = args.output or Path(f"report{_SUFFIX[args.format]}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"isobench report: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(output)
    return 0

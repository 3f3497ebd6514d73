"""`isobench report RUN_DIR...`: the self-contained HTML report or a summary export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.commands import common

FORMATS = ("html", "csv", "markdown", "json")
DESCRIPTION = """\
Build one self-contained HTML report from one or more run directories (several hosts merge
with the host as a dimension), or export the summary table (median, 95% CI, ratio to native
per scenario x backend x variant x metric) as csv, markdown or json.

Where it goes: with -o FILE, to FILE ('-' for stdout). Without -o, the HTML report of one
run goes into that run's directory (RUN_DIR/report.html) and text formats go to stdout.
An existing file is never overwritten unless --force is given.

The report shows every sample's fate: one count of measured, warm-up, failed and skipped
samples (the same count `run` and `compare` print), the failures with their reasons, where
the run's time went, and which adaptive items reached max_repeat.
"""
EPILOG = f"""\
examples:
  isobench report results/RUN                       writes results/RUN/report.html
  isobench report results/RUN --format markdown     the summary table on stdout
  isobench report results/A results/B -o both.html  two hosts or runs in one report

{common.EXIT_STATUS}"""


def register(sub: Any) -> None:
    """Add the `report` subcommand."""
    parser = common.add_command(
        sub,
        "report",
        help="build the HTML report (or csv/markdown/json summary) from run directories",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="results/<run-id>")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file ('-' = stdout; default: RUN_DIR/report.html for html, stdout else)",
    )
    parser.add_argument("--format", choices=FORMATS, default="html", help="default: html")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def _target(args: argparse.Namespace) -> Path | int | None:
    """Where to write (None: stdout), or a usage-error exit status."""
    if args.output is not None:
        target: Path | None = None if str(args.output) == "-" else args.output
    elif args.format != "html":
        target = None
    elif len(args.runs) == 1:
        target = args.runs[0] / "report.html"
    else:
        return common.usage_error(args, "several run directories: name the report with -o FILE")
    if target is not None and common.exists(target) and not args.force:
        return common.usage_error(
            args, f"{target} exists; pass --force to overwrite it, or another -o FILE"
        )
    return target


def run(args: argparse.Namespace) -> int:
    """Write the report; exit 2 when a run directory is missing or unreadable.

    A run whose harness died is consolidated from its journal first (said on stderr); every
    incomplete run is named on stderr and in a banner of the report.
    """
    problem = common.missing_paths(args, args.runs, "run directory")
    if problem is not None:
        return problem
    target = _target(args)
    if isinstance(target, int):
        return target
    from bench import report  # noqa: PLC0415 - pandas/matplotlib only when used
    from bench.results import count_frame  # noqa: PLC0415

    try:
        frame, envs = report.load_runs(args.runs, consolidate=True)
    except (FileNotFoundError, ValueError, OSError) as exc:
        return common.failure(args, str(exc), common.USAGE)
    for env in envs:
        for note in env["load"]["notes"]:
            print(f"isobench report: {env['load']['path']}: {note}", file=sys.stderr)
    if args.format == "html":
        text = report.render_html(frame, envs)
    else:
        declared = report.declared_directions(envs)
        text = report.export_summary(report.summary_table(frame, declared=declared), args.format)
    print(f"report: {count_frame(frame).describe()}", file=sys.stderr)
    if target is None:
        sys.stdout.write(text)
        return common.OK
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        return common.failure(args, f"cannot write {target}: {exc.strerror or exc}")
    print(target)
    return common.OK

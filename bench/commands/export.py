"""`isobench export --format pytest-benchmark RUN_DIR -o FILE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.commands import common


def register(sub: Any) -> None:
    """Add the `export` subcommand."""
    parser = common.add_command(
        sub,
        "export",
        help="export a run for other tools (pytest-benchmark JSON)",
        description="""\
Write a run as pytest-benchmark JSON: readable by `pytest-benchmark compare` and by
benchmark-action/github-action-benchmark (tool: pytest). Every metric is exported
lower-is-better: throughputs become seconds per operation.
""",
        epilog=f"""\
examples:
  isobench export results/RUN                        JSON on stdout
  isobench export results/RUN -o bench.json          to a file (refused if it exists)
  isobench export results/RUN -o bench.json --force

{common.EXIT_STATUS}""",
    )
    parser.add_argument("run", type=Path, metavar="RUN_DIR")
    parser.add_argument("--format", choices=("pytest-benchmark",), default="pytest-benchmark")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the export; exit 2 on a missing or unreadable run."""
    from bench import export, results  # noqa: PLC0415 - keep CLI start-up light

    problem = common.missing_paths(args, [args.run], "run directory")
    if problem is not None:
        return problem
    if args.output is not None and common.exists(args.output) and not args.force:
        return common.usage_error(args, f"{args.output} exists; pass --force to overwrite it")
    try:
        loaded = results.read_run(args.run)
    except (FileNotFoundError, ValueError, OSError) as exc:
        return common.failure(args, str(exc), common.USAGE)
    for note in loaded.notes:
        print(f"isobench export: {args.run}: {note}", file=sys.stderr)
    document = export.to_pytest_benchmark(loaded.frame, loaded.environment)
    text = json.dumps(document, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            return common.failure(args, f"cannot write {args.output}: {exc.strerror or exc}")
        print(args.output)
    return 0

"""`isobench export --format pytest-benchmark RUN_DIR -o FILE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the `export` subcommand."""
    parser = sub.add_parser(
        "export",
        help="export a run for other tools (pytest-benchmark JSON)",
        description="Write a run as pytest-benchmark JSON: readable by `pytest-benchmark "
        "compare` and by benchmark-action/github-action-benchmark (tool: pytest). Every "
        "metric is exported lower-is-better: throughputs become seconds per operation.",
    )
    parser.add_argument("run", type=Path, metavar="RUN_DIR")
    parser.add_argument("--format", choices=("pytest-benchmark",), default="pytest-benchmark")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the export; exit 2 on a missing or unreadable run."""
    from bench import export, results  # noqa: PLC0415 - keep CLI start-up light

    if not args.run.is_dir():
        print(f"isobench export: no such run directory: {args.run}", file=sys.stderr)
        return 2
    try:
        loaded = results.read_run(args.run)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"isobench export: {exc}", file=sys.stderr)
        return 2
    for note in loaded.notes:
        print(f"isobench export: {args.run}: {note}", file=sys.stderr)
    document = export.to_pytest_benchmark(loaded.frame, loaded.environment)
    text = json.dumps(document, indent=2) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(args.output)
    return 0

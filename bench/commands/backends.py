"""`isobench backends`: every registered backend, whether it can run here, and how to enable it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import backends as registry
from bench.commands import common


def register(sub: Any) -> None:
    """Add the `backends` subcommand."""
    parser = common.add_command(
        sub,
        "backends",
        help="list backends, whether each is available here, and how to enable it",
        description="List every registered backend with its availability on this host, the "
        "reason when it is unavailable and the command that enables it. Exit status 0 even "
        "when some are unavailable.",
        epilog="""\
examples:
  isobench backends                       a table (plain text when piped)
  isobench backends --json | jq '.docker'
""",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON)."""
    rows = [(name, p.availability) for name, p in registry.probe().items()]
    if args.json:
        data = {n: {"available": a.ok, "reason": a.reason, "hint": a.hint} for n, a in rows}
        print(json.dumps(data, indent=2))
        return 0
    if sys.stdout.isatty():
        table = Table("backend", "available", "reason", "enable with")
        for name, avail in rows:
            mark = "[green]yes[/]" if avail.ok else "[red]no[/]"
            table.add_row(name, mark, avail.reason or "-", avail.hint or "-")
        Console().print(table)
        return 0
    width = max(len(name) for name, _ in rows)
    print(f"{'backend':<{width}}  available  reason / enable with")
    for name, avail in rows:
        detail = avail.reason or "-"
        if avail.hint:
            detail += f"  (enable: {avail.hint})"
        print(f"{name:<{width}}  {'yes' if avail.ok else 'no':<9}  {detail}")
    return 0

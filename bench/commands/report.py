"""`isobench report` (placeholder until implemented)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `report` subcommand."""
    parser = sub.add_parser("report", help="(not implemented yet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Not implemented yet."""
    raise NotImplementedError("report")

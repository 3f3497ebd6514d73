"""`isobench publish RESULTS... -o report/`: the static site of many runs and hosts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.commands import common

EPILOG = """\
examples:
  isobench publish results/                 every run under results/ -> report/index.html
  isobench publish results/ ci-artifacts/*/ -o site/ --title "nightly isolation costs"

The site is offline and self-contained (no script, no network): open report/index.html, or
publish the folder as it is (GitHub Pages: see docs/report.md). Rebuilding is incremental for
run reports: a run's report.html is copied once (or rendered once when the run has none).
"""


def register(sub: Any) -> None:
    """Add the `publish` subcommand."""
    parser = common.add_command(
        sub,
        "publish",
        help="build the static comparison site (history, hosts, trends) from many runs",
        description="Build a static site from run directories (or folders holding them): the "
        "latest comparison per host with its at-a-glance figure, a trend page per metric "
        "family (each backend's overhead ratio per run, with its CI, and the runs where "
        "`isobench compare` flagged a regression), hosts side by side, and every run's report.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="RESULTS", help="run directories or folders of them"
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("report"), help="site folder (default: report/)"
    )
    parser.add_argument("--title", default="isobench results", help="page title")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the site; exit 2 when nothing can be read."""
    from bench.report import site  # noqa: PLC0415 - pandas/matplotlib only when used

    try:
        pages = site.build_site(args.paths, args.output, args.title)
    except (FileNotFoundError, ValueError) as exc:
        print(f"isobench publish: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"isobench publish: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    for page in pages:
        print(page)
    return 0

"""``isobench validate [PATH...]``: check scenario files without running anything."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.commands import common

if TYPE_CHECKING:  # pydantic loads only when a file is validated (fast --help)
    from bench.scenario.loader import FileResult

EPILOG = f"""\
Each valid file prints "ok NAME (HASH) PATH" on stdout. Each problem prints
"PATH:LINE:COLUMN: FIELD: what was expected" on stderr; --json prints one document with
path, ok, name, hash and every error's line, column, field and message. Every number is
checked to be finite and within sane bounds (repeat <= 10,000, timeouts <= a day, ...).

validate guards the FORMAT of a scenario, not its intent: a scenario file is code (a
`command` workload runs any program as root on the host; docker network `host` shares the
host's network). Read a scenario before you run it, as you would a Makefile. The format is
documented in scenarios/README.md.

examples:
  isobench validate                     every *.yaml under ./scenarios
  isobench validate my.yaml other/      files and directories
  isobench validate --json my.yaml | jq '.files[].errors'

{common.EXIT_STATUS}"""


def register(sub: Any) -> None:
    """Add the `validate` subcommand."""
    parser = common.add_command(
        sub,
        "validate",
        help="check scenario files (file, line, field and what was expected)",
        description="Validate scenario files (format v1) and report every problem found.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="scenario file or directory of *.yaml files (default: ./scenarios)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    parser.set_defaults(func=run)


def _as_json(results: list[FileResult]) -> str:
    files = []
    for result in results:
        entry: dict[str, Any] = {"path": str(result.path), "ok": not result.errors}
        if result.loaded is not None and not result.errors:
            entry["name"] = result.loaded.scenario.name
            entry["hash"] = result.loaded.scenario.hash
        entry["errors"] = [
            {"line": e.line, "column": e.column, "field": e.field, "message": e.message}
            for e in result.errors
        ]
        files.append(entry)
    return json.dumps({"ok": all(f["ok"] for f in files), "files": files}, indent=2)


def _check_requirements(results: list[FileResult]) -> None:
    """Add an error for each ``requires`` package the built guest environment lacks."""
    from bench.envbuild.rootfs import requirement_problems  # noqa: PLC0415
    from bench.scenario.loader import ScenarioError  # noqa: PLC0415

    for result in results:
        if result.loaded is None or result.errors:
            continue
        scenario = result.loaded.scenario
        for index, message in requirement_problems(
            scenario.requires, scenario.backends, result.path
        ):
            where = ("requires", index) if ("requires", index) in result.lines else ("requires",)
            result.errors.append(
                ScenarioError(
                    result.path,
                    result.lines.get(where),
                    f"requires[{index}]",
                    message,
                    result.columns.get(where),
                )
            )


def run(args: argparse.Namespace) -> int:
    """Validate the given files/directories; 0 if all are valid, 1 if not, 2 on usage errors."""
    given = common.scenario_paths(args, args.paths)
    if isinstance(given, int):
        return given
    from bench.scenario.loader import check_paths  # noqa: PLC0415

    results = check_paths(given)
    _check_requirements(results)
    if args.json:
        print(_as_json(results))
    else:
        for result in results:
            if result.loaded is not None and not result.errors:
                scenario = result.loaded.scenario
                print(f"ok {scenario.name} ({scenario.hash}) {result.path}")
            for error in result.errors:
                print(f"error: {error}", file=sys.stderr)
    bad = [r for r in results if r.errors]
    if bad:
        count = sum(len(r.errors) for r in bad)
        print(
            f"{count} error(s) in {len(bad)} of {len(results)} file(s)",
            file=sys.stderr,
        )
        return 1
    return 0

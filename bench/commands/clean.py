"""`isobench clean`: list what killed runs left behind; remove what is provably ours (--yes)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from bench import ownership
from bench.commands import common

EXPLAIN = """\
Lists every container, volume and network labelled isobench, every isobench VM (libvirt
domain, pool volume, VM directory) and every scratch directory, with its owner's state.
Only leftovers of THIS host whose owner process is provably dead (its pid no longer runs with
the recorded start time, or the host has rebooted since) are removed, and only with --yes.
Anything without an isobench owner token, made on another host, or by a harness in another
pid namespace is listed and never removed: remove it by hand if it is yours.
"""


def register(sub: Any) -> None:
    """Add the `clean` subcommand."""
    parser = common.add_command(
        sub,
        "clean",
        help="list leftovers of killed runs; remove those provably ours with --yes",
        description=EXPLAIN,
        epilog="""\
examples:
  isobench clean                   list leftovers and whose they are; remove nothing
  isobench clean --yes             remove those of this host whose owner is dead
  isobench clean --json | jq '.leftovers[] | select(.action == "would remove")'
""",
    )
    parser.add_argument(
        "--yes", action="store_true", help="remove the leftovers whose owner is dead"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def _docker() -> list[ownership.Leftover]:
    from bench.backends.docker.support import leftovers  # noqa: PLC0415 - needs the SDK
    from bench.envbuild.image import connect  # noqa: PLC0415

    client = connect(5)
    try:
        return leftovers(client)
    finally:
        client.close()


def _vagrant() -> list[ownership.Leftover]:
    from bench.backends.vagrant.vm import leftovers  # noqa: PLC0415

    return leftovers()


SOURCES: dict[str, Callable[[], list[ownership.Leftover]]] = {
    "scratch": ownership.scratch_leftovers,
    "docker": _docker,
    "vagrant": _vagrant,
}


def _action(item: ownership.Leftover, apply: bool) -> str:
    state = item.verdict.state
    if state == "alive":
        return "kept (owner running)"
    if state != "dead":
        return "kept (not provably ours)"
    if not apply:
        return "would remove"
    result = ownership.sweep([item])
    return "removed" if result.removed else "FAILED " + "; ".join(result.failed)


def run(args: argparse.Namespace) -> int:
    """Collect leftovers from every source, act on them, print one line each."""
    rows: list[dict[str, str]] = []
    skipped: dict[str, str] = {}
    for source, collect in SOURCES.items():
        try:
            items = collect()
        except Exception as exc:  # an engine that is not there has nothing to clean
            skipped[source] = f"{type(exc).__name__}: {exc}"
            continue
        for item in items:
            rows.append(
                {
                    "source": source,
                    "kind": item.kind,
                    "name": item.name,
                    "state": item.verdict.state,
                    "why": item.verdict.reason,
                    "action": _action(item, args.yes),
                }
            )
    if args.json:
        print(json.dumps({"leftovers": rows, "skipped": skipped}, indent=2))
    else:
        _print(rows, skipped, args.yes)
    return 1 if any(row["action"].startswith("FAILED") for row in rows) else 0


def _print(rows: list[dict[str, str]], skipped: dict[str, str], applied: bool) -> None:
    for source, why in skipped.items():
        print(f"{source}: not checked ({why})")
    if not rows:
        print("no leftovers")
        return
    for row in rows:
        print(f"{row['action']:<26} {row['kind']:<18} {row['name']}  ({row['why']})")
    pending = sum(row["action"] == "would remove" for row in rows)
    if pending and not applied:
        print(f"{pending} leftover(s) of dead runs would be removed: isobench clean --yes")

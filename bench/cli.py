"""``isobench`` command line: one module per subcommand under :mod:`bench.commands`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Final

from bench import __version__
from bench.procgroup import sigterm_as_interrupt, stop_signals_held

#: Subcommand modules, in --help order. Each defines ``register(subparsers)``, which adds its
#: parser and sets ``func`` (a callable taking the parsed args and returning an exit status).
COMMANDS: Final = (
    "run",
    "plan",
    "validate",
    "report",
    "compare",
    "export",
    "publish",
    "backends",
    "env",
    "provision",
    "clean",
)

#: Modules a command imports that must not be cut by Ctrl-C or SIGTERM. A KeyboardInterrupt
#: raised inside an extension module's initialisation or pydantic's schema building does not
#: stay a KeyboardInterrupt: pydantic wraps it in a SchemaError (exit 1 with its text), and
#: CPython marks it "unhandled" when it lands in code run through PyRun_String (Cython module
#: init), so the process later dies by SIGINT whatever it returns. Both were seen with a
#: SIGTERM 0.35-0.5 s after start. Imported with the stop signals held (noted, raised after).
HEAVY_IMPORTS: Final = {
    "run": ("bench.scenario.model", "pandas", "pyarrow.parquet"),
    "plan": ("bench.scenario.model",),
    "validate": ("bench.scenario.model",),
    "report": ("pandas", "pyarrow.parquet"),
    "compare": ("pandas", "pyarrow.parquet"),
    "export": ("pandas", "pyarrow.parquet"),
    "publish": ("pandas", "pyarrow.parquet"),
}

DESCRIPTION = """\
What does isolation cost? isobench runs one workload, described once in a scenario YAML
file, natively, in Docker containers and in Vagrant VMs, and measures startup latency,
memory footprint, disk I/O and system-call throughput. Every sample is kept (results/<run-id>/)
and runs are turned into a self-contained HTML report.

typical use:
  isobench provision            install/start Docker and libvirt+Vagrant (root, Debian/Ubuntu)
  isobench env build            build the guest image and VM box offline (debootstrap)
  isobench run                  the scenarios directly in ./scenarios/ on every available backend
  isobench report results/RUN -o report.html
  isobench compare results/OLD results/NEW --threshold 5%
  isobench publish results/     the static site: latest per host, trends, every run
  isobench clean                list what killed runs left behind (--yes removes it)
"""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="isobench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"isobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"bench.commands.{name}")
        module.register(sub)
    _remember_parsers(sub)
    return parser


def _remember_parsers(action: Any) -> None:
    """Give every (sub)subcommand's namespace its own parser, for errors under its usage."""
    for child in action.choices.values():
        child.set_defaults(usage_parser=child)
        for nested in child._actions:
            if isinstance(nested, argparse._SubParsersAction):
                _remember_parsers(nested)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``isobench`` console script."""
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # shell completion: only when the shell asks
        import argcomplete  # noqa: PLC0415

        argcomplete.autocomplete(parser)
    args, extras = parser.parse_known_args(argv)
    if extras:
        # argparse would print these under the top-level usage; show the subcommand's
        where = getattr(args, "usage_parser", parser)
        where.error(f"unrecognized arguments: {' '.join(extras)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with sigterm_as_interrupt():  # from the first import on, SIGTERM stops like Ctrl-C
            with stop_signals_held():
                for name in HEAVY_IMPORTS.get(args.command, ()):
                    importlib.import_module(name)
            status: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


def entry() -> None:
    """The ``isobench`` console script and ``python -m bench``: :func:`main`, then exit.

    An interrupted command (130) leaves with ``os._exit`` once stdout and stderr are flushed:
    everything the run keeps is on disk by then, and a plain exit would let CPython turn an
    interrupt it saw inside an extension module into death by SIGINT (see HEAVY_IMPORTS).
    """
    status = main()
    if status == 130:  # the shell's status for an interrupted command
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)

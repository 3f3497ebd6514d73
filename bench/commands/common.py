"""What every subcommand shares: exit statuses, error messages, scenario paths, planning options.

Exit statuses, the same in every subcommand:

* 0 success;
* 1 the work itself failed: an invalid scenario file, an item without a single successful
  sample, a significant regression (``compare``), a write error;
* 2 bad input: an unknown option or value, a path that does not exist, no scenario files, a
  filter that selects nothing (printed under the subcommand's usage line), or result files
  that cannot be read;
* 130 interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench import backends as registry
from bench.paths import scenarios_dir

if TYPE_CHECKING:  # pydantic/pandas load only when a command runs (fast --help)
    from bench.backends.base import Backend
    from bench.run.plan import PlannedItem
    from bench.scenario.loader import LoadedScenario
    from bench.values import Availability

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130

EXIT_STATUS = """\
exit status:
  0    success
  1    the work failed (invalid scenario, an item without a successful sample, a write error)
  2    bad input: unknown option or value, missing path, nothing selected, unreadable results
  130  interrupted (Ctrl-C or SIGTERM)
"""


def add_command(
    sub: Any, name: str, *, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; its description and epilog keep their line breaks."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def prog(args: argparse.Namespace) -> str:
    """``isobench run`` (the subcommand's name, for messages)."""
    parser = getattr(args, "usage_parser", None)
    return parser.prog if parser is not None else "isobench"


def usage_error(args: argparse.Namespace, message: str) -> int:
    """Print the subcommand's usage and ``PROG: error: MESSAGE``; return exit status 2."""
    parser = getattr(args, "usage_parser", None)
    if parser is not None:
        parser.print_usage(sys.stderr)
    print(f"{prog(args)}: error: {message}", file=sys.stderr)
    return USAGE


def failure(args: argparse.Namespace, message: str, status: int = FAILED) -> int:
    """Print ``PROG: MESSAGE`` on stderr; return ``status``."""
    print(f"{prog(args)}: {message}", file=sys.stderr)
    return status


def exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the file system refuses (too long...) does not."""
    try:
        return path.exists()
    except OSError:
        return False


def missing_paths(args: argparse.Namespace, paths: Sequence[Path], what: str) -> int | None:
    """Usage error (2) naming every path that does not exist, else None."""
    missing = [str(p) for p in paths if not exists(p)]
    if not missing:
        return None
    return usage_error(args, f"no such {what}: {', '.join(missing)}")


def scenario_paths(args: argparse.Namespace, given: Sequence[Path]) -> list[Path] | int:
    """The scenario paths to read: those given, else ./scenarios (never another place)."""
    if given:
        problem = missing_paths(args, given, "file or directory")
        return problem if problem is not None else list(given)
    default = scenarios_dir()
    if not exists(default) or not default.is_dir():
        return usage_error(
            args,
            f"no scenario files given and no scenarios/ directory in {Path.cwd()}; "
            "name files or directories, e.g. "
            f"`{prog(args)} path/to/scenarios/` (scenario paths resolve against the "
            "current directory only)",
        )
    return [Path("scenarios")]


def parse_precision(text: str) -> float:
    """``5%`` or ``0.05`` -> 0.05; argparse type (refuses with an example)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        msg = f"expected a relative precision such as 5% or 0.05, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _integer(text: str, accept: Callable[[int], bool], expected: str) -> int:
    """argparse type helper: ``text`` as an integer ``accept`` takes, else "expected ..."."""
    try:
        value = int(text)
    except ValueError:
        pass
    else:
        if accept(value):
            return value
    msg = f"expected {expected}, got {text!r}"
    raise argparse.ArgumentTypeError(msg)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _integer(text, lambda value: value >= 1, "a positive integer")


def seed_value(text: str) -> int:
    """argparse type: a non-negative integer below 2**63."""
    return _integer(text, lambda value: 0 <= value < 2**63, "a non-negative integer seed")


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``plan``: what to run, how many samples, what to show."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="SCENARIO_FILE_OR_DIR",
        help="scenario files or directories of *.yaml (default: ./scenarios)",
    )
    _add_selection(parser.add_argument_group("what to run"))
    _add_sample_counts(parser.add_argument_group("samples and order"))
    _add_output(parser.add_argument_group("output"))


def _add_selection(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--backend",
        "-b",
        action="append",
        dest="backends",
        metavar="NAME",
        help="only this backend (repeatable; default: every available one; "
        "see `isobench backends`)",
    )
    group.add_argument(
        "--filter",
        "-k",
        action="append",
        dest="filters",
        default=[],
        metavar="TERM",
        help="only items matching TERM: [!][scenario=|backend=|variant=]GLOB; a GLOB without "
        "*?[ matches as a substring; repeated terms must all match "
        "(e.g. -k syscall -k '!vagrant', -k variant='*crun*')",
    )


def _add_sample_counts(group: argparse._ArgumentGroup) -> None:
    from bench.run.profiles import DEFAULT_PROFILE, PROFILES  # noqa: PLC0415 - pure, light

    group.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="sample counts: "
        + "; ".join(f"{p.name}: {p.summary}" for p in PROFILES.values()).replace("%", "%%")
        + f" (default: {DEFAULT_PROFILE})",
    )
    group.add_argument(
        "--repeat",
        "-n",
        type=positive_int,
        metavar="N",
        help="measured repetitions per scenario x backend variant (overrides the profile)",
    )
    group.add_argument(
        "--precision",
        type=parse_precision,
        metavar="P",
        help="adaptive repetitions: after the planned ones, repeat until the median's 95%% CI "
        "half-width is within P (5%% or 0.05) for every metric, or --max-repeat",
    )
    group.add_argument(
        "--max-repeat",
        type=positive_int,
        metavar="N",
        help="cap of adaptive repetitions (default: the scenario's max_repeat, else "
        "4 x repeat, at least 20)",
    )
    group.add_argument(
        "--seed",
        type=seed_value,
        metavar="N",
        help="seed of the execution order (default: a fresh random one; always recorded in "
        "environment.json, so a run's order can be replayed)",
    )


def _add_output(group: argparse._ArgumentGroup) -> None:
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, only problems and the result"
    )
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="every value of every repetition"
    )
    group.add_argument(
        "--plain", action="store_true", help="plain progress lines even on a terminal"
    )
    group.add_argument(
        "--out",
        "-o",
        type=Path,
        metavar="DIR",
        help="parent directory of run directories (default: ./results); previous runs "
        "of this host there inform the time estimates",
    )


@dataclass
class Planned:
    """A plan ready to run or to show."""

    loaded: list[LoadedScenario]
    items: list[PlannedItem]
    backends: dict[str, Backend]
    availability: dict[str, Availability]
    usable: dict[str, Backend]  # the backends planned (available, or all for plan --include-)
    seed: int  # of the execution order


def make_plan(args: argparse.Namespace) -> Planned | int:
    """Load scenarios, probe backends, plan, filter: the plan, or an exit status."""
    from bench.run import plan as planning  # noqa: PLC0415 - heavy, only when planning
    from bench.run import profiles  # noqa: PLC0415
    from bench.scenario.loader import ScenarioLoadError, load_scenarios  # noqa: PLC0415

    known = registry.names()
    unknown = [n for n in args.backends or () if n not in known]
    if unknown:
        return usage_error(
            args, f"unknown backend(s) {', '.join(unknown)}; known backends: {', '.join(known)}"
        )
    try:
        terms = [planning.parse_filter(t) for t in args.filters]
    except ValueError as exc:
        return usage_error(args, str(exc))
    paths = scenario_paths(args, args.paths)
    if isinstance(paths, int):
        return paths
    try:
        loaded = load_scenarios(paths)
    except ScenarioLoadError as exc:
        lines = "\n".join(f"  {error}" for error in exc.errors)
        return failure(args, f"invalid scenario file(s), nothing was run:\n{lines}")
    if not loaded:
        return usage_error(args, f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    profile = profiles.PROFILES[args.profile]
    try:
        scenarios = [
            profiles.apply(
                entry.scenario,
                profile,
                repeat=args.repeat,
                precision=args.precision,
                max_repeat=args.max_repeat,
            )
            for entry in loaded
        ]
    except ValueError as exc:
        return usage_error(args, str(exc))
    names = list(dict.fromkeys(args.backends)) if args.backends else known
    probed = registry.probe(names)
    backends = {n: p.backend for n, p in probed.items() if p.backend is not None}
    availability = {n: p.availability for n, p in probed.items()}
    usable = {n: b for n, b in backends.items() if availability[n].ok}
    if getattr(args, "include_unavailable", False):  # `plan` only: estimate, never run
        usable = backends
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    items = planning.plan(scenarios, usable, seed=seed)
    selected = planning.select(items, terms)
    if items and not selected:
        ids = sorted({f"{i.scenario.name}/{i.backend}/{i.variant.label}" for i in items})
        return usage_error(
            args,
            f"the filter {' '.join(args.filters)!r} selects nothing; planned items "
            f"(scenario/backend/variant): {', '.join(ids)}",
        )
    return Planned(loaded, selected, backends, availability, usable, seed)


def report_unavailable(planned: Planned, stream: Any = None) -> None:
    """One line per unavailable backend, with the reason and how to enable it."""
    for name, avail in planned.availability.items():
        if not avail.ok:
            hint = f" (enable: {avail.hint})" if avail.hint else ""
            print(f"backend {name} unavailable: {avail.reason}{hint}", file=stream or sys.stderr)

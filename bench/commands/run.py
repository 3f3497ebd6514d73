"""`isobench run`: plan and execute scenarios on backends, writing one run directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.commands import common
from bench.commands import plan as plan_command
from bench.paths import results_dir

HELP = "run scenarios on backends and record every sample"
DESCRIPTION = """\
Run scenarios natively, in containers and in VMs, one repetition at a time, and write a run
directory OUT/<run-id>/ with samples.jsonl (appended as measured), samples.parquet,
environment.json (host, tools, backends, health warnings, where the time went),
facts.jsonl, runner.log (each repetition's wall time), a copy of the scenario files and
end.json (written last: the run ended).

What runs: every scenario file given (default: ./scenarios, relative to the current
directory only) on every available backend (or --backend), every variant, narrowed by
--filter. How many samples: --profile (quick, default, publish), then --repeat,
--precision and --max-repeat. See the plan first with --dry-run (or `isobench plan`).

Order: per scenario, warm-ups first (kept, flagged warmup=true, never in the statistics),
then the measured repetitions, every backend once per round in an order shuffled per round by
a seeded generator (--seed; the seed is recorded in environment.json) so host drift and order
effects do not favour one; backends that must run alone (VMs) keep their repetitions together
as one block, placed at a seeded position between two rounds, with native measured right
before and right after it (the report warns when native drifted across it). Adaptive
repetitions (--precision or a scenario's `precision`) add rounds
after the planned ones until the median's 95% CI half-width is within the target for every
metric, or max_repeat; the report names every item that reached the cap.

Failures: a run always keeps going (like make --keep-going): a failed or timed-out
repetition, or a backend variant that cannot be prepared, becomes rows with status
failed/timeout/skipped and the reason, and the next item runs. At the end the run prints one
count (measured, warm-up, failed, skipped samples) and exits 1 if any item (scenario x
backend x variant) produced no successful sample, naming each. Ctrl-C (or SIGTERM) stops
cleanly: what was measured stays on disk, the run is marked interrupted (exit status 130).
A run is complete only once its end marker (end.json) is written, last; a write error (disk
full, read-only --out...) stops the run with a one-line message and exit status 1, the
journal kept up to the last whole sample and no end marker (`isobench report` consolidates
such a run later).

Output: progress on stderr (a live bar with ETA on a terminal, plain lines otherwise; -q for
none, -v for every value); the LAST line of stdout is the run directory, so scripts can do
RUN=$(isobench run ... | tail -n1).
"""
EPILOG = f"""\
examples:
  isobench run --dry-run                          what the default suite would do, how long
  isobench run                                    the default suite: ./scenarios, every backend
  isobench run scenarios/syscall.yaml -b native -b docker -n 10
  isobench run -k backend=docker -k '!crun' --precision 5% --max-repeat 40
  isobench run --profile quick -q                 CI smoke test: every item once, no output

{common.EXIT_STATUS}"""


def register(sub: Any) -> None:
    """Add the `run` subcommand."""
    parser = common.add_command(
        sub,
        "run",
        help=HELP,
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    common.add_plan_options(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and its expected time, run nothing (= isobench plan)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate scenarios, plan, run; print the run directory last on stdout."""
    planned = common.make_plan(args)
    if isinstance(planned, int):
        return planned
    if args.dry_run:
        return plan_command.show(args, planned)
    common.report_unavailable(planned)
    if not planned.items:
        return common.failure(
            args, "nothing to run (no available backend applies to these scenarios)"
        )
    missing = missing_requirements(planned)
    if missing:
        return common.failure(
            args, f"tools missing from the guest environment, nothing was run:\n{missing}"
        )
    return execute(args, planned)


def missing_requirements(planned: common.Planned) -> str:
    """One line per ``requires`` package the guest environment of a planned backend lacks."""
    from bench.envbuild.rootfs import requirement_problems  # noqa: PLC0415

    planned_backends = {item.backend for item in planned.items}
    return "\n".join(
        f"  {entry.path}: requires[{index}]: {message}"
        for entry in planned.loaded
        for index, message in requirement_problems(
            entry.scenario.requires,
            [name for name in entry.scenario.backends if name in planned_backends],
            entry.path,
        )
    )


def execute(args: argparse.Namespace, planned: common.Planned) -> int:
    """Run the plan with a progress display; report counts, empty and capped items."""
    from bench.commands.progress import Eta, progress  # noqa: PLC0415
    from bench.results import SAMPLES_JSONL, StorageError  # noqa: PLC0415
    from bench.run.estimate import totals  # noqa: PLC0415
    from bench.run.runner import execute_run, order_facts  # noqa: PLC0415 - heavy

    estimates = plan_command.estimates_for(args, planned)
    eta = Eta({e.row.key: (e.per_rep, e.setup) for e in estimates}, totals(estimates)[0])
    verbosity = -1 if args.quiet else (1 if args.verbose else 0)
    out_dir = args.out or results_dir()
    try:
        with progress(plain=args.plain, eta=eta, verbosity=verbosity) as sink:
            result = execute_run(
                planned.loaded, planned.items, planned.backends, planned.availability, out_dir,
                progress=sink, order=order_facts(planned.items, planned.seed, planned.usable),
            )  # fmt: skip
    except StorageError as exc:  # the run directory could not even be created
        return common.failure(args, f"{exc}; nothing was run")
    print(f"order seed: {planned.seed} (replay with --seed {planned.seed})", file=sys.stderr)
    if result.error:
        return common.failure(
            args,
            f"{result.error}; the run stopped after {result.counts.describe()}, kept in "
            f"{result.run_dir / SAMPLES_JSONL} (the run is incomplete)",
        )
    print(f"run {result.state}: {result.counts.describe()}", file=sys.stderr)
    for scenario, backend, variant in result.capped:
        print(
            f"reached max_repeat before the requested precision: {scenario} {backend}/{variant}",
            file=sys.stderr,
        )
    for scenario, backend, variant in result.empty:
        print(f"no successful sample: {scenario} {backend}/{variant}", file=sys.stderr)
    print(f"run directory: {result.run_dir}", file=sys.stderr)
    print(result.run_dir)
    if result.interrupted:
        return common.INTERRUPTED
    if result.empty:
        print(
            f"isobench run: {len(result.empty)} item(s) produced no successful sample "
            f"(reasons: isobench report {result.run_dir} --format markdown, or runner.log)",
            file=sys.stderr,
        )
        return common.FAILED
    return common.OK

"""Profiles: how many samples a run takes, whatever the scenario files say (pure).

``quick``    CI smoke test: every backend and variant once, no warm-up. Proves the suite runs;
             proves nothing about performance (n = 1 has no confidence interval).
``default``  each scenario's own ``repeat``/``warmup``/``precision`` (what ``nox -s bench``
             runs), except that VM variants take at most 3 measured repetitions unless the
             scenario sets ``vagrant.repeat``: a VM under software emulation costs 10-50x a
             container per repetition (the README gives the plan and the measured time of the
             shipped suite on a 2-core host).
``publish``  what the report's claims need: at least 10 measured repetitions (from 6 on, the
             median's interval reaches 95 % coverage; Mann-Whitney in ``compare`` needs 8+
             a side for q < 0.05 after correction), one warm-up, and adaptive repetitions
             until the median's CI half-width is within 2 % (or 30 repetitions).

``--repeat``, ``--precision`` and ``--max-repeat`` on the command line apply after the profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the profile list is read by `--help`, which must not load pydantic
    from bench.scenario.model import Scenario


@dataclass(frozen=True, slots=True)
class Profile:
    """Sample counts a profile imposes (None: the scenario's own)."""

    name: str
    summary: str
    repeat: int | None = None
    warmup: int | None = None
    min_repeat: int | None = None  # raise repeat to at least this
    min_warmup: int | None = None
    precision: float | None = None  # only where the scenario sets none
    max_repeat: int | None = None
    exact: bool = False  # drop adaptive repetitions altogether
    vm_repeat: int | None = None  # at most this many VM repetitions (unless vagrant.repeat)


PROFILES: Final = {
    "quick": Profile(
        "quick", "CI smoke: every backend once, no warm-up", repeat=1, warmup=0, exact=True
    ),
    "default": Profile(
        "default", "each scenario's own repeat, warmup and precision; VMs at most 3", vm_repeat=3
    ),
    "publish": Profile(
        "publish",
        ">= 10 repetitions, 1 warm-up, adaptive to +/-2 % (max 30)",
        min_repeat=10,
        min_warmup=1,
        precision=0.02,
        max_repeat=30,
    ),
}
DEFAULT_PROFILE: Final = "default"


def apply(
    scenario: Scenario,
    profile: Profile,
    *,
    repeat: int | None = None,
    precision: float | None = None,
    max_repeat: int | None = None,
) -> Scenario:
    """``scenario`` with the profile's counts, then the command line's overrides."""
    new_repeat = profile.repeat or max(scenario.repeat, profile.min_repeat or 0)
    new_warmup = profile.warmup if profile.warmup is not None else scenario.warmup
    new_warmup = max(new_warmup, profile.min_warmup or 0)
    new_precision = scenario.precision or profile.precision
    new_max = max(scenario.max_repeat or 0, profile.max_repeat or 0) or None
    if profile.exact:
        new_precision, new_max = None, None
    new_repeat = repeat or new_repeat
    new_precision = precision or new_precision
    new_max = max_repeat or new_max
    if new_max is not None:
        new_max = max(new_max, new_repeat)
    base = scenario.model_copy(update={"precision": None, "max_repeat": None})
    # A profile or --repeat that sets counts sets them for every backend (vagrant.repeat...)
    base = base.without_backend_counts(
        repeat=bool(profile.repeat or profile.min_repeat or repeat),
        warmup=profile.warmup is not None or profile.min_warmup is not None,
    )
    if profile.vm_repeat and not repeat and base.vagrant.repeat is None:
        vm = base.vagrant.model_copy(update={"repeat": min(profile.vm_repeat, new_repeat)})
        base = base.model_copy(update={"vagrant": vm})
    return base.with_counts(
        repeat=new_repeat, warmup=new_warmup, precision=new_precision, max_repeat=new_max
    )

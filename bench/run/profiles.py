"""Profiles: how many samples a run takes, whatever the scenario files say (pure).

``quick``    CI smoke test: every backend and variant once, no warm-up. Proves the suite runs;
             proves nothing about performance (n = 1 has no confidence interval).
``default``  what ``nox -s bench`` runs, sized to finish within about 10 minutes on a 2-core
             host with a VM under software emulation: each scenario's own ``warmup`` and
             ``precision`` but at most 3 measured repetitions per item, and at most 2 for a VM
             (unless the scenario sets ``vagrant.repeat``): a VM repetition costs 10-50x a
             container's, a fresh boot about a minute. Too few for a confidence interval of the
             median (the report says so per item); ``publish`` takes the n the claims need.
             The README gives the plan and the measured time of the default suite.
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
    most_repeat: int | None = None  # at most this many measured repetitions (any backend)


PROFILES: Final = {
    "quick": Profile(
        "quick", "CI smoke: every backend once, no warm-up", repeat=1, warmup=0, exact=True
    ),
    "default": Profile(
        "default",
        "the ~10-minute suite: at most 3 repetitions per item (VMs 2), the scenario's warm-up",
        vm_repeat=2,
        most_repeat=3,
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
    new_repeat = min(new_repeat, profile.most_repeat or new_repeat)
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
    own = base.vagrant.repeat
    if profile.vm_repeat and not repeat and own is None:
        vm = base.vagrant.model_copy(update={"repeat": min(profile.vm_repeat, new_repeat)})
        base = base.model_copy(update={"vagrant": vm})
    elif profile.most_repeat and not repeat and own is not None:
        vm = base.vagrant.model_copy(update={"repeat": min(own, profile.most_repeat)})
        base = base.model_copy(update={"vagrant": vm})
    return base.with_counts(
        repeat=new_repeat, warmup=new_warmup, precision=new_precision, max_repeat=new_max
    )

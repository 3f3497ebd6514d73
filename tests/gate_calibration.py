"""A/A calibration of the regression gate by simulation (``python -m tests.gate_calibration``).

A simulated gate run holds ``families`` metric families of ``per_family`` comparisons; each
comparison has ``runs`` baseline runs and one new run of ``n`` samples. Samples are lognormal:
log-sd ``within`` inside a run, and every run shifted by a normal run effect of sd ``between``
(the run-to-run movement documented in /work/shared/ENVIRONMENT.md). The decision is the real
one (:func:`bench.stats.run_noise`, :func:`~bench.stats.moderate`, the family-corrected
interval beyond the threshold), without the frame plumbing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from bench import compare
from bench import stats as st


@dataclass(frozen=True)
class Noise:
    """A noise profile: log-sd within a run and of the run effect."""

    name: str
    within: float
    between: float


#: Noise profiles. "issue-9" is the case the gate must see (3 % noise, issue 9); "quiet
#: host" adds run-to-run movement of 3 %; "this host, loaded" is what the shipped syscall
#: scenario showed on the shared 2-core development host (within-run log-sd 6-40 %, median
#: about 20 %; run-to-run 10-20 %, ENVIRONMENT.md).
PROFILES = (
    Noise("issue-9", 0.03, 0.0),
    Noise("quiet host", 0.03, 0.03),
    Noise("this host, loaded", 0.20, 0.15),
)


def gate_run(
    rng: np.random.Generator,
    noise: Noise,
    n: int,
    runs: int,
    effect: float = 0.0,
    families: int = 4,
    per_family: int = 10,
    threshold: float = compare.DEFAULT_THRESHOLD,
) -> list[bool]:
    """Flags of one simulated gate run; comparison 0 carries the injected ``effect``."""
    bound = float(np.log1p(threshold))
    confidence = st.family_level(per_family, compare.ALPHA / families)  # as compare does
    flags = []
    for family in range(families):
        pairs = []
        for item in range(per_family):
            shift = np.log1p(effect) if family == item == 0 else 0.0

            def one(center: float) -> st.RunLevel:
                level = center + rng.normal(0.0, noise.between)
                values = np.exp(rng.normal(level, noise.within, n))
                found = st.run_level(values)
                assert found is not None
                return found

            pairs.append(([one(0.0) for _ in range(runs)], [one(shift)]))
        noises = st.moderate([st.run_noise(b, x) for b, x in pairs])
        for (b, x), level_noise in zip(pairs, noises, strict=True):
            low, high = st.shift_interval(st.shift(b, x, level_noise), confidence)
            flags.append(bool(low > bound or high < -bound))
    return flags


def rates(
    noise: Noise, n: int, runs: int, trials: int, seed: int, *, detect: bool = True
) -> tuple[float, float]:
    """(share of A/A gate runs flagging anything, detection rate of one +20 % among 40)."""
    rng = np.random.default_rng(seed)
    false_runs = sum(any(gate_run(rng, noise, n, runs)) for _ in range(trials))
    if not detect:
        return false_runs / trials, np.nan
    detected = sum(gate_run(rng, noise, n, runs, effect=0.20)[0] for _ in range(trials))
    return false_runs / trials, detected / trials


def main() -> None:
    """Print the calibration table."""
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    for noise in PROFILES:
        for runs in (1, 5, 10):
            for n in (5, 7, 10, 15):
                fp, det = rates(noise, n, runs, trials, seed=20240229)
                print(
                    f"{noise.name:18} runs={runs:2} n={n:2}: A/A runs flagged {fp:6.1%}, "
                    f"+20 % detected {det:6.1%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

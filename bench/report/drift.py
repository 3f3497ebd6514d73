"""Drift of the native baseline across long blocks (VMs), from the order a run recorded (pure).

The plan puts native right before and right after every non-interleaved block and
environment.json's ``order.blocks`` names those two native repetitions. Native "moved" when
the difference between them exceeds every difference between two other consecutive native
repetitions of the same series: the host changed while the block ran, and figures measured
around it may be skewed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench import results
from bench import stats as st


@dataclass(frozen=True, slots=True)
class Drift:
    """Native before vs after one block, for one metric."""

    host: str
    run_id: str
    scenario: str
    block: str  # backend/variant of the block
    metric: str
    before: float
    after: float
    noise: float  # largest |difference| between two other consecutive native repetitions

    @property
    def change(self) -> float:
        """Relative change after vs before."""
        return (self.after - self.before) / self.before if self.before else np.nan

    @property
    def moved(self) -> bool:
        """Whether native moved by more than its own round-to-round noise."""
        return bool(np.isfinite(self.noise) and abs(self.after - self.before) > self.noise)

    def describe(self) -> str:
        """One line for the report."""
        noise = self.noise / abs(self.before) if self.before else np.nan
        text = (
            f"{self.host}: native {self.metric} ({self.scenario}) changed {self.change:+.1%} "
            f"across the {self.block} block"
        )
        if not np.isfinite(noise):
            return text + " (too few native repetitions to judge its noise)"
        return text + f"; other consecutive native repetitions differ by at most {noise:.1%}"


def native_drift(frame: pd.DataFrame, envs: Sequence[Mapping[str, Any]]) -> list[Drift]:
    """Every recorded block's native before/after pair, per native metric of its scenario."""
    found: list[Drift] = []
    if frame.empty:
        return found
    native = frame.loc[st.measured_mask(frame) & (frame["backend"] == st.NATIVE).to_numpy()]
    for env in envs:
        order = env.get("order")
        blocks = order.get("blocks") if isinstance(order, Mapping) else None
        run_id = str(env.get("run_id", ""))
        mine = native[native["run_id"] == run_id]
        for block in blocks if isinstance(blocks, list) else ():
            found += _block_drift(mine, results.host_key(env), run_id, block)
    return found


def _block_drift(native: pd.DataFrame, host: str, run_id: str, block: Any) -> list[Drift]:
    if not isinstance(block, Mapping):
        return []
    before, after = block.get("native_before"), block.get("native_after")
    if not isinstance(before, int) or not isinstance(after, int):
        return []
    rows = native[native["scenario"] == block.get("scenario")]
    out = []
    for (variant, metric), series in rows.groupby(["variant", "metric"], observed=True):
        values = series.groupby("repetition")["value"].median()
        if before not in values.index or after not in values.index:
            continue
        steps = [
            abs(values[i] - values[i - 1])
            for i in values.index
            if i - 1 in values.index and (i - 1, i) != (before, after)
        ]
        out.append(
            Drift(
                host,
                run_id,
                str(block.get("scenario")),
                f"{block.get('backend')}/{block.get('variant')}",
                f"{metric}" if variant == "host" else f"{metric} [{variant}]",
                float(values[before]),
                float(values[after]),
                float(max(steps)) if steps else np.nan,
            )
        )
    return out

"""One way to count rows: run, report and compare print the same four numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows of a run by what they are: every row is exactly one of the four."""

    measured: int = 0  # status ok, not a warm-up (finite value)
    warmup: int = 0  # status ok, a warm-up (kept, never in the statistics)
    failed: int = 0  # status failed or timeout, warm-up or not
    skipped: int = 0  # status skipped (the backend/variant could not be prepared)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.measured + other.measured,
            self.warmup + other.warmup,
            self.failed + other.failed,
            self.skipped + other.skipped,
        )

    def describe(self) -> str:
        """``12 measured, 4 warm-up, 1 failed, 0 skipped samples``."""
        return (
            f"{self.measured} measured, {self.warmup} warm-up, {self.failed} failed, "
            f"{self.skipped} skipped samples"
        )


def count_row(status: str, warmup: bool, value: float) -> Counts:
    """The :class:`Counts` of one row."""
    if status == "skipped":
        return Counts(skipped=1)
    if status != "ok" or math.isnan(value):  # an ok row without a value is no measurement
        return Counts(failed=1)
    return Counts(warmup=1) if warmup else Counts(measured=1)


def count_frame(frame: pd.DataFrame) -> Counts:
    """The :class:`Counts` of a sample frame (same rules as :func:`count_row`)."""
    if frame.empty:
        return Counts()
    status = frame["status"].astype("string")
    ok = (status == "ok") & frame["value"].notna()
    warm = frame["warmup"].astype(bool)
    skipped = int((status == "skipped").sum())
    return Counts(
        measured=int((ok & ~warm).sum()),
        warmup=int((ok & warm).sum()),
        failed=len(frame) - skipped - int(ok.sum()),
        skipped=skipped,
    )

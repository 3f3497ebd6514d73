"""The report's account of a run's time and of its adaptive repetitions (from environment.json).

Defensive about shape (older runs have neither block); returns plain strings the template
escapes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _seconds(value: float) -> str:
    whole = round(value)
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(whole, 60)
    return (
        f"{minutes} min {secs:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def time_facts(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rows "where the time went": per backend, per scenario, and the share spent preparing."""
    timing = env.get("timing")
    units = timing.get("units") if isinstance(timing, Mapping) else None
    if not isinstance(units, list) or not units:
        return []
    backends: dict[str, float] = {}
    scenarios: dict[str, float] = {}
    setup = total = 0.0
    for unit in units:
        if not isinstance(unit, Mapping):
            continue
        reps = [_number(v) for v in (unit.get("rep_s") or []) + (unit.get("warmup_s") or [])]
        prep = sum(
            x for x in (_number(unit.get("prepare_s")), _number(unit.get("teardown_s"))) if x
        )
        spent = sum(x for x in reps if x) + prep
        backends[str(unit.get("backend"))] = backends.get(str(unit.get("backend")), 0.0) + spent
        scenarios[str(unit.get("scenario"))] = scenarios.get(str(unit.get("scenario")), 0.0) + spent
        setup += prep
        total += spent

    def share(parts: Mapping[str, float]) -> str:
        ordered = sorted(parts.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {_seconds(v)} ({v / total:.0%})" for k, v in ordered if total)

    return [
        ("time measured", f"{_seconds(total)}, of which prepare/teardown {_seconds(setup)}"),
        ("time per backend", share(backends)),
        ("time per scenario", share(scenarios)),
    ]


def adaptive_facts(env: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """A row summarizing adaptive repetitions, and a banner naming every item that hit the cap."""
    records = [a for a in env.get("adaptive") or [] if isinstance(a, Mapping)]
    if not records:
        return [], []
    capped = [a for a in records if a.get("capped")]
    target = _number(records[0].get("precision")) or math.nan
    reps = [int(a.get("repetitions") or 0) for a in records]
    row = (
        "adaptive repetitions",
        f"target ±{target:.1%} (median's 95 % CI half-width); {len(records)} item(s), "
        f"{min(reps)} to {max(reps)} repetitions; {len(capped)} reached max_repeat",
    )
    banners = []
    if capped:
        named = "; ".join(
            f"{a.get('scenario')} {a.get('backend')}/{a.get('variant')}: n={a.get('repetitions')}"
            + (
                f", ±{achieved:.1%} on {a.get('worst_metric')}"
                if (achieved := _number(a.get("achieved"))) is not None
                else ", no 95 % interval yet"
            )
            for a in capped
        )
        banners.append(
            f"{len(capped)} item(s) reached max_repeat before the requested precision "
            f"±{target:.1%}: {named}"
        )
    return [row], banners

"""Shared test configuration.

Integration tests drive real engines. Where an engine is missing they skip, *unless*
``ISOBENCH_REQUIRE_ENGINES=1`` (set by .ci/run after provisioning), where a missing engine
is a failure: CI must never go green by skipping the real thing.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENGINES = os.environ.get("ISOBENCH_REQUIRE_ENGINES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when engines are required (CI)."""
    if REQUIRE_ENGINES:
        pytest.fail(f"engine required but unavailable: {reason}")
    pytest.skip(reason)

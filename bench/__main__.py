"""Allow ``python -m bench``."""

from __future__ import annotations

from bench.cli import entry

entry()

"""isobench: what does isolation cost? Native vs container vs VM, measured."""

from __future__ import annotations

__version__ = "0.1.0"

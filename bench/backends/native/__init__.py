"""native backend package."""

from __future__ import annotations

from bench.backends.native.backend import NativeBackend

__all__ = ["NativeBackend"]

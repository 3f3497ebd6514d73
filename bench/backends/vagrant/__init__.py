"""vagrant backend package."""

from __future__ import annotations

from bench.backends.vagrant.backend import VagrantBackend

__all__ = ["VagrantBackend"]

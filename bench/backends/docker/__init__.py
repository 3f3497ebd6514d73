"""docker backend package."""

from __future__ import annotations

from bench.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]

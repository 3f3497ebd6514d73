"""podman backend package: Podman, rootful and rootless, through its Docker-compatible API."""

from __future__ import annotations

from bench.backends.podman.backend import PodmanBackend

__all__ = ["PodmanBackend"]

"""sandbox backend package: bare namespaces, cgroups and seccomp through bubblewrap."""

from __future__ import annotations

from bench.backends.sandbox.backend import SandboxBackend

__all__ = ["SandboxBackend"]

"""Backend registry: name -> factory, imported lazily so a missing SDK costs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Final

from bench.backends.base import (
    Availability,
    Backend,
    BackendError,
    BackendUnavailable,
    Measurement,
    Outcome,
    Repetition,
    RepetitionTimeout,
    Variant,
)

__all__ = [
    "REGISTRY",
    "Availability",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Measurement",
    "Outcome",
    "Repetition",
    "RepetitionTimeout",
    "Variant",
    "create",
    "names",
    "register",
]

#: name -> "module:factory"; the factory takes no arguments and returns a Backend.
REGISTRY: Final[dict[str, str]] = {
    "native": "bench.backends.native:NativeBackend",
    "docker": "bench.backends.docker:DockerBackend",
    "vagrant": "bench.backends.vagrant:VagrantBackend",
}

_EXTRA: dict[str, Callable[[], Backend]] = {}


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Register an extra backend factory (tests use this for the fake backend)."""
    _EXTRA[name] = factory


def unregister(name: str) -> None:
    """Remove a backend added with :func:`register`."""
    _EXTRA.pop(name, None)


def names() -> list[str]:
    """All registered backend names, built-ins first."""
    return [*REGISTRY, *(n for n in _EXTRA if n not in REGISTRY)]


def create(name: str) -> Backend:
    """Instantiate backend ``name`` (KeyError if unknown)."""
    if name in _EXTRA:
        return _EXTRA[name]()
    module_name, _, attr = REGISTRY[name].partition(":")
    factory: Callable[[], Backend] = getattr(importlib.import_module(module_name), attr)
    return factory()

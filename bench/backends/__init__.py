"""Backend registry: name -> factory, imported lazily so a missing SDK costs nothing.

This module imports no backend and no scenario model at run time, so ``isobench --help`` and
the scenario loader can consult the list of names without loading pydantic, docker-py or
python-vagrant. :func:`probe` is the one way every command asks "which backends work here?".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bench.values import Availability

if TYPE_CHECKING:
    from bench.backends.base import Backend

__all__ = ["REGISTRY", "Probed", "create", "names", "probe", "register", "unregister"]

#: name -> "module:factory"; the factory takes no arguments and returns a Backend.
REGISTRY: Final[dict[str, str]] = {
    "native": "bench.backends.native:NativeBackend",
    "sandbox": "bench.backends.sandbox:SandboxBackend",
    "docker": "bench.backends.docker:DockerBackend",
    "podman": "bench.backends.podman:PodmanBackend",
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


@dataclass(frozen=True, slots=True)
class Probed:
    """One backend as probed: the instance (None when it could not be created) and its state."""

    name: str
    backend: Backend | None
    availability: Availability


def probe(selected: Iterable[str] | None = None) -> dict[str, Probed]:
    """Create each backend and ask whether it can run here; a crash counts as unavailable.

    Used by ``isobench run``, ``isobench backends`` and ``isobench env status`` alike, so the
    three never disagree about what is available.
    """
    result: dict[str, Probed] = {}
    for name in names() if selected is None else selected:
        try:
            backend = create(name)
            availability = backend.availability()
        except Exception as exc:  # an SDK import error or a probe crash: unavailable, say why
            result[name] = Probed(name, None, Availability(False, f"{type(exc).__name__}: {exc}"))
        else:
            result[name] = Probed(name, backend, availability)
    return result

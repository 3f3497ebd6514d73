"""Every registered backend (and the test fake) conforms to the one Backend Protocol."""

from __future__ import annotations

import inspect

import pytest

from bench import backends as registry
from bench.backends.base import Backend
from tests.fake_backend import FakeBackend

MEMBERS = sorted(
    {n for n, v in vars(Backend).items() if not n.startswith("_") and callable(v)}
    | set(Backend.__annotations__)
)


@pytest.mark.parametrize("name", sorted(registry.REGISTRY))
def test_registered_backend_conforms(name: str) -> None:
    backend = registry.create(name)  # constructors are cheap: no engine is contacted
    assert isinstance(backend, Backend)
    assert backend.name == name
    assert isinstance(backend.interleave, bool)
    for member in MEMBERS:
        assert hasattr(backend, member), f"{name} lacks {member}"
        declared = getattr(Backend, member, None)
        if callable(declared):
            wanted = list(inspect.signature(declared).parameters)
            got = ["self", *inspect.signature(getattr(backend, member)).parameters]
            assert got == wanted, f"{name}.{member}{got} differs from the Protocol {wanted}"
    assert isinstance(backend.notes(), list)


def test_protocol_lists_interleave_and_notes() -> None:
    assert {"interleave", "notes", "availability", "run", "teardown"} <= set(MEMBERS)


def test_the_fake_conforms_too() -> None:
    assert isinstance(FakeBackend(), Backend)


def test_probe_reports_a_crashing_backend_as_unavailable() -> None:
    def broken() -> Backend:
        msg = "no SDK"
        raise ImportError(msg)

    registry.register("broken", broken)
    try:
        probed = registry.probe(["broken"])["broken"]
    finally:
        registry.unregister("broken")
    assert probed.backend is None
    assert not probed.availability.ok
    assert "ImportError: no SDK" in probed.availability.reason

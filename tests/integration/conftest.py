"""Fixtures shared by the integration tests: the dockerd client and the isobench image.

Without a reachable dockerd (or the tools to build the image) the tests that use them skip,
or fail under ISOBENCH_REQUIRE_ENGINES=1 (:func:`tests.engines.skip_or_fail`).
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from bench.envbuild.image import DockerUnreachableError, connect, ensure_image
from tests.engines import skip_or_fail


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the local dockerd, closed at the end of the session."""
    try:
        client = connect()
    except DockerUnreachableError as exc:
        skip_or_fail(str(exc))
        raise  # unreachable: skip_or_fail raised
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_image(docker_client: docker.DockerClient) -> str:
    """The isobench image's tag, built from the shared rootfs if missing."""
    try:
        return ensure_image(log=lambda _: None)
    except FileNotFoundError as exc:  # no debootstrap / vagrant key: cannot build the rootfs
        skip_or_fail(f"cannot build the isobench image: {exc}")
        raise

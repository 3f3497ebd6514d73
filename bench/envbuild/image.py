"""The Docker image: the shared Debian 12 rootfs, ``docker import``ed without a registry.

The tag carries the rootfs content hash (``isobench/debian12:<rootfs-hash>``), so an image
with the current tag is by construction built from the current rootfs and is reused. The only
files left out are the guest kernel and initrd under ``/boot`` (a container runs on the host's
kernel); every other file of the userland is identical to the Vagrant box's.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Final

import docker
import docker.errors

from bench.envbuild.rootfs import ensure_rootfs, rootfs_hash
from bench.workloads import GUEST_PROBE

REPOSITORY: Final = "isobench/debian12"
#: Image label carrying the rootfs hash. Deliberately not ``isobench``: containers inherit
#: image labels, and ``isobench=1`` marks containers the harness owns and may remove.
ROOTFS_LABEL: Final = "isobench.image.rootfs"
#: Left out of the tarball: the guest kernel/initrd are unused by containers.
EXCLUDES: Final = ("./boot/*", "./.isobench-complete")
IMPORT_TIMEOUT: Final = 900

Log = Callable[[str], None]


class DockerUnreachableError(RuntimeError):
    """dockerd cannot be reached (not running, missing socket, permission denied)."""


def docker_host() -> str:
    """The engine address the SDK uses (``$DOCKER_HOST`` or the default socket)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def image_tag(digest: str | None = None) -> str:
    """The image tag for the current (or given) rootfs hash."""
    return f"{REPOSITORY}:{digest or rootfs_hash()}"


def _probe_unix_socket(address: str, timeout: float) -> None:
    """Check a ``unix://`` engine address ourselves: precise reasons, and no socket leak.

    (docker-py leaves its socket unclosed when connecting to a missing socket fails.)
    """
    path = address.removeprefix("unix://")
    if not Path(path).exists():
        msg = f"dockerd not reachable at {address} (socket does not exist; is dockerd running?)"
        raise DockerUnreachableError(msg)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except PermissionError as exc:
            msg = f"permission denied on {address} (run as root or join the docker group)"
            raise DockerUnreachableError(msg) from exc
        except OSError as exc:
            msg = f"dockerd not reachable at {address} ({exc.strerror or exc})"
            raise DockerUnreachableError(msg) from exc


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A pinged docker client, or DockerUnreachableError with a reason a user can act on."""
    address = docker_host()
    if address.startswith("unix://"):
        _probe_unix_socket(address, timeout)
    try:
        client = docker.from_env(timeout=int(max(1, timeout)))
    except docker.errors.DockerException as exc:
        raise DockerUnreachableError(unreachable_reason(exc)) from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise DockerUnreachableError(unreachable_reason(exc)) from exc
    return client


def unreachable_reason(exc: BaseException) -> str:
    """Turn an SDK connection error into a specific reason."""
    text = str(exc)
    where = docker_host()
    if "Permission denied" in text or "PermissionError" in text:
        return f"permission denied on {where} (run as root or join the docker group)"
    if "No such file" in text or "FileNotFoundError" in text:
        return f"dockerd not reachable at {where} (socket does not exist; is dockerd running?)"
    if "Connection refused" in text or "ConnectionRefused" in text:
        return f"dockerd not reachable at {where} (connection refused)"
    return f"dockerd not reachable at {where}: {text.strip()[:200]}"


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    """Whether ``tag`` is present in the engine."""
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _changes(digest: str) -> list[str]:
    return [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f'CMD ["{GUEST_PROBE}", "ready"]',
        f"LABEL {ROOTFS_LABEL}={digest}",
    ]


def _import(client: docker.DockerClient, tree: Path, tag: str, digest: str) -> None:
    """Stream ``tar -C tree -c .`` into the engine's image import (no tarball on disk)."""
    argv = ["tar", "-C", str(tree), "--numeric-owner"]
    argv += [f"--exclude={pattern}" for pattern in EXCLUDES]
    argv += ["-c", "."]
    repository, _, version = tag.partition(":")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        try:
            client.api.import_image_from_stream(
                tar.stdout, repository=repository, tag=version, changes=_changes(digest)
            )
        finally:
            tar.stdout.close()
            stderr = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            status = tar.wait()
    if status != 0:
        msg = f"tar of {tree} failed with status {status}: {stderr.strip()[-300:]}"
        raise RuntimeError(msg)


def ensure_image(log: Log = print) -> str:
    """Build (``docker import``) the image from the shared rootfs unless its tag exists."""
    client = connect()
    try:
        tree = ensure_rootfs(log)
        digest = tree.name.removeprefix("rootfs-")
        tag = image_tag(digest)
        if image_exists(client, tag):
            log(f"docker image {tag} is up to date")
            return tag
        log(f"importing {tree} into docker as {tag} (about a minute)")
        slow = docker.from_env(timeout=IMPORT_TIMEOUT)
        try:
            _import(slow, tree, tag, digest)
        finally:
            slow.close()
        if not image_exists(client, tag):
            msg = f"docker import finished but {tag} is not in the engine"
            raise RuntimeError(msg)
        log(f"docker image ready: {tag} ({client.images.get(tag).id})")
        return tag
    finally:
        client.close()

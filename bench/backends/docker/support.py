"""Docker backend plumbing: ownership labels, leftovers, container settings, exec.

Every container and volume the harness creates carries ``isobench=1``, the owner token of the
harness process (:mod:`bench.ownership`: host fingerprint, boot, pid namespace, pid and its
start time) and a per-backend-instance run token. :func:`leftovers` lists everything labelled
``isobench`` with its owner's verdict; cleanup removes only what this host's dead harness
processes left, and lists (never removes) what it cannot prove is its own: no token, another
host's (a shared ``DOCKER_HOST``), a harness in another pid namespace (a shared docker.sock).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import requests.exceptions

from bench import ownership
from bench.scenario.model import Limits
from bench.values import BackendError, RepetitionTimeout
from bench.workloads import ExecResult

LABEL: Final = "isobench"
OWNER_LABEL: Final = "isobench.owner"
RUN_LABEL: Final = "isobench.run"
VARIANT_LABEL: Final = "isobench.variant"
#: Where the scratch volume is mounted (storage=volume) / the writable-layer directory.
VOLUME_MOUNT: Final = "/mnt/isobench"
OVERLAY_DIR: Final = "/var/tmp/isobench"
#: Engine errors that mean "the object is already gone": fine during cleanup.
_GONE = (docker.errors.NotFound,)


@dataclass
class Ownership:
    """The labels this backend instance puts on everything it creates."""

    run: str = field(default_factory=lambda: secrets.token_hex(4))
    owner: str = field(default_factory=lambda: ownership.current().token)
    _serial: int = 0

    def labels(self, variant: str = "") -> dict[str, str]:
        """Labels for a new container, volume or network."""
        out = {LABEL: "1", OWNER_LABEL: self.owner, RUN_LABEL: self.run}
        if variant:
            out[VARIANT_LABEL] = variant
        return out

    @property
    def name_prefix(self) -> str:
        """What every object name of this instance starts with: ``isobench-1a2b3c4d-``."""
        return f"isobench-{self.run}-"

    def name(self, what: str) -> str:
        """A unique, recognisable object name such as ``isobench-1a2b3c4d-exec-3``."""
        self._serial += 1
        return f"{self.name_prefix}{what}-{self._serial}"


def leftovers(client: docker.DockerClient) -> list[ownership.Leftover]:
    """Containers, then volumes and networks, labelled ``isobench``, with their owner's verdict.

    Containers come first: a volume or network in use cannot be removed before them.
    """
    found: list[ownership.Leftover] = []
    wanted: dict[str, Any] = {"label": LABEL}  # the key, any value: foreign ones are listed too
    # sparse: the list's own data (names, labels), no inspect per container that would fail
    # when another harness removes one of its containers meanwhile.
    for container in client.containers.list(all=True, filters=wanted, sparse=True):
        names = container.attrs.get("Names") or [container.short_id]
        found.append(
            ownership.Leftover(
                "docker container",
                str(names[0]).lstrip("/"),
                ownership.verdict((container.attrs.get("Labels") or {}).get(OWNER_LABEL)),
                functools.partial(_remove, container, force=True, v=True),
            )
        )
    for kind, collection in (("volume", client.volumes), ("network", client.networks)):
        for obj in collection.list(filters=wanted):
            kwargs = {"force": True} if kind == "volume" else {}
            found.append(
                ownership.Leftover(
                    f"docker {kind}",
                    obj.name or obj.short_id,
                    ownership.verdict((obj.attrs.get("Labels") or {}).get(OWNER_LABEL)),
                    functools.partial(_remove, obj, **kwargs),
                )
            )
    return found


def _remove(obj: Any, **kwargs: Any) -> None:
    with contextlib.suppress(*_GONE):
        obj.remove(**kwargs)


def remove_run(client: docker.DockerClient, run: str) -> list[str]:
    """Remove every container and volume of one backend instance (teardown)."""
    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run}"}):
        with contextlib.suppress(*_GONE):
            container.remove(force=True, v=True)
            removed.append(container.name or container.id or "?")
    for volume in client.volumes.list(filters={"label": f"{RUN_LABEL}={run}"}):
        with contextlib.suppress(*_GONE):
            volume.remove(force=True)
            removed.append(volume.name or "?")
    return removed


def host_config_kwargs(
    variant: Mapping[str, str], limits: Limits, volume: str | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_host_config`` for a variant and limits."""
    kwargs: dict[str, Any] = {
        "network_mode": variant.get("network", "none"),
        "privileged": False,
        "init": False,
    }
    if variant.get("seccomp") == "unconfined":
        kwargs["security_opt"] = ["seccomp=unconfined"]
    runtime = variant.get("runtime")
    if runtime:
        kwargs["runtime"] = runtime
    if limits.cpus is not None:
        # CFS quota, like native's: the workload may use `cpus` CPUs' worth of time.
        kwargs["nano_cpus"] = int(limits.cpus * 1e9)
    if limits.memory is not None:
        # memory + swap capped at the same value: no swap beyond the limit, as native.
        kwargs["mem_limit"] = int(limits.memory)
        kwargs["memswap_limit"] = int(limits.memory)
    if volume:
        kwargs["binds"] = {volume: {"bind": VOLUME_MOUNT, "mode": "rw"}}
    return kwargs


def seccomp_profile(variant: Mapping[str, str]) -> str:
    """The seccomp profile a variant runs under, in words."""
    if variant.get("seccomp") == "unconfined":
        return "unconfined"
    if variant.get("seccomp") == "sentry":
        return "gVisor's own filter on the Sentry (the OCI profile is not loaded)"
    return "docker default profile"


def seccomp_mode(pid: int) -> str:
    """``Seccomp:`` of /proc/PID/status (0 off, 1 strict, 2 filter), or ``unknown``."""
    try:
        with Path(f"/proc/{pid}/status").open(encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Seccomp:"):
                    return line.split()[1]
    except OSError:
        pass
    return "unknown"


def is_timeout(exc: BaseException) -> bool:
    """Whether an SDK exception is a client-side read timeout."""
    return isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ConnectionError)


class ContainerExecutor:
    """Runs argv in a long-lived container via the exec API, with a real timeout.

    The engine's exec API has no timeout, so the exec runs in a helper thread; when it
    outlives the timeout the whole container is killed (ending the exec) and
    :class:`RepetitionTimeout` is raised. The next call recreates the container lazily.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        labels: Mapping[str, str],
        name: str,
        host_config: Mapping[str, Any],
    ) -> None:
        self.client = client
        self.image = image
        self.labels = dict(labels)
        self.name = name
        self.host_config = dict(host_config)
        self.container_id: str | None = None
        self.setup: list[Sequence[str]] = []  # argv run after every (re)creation
        self.command: list[str] = ["sleep", "infinity"]  # the container's main process
        self.ports: list[int] = []  # container ports to expose (published via host_config)
        #: Working directory of every exec (a command workload's storage under test).
        self.workdir: str | None = None

    def ensure(self) -> str:
        """Create and start the container unless it is running; return its id."""
        api = self.client.api
        if self.container_id is not None:
            try:
                if api.inspect_container(self.container_id)["State"]["Running"]:
                    return self.container_id
            except docker.errors.NotFound:
                pass
            self.discard()
        created = api.create_container(
            self.image,
            command=self.command,
            ports=self.ports or None,
            labels=self.labels,
            name=self.name,
            host_config=api.create_host_config(**self.host_config),
        )
        self.container_id = str(created["Id"])
        api.start(self.container_id)
        for argv in self.setup:  # in the image's working directory: workdir may not exist yet
            result = self._exec(argv, 60.0, workdir=None)
            if result.returncode != 0:
                msg = f"container setup {' '.join(argv)!r} failed: {result.stderr.strip()}"
                raise BackendError(msg)
        return self.container_id

    def pid(self) -> int:
        """Host pid of the container's init process (0 if not running)."""
        if self.container_id is None:
            return 0
        return int(self.client.api.inspect_container(self.container_id)["State"]["Pid"])

    def host_path(self, inside: str) -> Path:
        """Where ``inside`` (a path in the container) lives on the host.

        A bind or volume mount's source, else the overlay upper dir (the writable layer).
        """
        assert self.container_id is not None
        info = self.client.api.inspect_container(self.container_id)
        for mount in info.get("Mounts") or []:
            destination = str(mount.get("Destination", ""))
            if inside == destination or inside.startswith(destination.rstrip("/") + "/"):
                return Path(mount["Source"]) / inside[len(destination) :].lstrip("/")
        upper = ((info.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
        if not upper:
            msg = f"storage driver {info.get('Driver')!r} reports no upper dir for {inside}"
            raise BackendError(msg)
        return Path(upper) / inside.lstrip("/")

    def discard(self) -> None:
        """Remove the container (kills what runs in it)."""
        if self.container_id is not None:
            with contextlib.suppress(*_GONE):
                self.client.api.remove_container(self.container_id, force=True, v=True)
        self.container_id = None

    def __call__(self, argv: Sequence[str], timeout: float) -> ExecResult:
        """The :data:`bench.workloads.Executor` interface."""
        self.ensure()
        return self._exec(argv, timeout, self.workdir)

    def _exec(self, argv: Sequence[str], timeout: float, workdir: str | None = None) -> ExecResult:
        api = self.client.api
        assert self.container_id is not None
        exec_id = api.exec_create(
            self.container_id, list(argv), stdout=True, stderr=True, workdir=workdir
        )["Id"]
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["output"] = api.exec_start(exec_id, demux=True)
            except Exception as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=target, name="isobench-docker-exec", daemon=True)
        start = time.perf_counter()
        worker.start()
        worker.join(timeout)
        wall = time.perf_counter() - start
        if worker.is_alive():
            self.discard()  # ends the exec stream; the worker thread then finishes
            worker.join(10)
            msg = f"{argv[0]} still running after {timeout:g} s in the container; killed it"
            raise RepetitionTimeout(msg)
        if "error" in box:
            msg = f"docker exec of {argv[0]!r} failed: {box['error']}"
            raise BackendError(msg) from box["error"]
        out, err = box["output"]
        code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(
            returncode=int(code) if code is not None else -1,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
            wall=wall,
        )

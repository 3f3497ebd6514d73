"""Podman's API service (``podman system service``), one per mode x storage driver.

The backend talks to Podman through its Docker-compatible API with docker-py, so the Docker
backend's measuring code (create/start/wait/exec, labels, orphan cleanup) serves both engines
unchanged. The service is started by the backend for one run and stopped at teardown; its
socket name carries the harness's owner token (pid and start time), so a service left behind
by a killed harness is recognised and stopped by the next one (:func:`stop_orphan_services`).

Rootless services run as the provisioned user (``isobench-rootless``, with /etc/subuid and
/etc/subgid ranges), with a storage root per driver: one store holds one driver, and the image
is imported into each store from the shared rootfs.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import docker
import docker.errors
import psutil

from bench import ownership
from bench.backends.docker.measure import Cli
from bench.envbuild.image import REPOSITORY, _import, image_exists
from bench.procgroup import process_start
from bench.values import BackendUnavailable
from bench.workloads.density import MAX_THREADS

ROOTLESS_USER: Final = os.environ.get("ISOBENCH_PODMAN_USER", "isobench-rootless")
ROOTFUL_DIR: Final = Path("/run/isobench-podman")
SOCKET_PREFIX: Final = "isobench-podman-"
#: Settings this host needs without systemd (see docs/spectrum.md).
GLOBAL_FLAGS: Final = ("--cgroup-manager=cgroupfs", "--events-backend=file")
START_TIMEOUT: Final = 30.0
_SOCKET: Final = re.compile(rf"{SOCKET_PREFIX}(\d+)_(\d+)-")


@dataclass(frozen=True, slots=True)
class Mode:
    """Who runs the engine and with which storage driver."""

    rootless: bool
    storage: str

    @property
    def key(self) -> str:
        """``rootful-overlay``, ``rootless-vfs``..."""
        return f"{'rootless' if self.rootless else 'rootful'}-{self.storage}"


def rootless_account() -> pwd.struct_passwd | None:
    """The provisioned rootless user, or None."""
    try:
        return pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        return None


def subid_range(name: str, path: Path) -> str:
    """``start:count`` of ``name`` in /etc/subuid or /etc/subgid ('' if none)."""
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            user, _, rest = line.partition(":")
            if user == name:
                return rest
    return ""


class Service:
    """One running ``podman system service`` and a docker-py client connected to it."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        podman = shutil.which("podman")
        if podman is None:
            msg = "podman is not installed"
            raise BackendUnavailable(msg)
        user = rootless_account() if mode.rootless else None
        if mode.rootless and user is None:
            msg = f"rootless user {ROOTLESS_USER!r} does not exist (sudo scripts/provision podman)"
            raise BackendUnavailable(msg)
        owner = ownership.current()
        token = f"{owner.pid}_{owner.start}"
        directory = ROOTFUL_DIR if user is None else Path(f"/run/user/{user.pw_uid}")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        self.cli = _cli(podman, mode, user, directory)
        argv = list(self.cli.prefix)
        self.socket = directory / f"{SOCKET_PREFIX}{token}-{mode.key}.sock"
        self.socket.unlink(missing_ok=True)
        argv += ["system", "service", "--time=0", f"unix://{self.socket}"]
        self.log = directory / f"{self.socket.stem}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self.cli.run_kwargs(),
                start_new_session=True,
            )
        if user is not None:
            os.chown(self.log, user.pw_uid, user.pw_gid)
        self.client = self._connect()
        driver = str(self.client.info().get("Driver"))
        self.driver = driver  # read once: an info() call costs ~0.3 s here
        if driver != _driver(mode.storage):
            self.stop()
            msg = f"the rootful Podman store uses storage driver {driver!r}, not {mode.storage}"
            raise BackendUnavailable(msg)

    def _connect(self) -> docker.DockerClient:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.socket.exists():
                client = docker.DockerClient(
                    base_url=f"unix://{self.socket}",
                    timeout=3600,
                    max_pool_size=MAX_THREADS + 4,  # density's concurrent launches
                )
                try:
                    client.ping()
                except (docker.errors.DockerException, OSError):
                    client.close()
                else:
                    return client
            time.sleep(0.1)
        tail = self.log.read_text(errors="replace").strip()[-400:] if self.log.exists() else ""
        self.stop()
        msg = f"podman system service ({self.mode.key}) did not start: {tail or 'no output'}"
        raise BackendUnavailable(msg)

    def ensure_image(self, tree: Path, tag: str) -> None:
        """Import the shared rootfs into this store unless ``tag`` is there already."""
        if image_exists(self.client, tag):
            return
        digest = tag.partition(":")[2]
        _import(self.client, tree, tag, digest)
        if not image_exists(self.client, tag):  # Podman's compat import ignores the tag
            newest = max(self.client.images.list(REPOSITORY), key=lambda i: i.attrs["Created"])
            newest.tag(REPOSITORY, digest)

    def limits(self) -> dict[str, int]:
        """Hard nofile/nproc limits of the service: containers may not ask for more."""
        # /proc/PID/limits, not prlimit(): a rootless service lives in a user namespace
        # where even root may not call prlimit() on it.
        names = {"Max open files": "nofile", "Max processes": "nproc"}
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            for label, key in names.items():
                fields = line.removeprefix(label).split()
                if line.startswith(label) and fields[1].isdigit():
                    out[key] = int(fields[1])
        return out

    def stop(self) -> None:
        """Stop the service (containers must be removed first) and close the client."""
        with contextlib.suppress(AttributeError):
            self.client.close()
        _terminate(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.socket.unlink(missing_ok=True)


def _cli(podman: str, mode: Mode, user: pwd.struct_passwd | None, directory: Path) -> Cli:
    """The ``podman`` command line and identity of ``mode``: the service's and the CLI's alike."""
    argv = [podman, *GLOBAL_FLAGS]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    if user is None:  # rootful uses the host's store
        return Cli(tuple(argv), {**env, "HOME": "/root"}, cwd="/")
    home = Path(user.pw_dir)
    argv += [f"--storage-driver={_driver(mode.storage)}", *_storage_opts(mode.storage)]
    argv += [f"--root={home}/.local/share/isobench/storage-{mode.storage}"]  # one per driver
    argv += [f"--runroot={directory}/isobench-{mode.storage}"]
    env |= {"HOME": str(home), "USER": user.pw_name, "XDG_RUNTIME_DIR": str(directory)}
    return Cli(tuple(argv), env, user.pw_uid, user.pw_gid, str(home))


def _driver(storage: str) -> str:
    return "overlay" if storage == "fuse-overlayfs" else storage


def _storage_opts(storage: str) -> list[str]:
    if storage == "fuse-overlayfs":
        return ["--storage-opt=overlay.mount_program=/usr/bin/fuse-overlayfs"]
    return []


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def kill_leftover_helpers(name_prefix: str, rootless_uid: int | None) -> int:
    """Kill conmons of this instance's containers and the rootless user's processes.

    A conmon is started with ``-n NAME``, its container's name; every container of one backend
    instance is named ``name_prefix...``, so this finds them all, including those of containers
    a repetition already removed. Podman keeps each exec session's conmon for
    ``exit_command_delay`` (300 s) after the exec ends, even when its container is gone, and a
    container's own conmon can outlive the container's forced removal (its exit command still
    running); rootless Podman keeps a pause process (``catatonit -P``) holding its user
    namespace. None may outlive a run.
    """
    if rootless_uid is not None and _other_live_services():
        rootless_uid = None  # another harness still uses the rootless user: leave it alone
    killed: list[psutil.Process] = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "uids"]):
        mine = rootless_uid is not None and proc.info["uids"].real == rootless_uid
        if mine or (proc.info["name"] == "conmon" and _names(proc.info["cmdline"], name_prefix)):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed.append(proc)
    psutil.wait_procs(killed, timeout=10)  # SIGKILL is asynchronous: return once they are gone
    return len(killed)


def _names(argv: list[str] | None, prefix: str) -> bool:
    """Whether a conmon's ``argv`` gives it a container named ``prefix...`` (``-n NAME``)."""
    args = argv or []
    return any(a == "-n" and b.startswith(prefix) for a, b in itertools.pairwise(args))


def _alive(pid: str, start: str) -> bool:
    """Whether the harness named in a socket (pid and start time, this boot) still runs."""
    return process_start(int(pid)) == start


def _other_live_services() -> bool:
    """Whether an API service of another live harness process is running."""
    owner = ownership.current()
    me = f"{owner.pid}_{owner.start}"
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] != "podman" or "service" not in cmdline:
            continue
        found = next((m for arg in cmdline if (m := _SOCKET.search(arg))), None)
        if (
            found
            and f"{found.group(1)}_{found.group(2)}" != me
            and _alive(found.group(1), found.group(2))
        ):
            return True
    return False


def stop_orphan_services() -> list[str]:
    """Stop API services started by a harness process that no longer runs."""
    stopped: list[str] = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] != "podman" or "service" not in cmdline:
            continue
        found = next((m for arg in cmdline if (m := _SOCKET.search(arg))), None)
        if found is None or _alive(found.group(1), found.group(2)):
            continue
        _terminate(proc.info["pid"])
        stopped.append(f"podman service pid {proc.info['pid']}")
    return stopped

"""Who owns a leftover, and is that owner still alive? One rule for everything the harness makes.

Every container, volume, network, VM (domain, volumes, directory) and scratch directory the
harness creates carries an *owner token* naming the harness process that made it::

    o1:<host fingerprint>:<boot id>:<pid namespace>:<pid>:<start time>

The host fingerprint is :func:`bench.sysinfo.host_identity`'s (the one the results carry); the
start time is field 22 of /proc/PID/stat (clock ticks after boot), so a pid that the kernel
has since given to another process does not keep an orphan alive. The boot id and the pid
namespace say where that pid can be checked at all.

:func:`judge` decides, for one token:

* ``alive``: this host, this boot, this pid namespace, and that pid still runs with that
  start time. Kept.
* ``dead``: this host, and the owner is provably gone (another boot, or the pid no longer
  runs with that start time). Removed by cleanup.
* ``foreign``: another host (a shared ``DOCKER_HOST`` or docker.sock), or a pid namespace we
  cannot look into (a harness inside a container). Listed, never removed.
* ``unproven``: no token, or not one isobench writes. Listed, never removed.

Cleanup (:func:`sweep`) removes only ``dead`` leftovers; it runs at the start of a run that
uses the backend concerned, and from ``isobench clean`` (which only lists unless ``--yes``).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from bench.paths import cache_dir
from bench.procgroup import process_start
from bench.sysinfo import host_identity

VERSION: Final = "o1"
#: File holding the owner token in a directory the harness creates (VM dirs, scratch dirs).
OWNER_FILE: Final = "isobench-owner"
BOOT_ID_FILE: Final = "/proc/sys/kernel/random/boot_id"

State = Literal["alive", "dead", "foreign", "unproven"]


@dataclass(frozen=True, slots=True)
class Scope:
    """Where owner pids can be checked: this host, this boot, this pid namespace."""

    host: str
    boot: str
    pidns: str


@dataclass(frozen=True, slots=True)
class Owner:
    """The harness process that created something."""

    host: str
    boot: str
    pidns: str
    pid: int
    start: str

    @property
    def token(self) -> str:
        """The text stored in labels and owner files."""
        return f"{VERSION}:{self.host}:{self.boot}:{self.pidns}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner a token names, or None when ``text`` is not a token isobench writes."""
        parts = (text or "").strip().split(":")
        if len(parts) != 6 or parts[0] != VERSION or not all(parts[1:]):
            return None
        _, host, boot, pidns, pid, start = parts
        if not (pid.isdigit() and start.isdigit()):
            return None
        return cls(host, boot, pidns, int(pid), start)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a leftover's owner is alive, and why we think so."""

    state: State
    reason: str


def judge(text: str | None, here: Scope, start_of: Callable[[int], str | None]) -> Verdict:
    """The verdict on owner token ``text`` seen from ``here`` (pure: ``start_of`` reads /proc)."""
    if not (text or "").strip():
        return Verdict("unproven", "no owner token")
    owner = Owner.parse(text)
    if owner is None:
        return Verdict("unproven", f"owner {text!r} is not an isobench owner token")
    if owner.host != here.host:
        return Verdict("foreign", f"created on another host (fingerprint {owner.host})")
    if owner.boot != here.boot:
        return Verdict("dead", f"owner pid {owner.pid} ran before this host's last boot")
    if owner.pidns != here.pidns:
        return Verdict("foreign", f"owner pid {owner.pid} is in another pid namespace")
    started = start_of(owner.pid)
    if started == owner.start:
        return Verdict("alive", f"owner pid {owner.pid} is running")
    if started is None:
        return Verdict("dead", f"owner pid {owner.pid} is gone")
    return Verdict("dead", f"owner pid {owner.pid} is gone (the pid now names another process)")


@functools.cache
def scope() -> Scope:
    """This process's scope (host fingerprint, boot id, pid namespace)."""
    try:
        boot = Path(BOOT_ID_FILE).read_text().strip().replace("-", "")[:12]
    except OSError:
        boot = "noboot"
    try:
        pidns = str(Path("/proc/self/ns/pid").readlink()).partition("[")[2].rstrip("]")
    except OSError:
        pidns = "nons"
    return Scope(host_identity()["fingerprint"], boot or "noboot", pidns or "nons")


def current() -> Owner:
    """The owner token of this harness process."""
    pid = os.getpid()
    here = scope()
    return Owner(here.host, here.boot, here.pidns, pid, process_start(pid) or "0")


def verdict(text: str | None) -> Verdict:
    """:func:`judge` for this host, read from /proc."""
    return judge(text, scope(), process_start)


# -- leftovers and cleanup ------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """Something the harness may have created, its owner's verdict, and how to remove it."""

    kind: str  # "docker container", "libvirt domain", "scratch directory"...
    name: str
    verdict: Verdict
    remove: Callable[[], object] = field(compare=False, repr=False)

    def describe(self) -> str:
        """``docker container isobench-1a2b-exec-1 (owner pid 123 is gone)``."""
        return f"{self.kind} {self.name} ({self.verdict.reason})"


@dataclass
class Sweep:
    """What a cleanup did: removed (dead owners), kept as foreign/unproven, failed removals."""

    removed: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """One line per kind of outcome, for a backend's notes()."""
        out = []
        if self.removed:
            out.append("removed leftovers of dead isobench runs: " + "; ".join(self.removed))
        if self.failed:
            out.append("could not remove leftovers: " + "; ".join(self.failed))
        if self.listed:
            out.append("kept, not provably ours (remove by hand): " + "; ".join(self.listed))
        return out


def sweep(leftovers: Iterable[Leftover], *, apply: bool = True) -> Sweep:
    """Remove the leftovers whose owner is dead (when ``apply``); list the unprovable ones."""
    result = Sweep()
    for item in leftovers:
        if item.verdict.state == "alive":
            continue
        if item.verdict.state != "dead":
            result.listed.append(item.describe())
            continue
        if not apply:
            continue
        try:
            item.remove()
        except Exception as exc:  # one stubborn leftover must not stop the others
            result.failed.append(f"{item.describe()}: {exc}")
        else:
            result.removed.append(item.describe())
    return result


# -- owner files and scratch directories ----------------------------------------------------


def write_owner_file(directory: Path) -> None:
    """Record this process as the owner of ``directory`` (atomically)."""
    tmp = directory / f".{OWNER_FILE}.tmp"
    tmp.write_text(current().token + "\n", encoding="ascii")
    tmp.replace(directory / OWNER_FILE)


def read_owner_file(directory: Path) -> str | None:
    """The owner token recorded in ``directory``, or None."""
    try:
        return (directory / OWNER_FILE).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def scratch_root() -> Path:
    """Where runs keep scratch data (fio files, working directories): never in the results."""
    return cache_dir() / "scratch"


def make_owned_dir(directory: Path) -> Path:
    """Create ``directory`` (parents too) with this process's owner file in it."""
    directory.mkdir(parents=True)
    write_owner_file(directory)
    return directory


def make_scratch(run_id: str) -> Path:
    """A new scratch directory for run ``run_id`` of this process, with its owner file."""
    return make_owned_dir(scratch_root() / f"{run_id}-{os.getpid()}")


def remove_tree(path: Path) -> None:
    """Remove a directory tree; raise when it could not be removed."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        msg = f"{path} could not be removed"
        raise OSError(msg)


def scratch_leftovers(root: Path | None = None, kind: str = "scratch directory") -> list[Leftover]:
    """Every directory under ``root`` (default: the scratch root) with its owner's verdict."""
    base = root or scratch_root()
    if not base.is_dir():
        return []
    return [
        Leftover(
            kind,
            str(directory),
            verdict(read_owner_file(directory)),
            functools.partial(remove_tree, directory),
        )
        for directory in sorted(base.iterdir())
        if directory.is_dir()
    ]

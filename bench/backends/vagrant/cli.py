"""Vagrant driven through python-vagrant, every call under the harness's own watchdog.

python-vagrant runs ``vagrant`` with ``subprocess.check_call``/``check_output`` and has no
timeouts. :func:`watched` runs one of its calls on the calling thread while a watchdog thread
waits for the deadline; past it, the watchdog kills the process tree of every child of this
process whose working directory is the call's Vagrant directory (python-vagrant starts
``vagrant`` with ``cwd=root``, and each VM has a directory of its own), and keeps doing so until
the call returns, so even a call that had not yet spawned its process when the deadline passed
is stopped. The killed call raises ``CalledProcessError``, reported as
:class:`~bench.values.RepetitionTimeout`.

Output goes through python-vagrant's ``out_cm``/``err_cm`` into the directory's log file; the
environment through its ``env``.

Why not :mod:`bench.procgroup`'s group kill: python-vagrant starts ``vagrant`` in the harness's
own process group (it offers no ``start_new_session``), so a group kill would hit the harness;
the working directory is what identifies the tree. psutil checks each process's start time
before signalling it, so a reused pid is never hit. Not registered with the reaper: if the
harness itself is SIGKILLed mid-call, the next run's orphan sweep removes the VM.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import psutil

from bench.values import BackendError, RepetitionTimeout

T = TypeVar("T")
#: How often the watchdog, once the deadline has passed, looks again for processes to kill.
KILL_INTERVAL: Final = 0.1


class VagrantError(BackendError):
    """A vagrant/virsh call failed; the message carries the tail of its output."""


def log_tail(path: Path, limit: int = 800) -> str:
    """The end of a Vagrant log, without the box upload's thousands of progress fragments."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [ln for ln in re.split(r"[\r\n]+", text) if ln.strip() and "Progress:" not in ln]
    return "\n".join(lines)[-limit:]


def kill_children_in(cwd: Path) -> int:
    """SIGKILL every child of this process running in ``cwd``, with its descendants."""
    killed = 0
    for child in psutil.Process().children():
        try:
            if Path(child.cwd()) != cwd:
                continue
            tree = [child, *child.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:  # the parent first: it cannot start new children once dead
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed += 1
    return killed


def watched(call: Callable[[], T], *, what: str, cwd: Path, timeout: float, log: Path) -> T:
    """Run ``call`` (a python-vagrant call working in ``cwd``); kill it past ``timeout``."""
    done, expired = threading.Event(), threading.Event()

    def watchdog() -> None:
        if done.wait(timeout):
            return
        expired.set()
        while not done.is_set():
            kill_children_in(cwd)
            done.wait(KILL_INTERVAL)

    thread = threading.Thread(target=watchdog, name=f"watchdog-{what}", daemon=True)
    thread.start()
    try:
        return call()
    except subprocess.CalledProcessError as exc:
        if expired.is_set():
            msg = f"`vagrant {what}` did not finish within {timeout:g} s (killed by the watchdog)"
            raise RepetitionTimeout(msg) from None
        msg = f"`vagrant {what}` failed (exit {exc.returncode}): {log_tail(log)}"
        raise VagrantError(msg) from None
    except BaseException:
        # Ctrl-C: subprocess kills only the direct child; vagrant's own children go too, before
        # anyone tries `vagrant destroy` (which would wait for the machine lock).
        kill_children_in(cwd)
        raise
    finally:
        done.set()
        thread.join()


class VagrantCli:
    """python-vagrant bound to one directory, its log and its environment."""

    def __init__(self, root: Path, env: Mapping[str, str], log: Path) -> None:
        # Imported here: python-vagrant looks for the executable (and warns) at import time.
        vagrant: Any = importlib.import_module("vagrant")
        self.root, self.log = root, log
        cm = vagrant.make_file_cm(str(log))
        self._v: Any = vagrant.Vagrant(root=str(root), env=dict(env), out_cm=cm, err_cm=cm)

    def _call(self, what: str, call: Callable[[], T], timeout: float) -> T:
        with self.log.open("a") as fh:
            fh.write(f"\n$ vagrant {what}  # {time.ctime()}\n")
        return watched(call, what=what, cwd=self.root, timeout=timeout, log=self.log)

    def up(self, timeout: float) -> None:
        """``vagrant up --provider=libvirt``."""
        self._call("up", lambda: self._v.up(provider="libvirt"), timeout)

    def halt(self, timeout: float) -> None:
        """``vagrant halt`` (a clean guest shutdown)."""
        self._call("halt", self._v.halt, timeout)

    def destroy(self, timeout: float) -> None:
        """``vagrant destroy --force``."""
        self._call("destroy", self._v.destroy, timeout)

    def status(self, timeout: float) -> str:
        """State of the default machine (``not_created``, ``running``, ``shutoff``...)."""
        statuses = self._call("status", self._v.status, timeout)
        return str(statuses[0].state) if statuses else "unknown"

    def ssh_config(self, timeout: float) -> str:
        """``vagrant ssh-config`` output."""
        return str(self._call("ssh-config", self._v.ssh_config, timeout))

    def version(self, timeout: float) -> str:
        """Vagrant's version (``vagrant --version``)."""
        return str(self._call("--version", self._v.version, timeout))

    def plugins(self, timeout: float) -> list[tuple[str, str]]:
        """Installed plugins as (name, version)."""
        found = self._call("plugin list", self._v.plugin_list, timeout)
        return [(str(p.name), str(p.version)) for p in found]

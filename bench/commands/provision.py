"""``isobench provision``: install and start the engines (root, Debian/Ubuntu)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from bench.paths import REPO_ROOT

TARGETS = ("all", "tools", "docker", "podman", "sandbox", "vagrant")


def register(sub: Any) -> None:
    """Add the ``provision`` subcommand."""
    parser = sub.add_parser(
        "provision",
        help="install/start Docker, libvirt+Vagrant and the workload tools (root)",
        description=(
            "Make this Debian/Ubuntu host ready for every backend, idempotently: install the "
            "workload and reference tools, docker.io (+crun) and qemu/libvirt/vagrant/"
            "vagrant-libvirt from the distribution, and start dockerd, virtlogd and libvirtd "
            "by hand when no init system manages them. Each step is announced. Runs "
            "scripts/provision from the checkout."
        ),
    )
    parser.add_argument(
        "targets",
        nargs="*",
        default=[],
        metavar="TARGET",
        help="what to provision: all (default), tools, docker, podman, sandbox, vagrant",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run scripts/provision with the requested targets."""
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(
            f"isobench provision: unknown target {unknown[0]!r} (expected: {', '.join(TARGETS)})",
            file=sys.stderr,
        )
        return 2
    script = REPO_ROOT / "scripts" / "provision"
    if not script.exists():
        print(
            f"isobench provision: {script} not found (run from a source checkout)", file=sys.stderr
        )
        return 2
    proc = subprocess.run(["bash", str(script), *args.targets], check=False)
    return proc.returncode

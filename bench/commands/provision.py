"""``isobench provision``: install and start the engines (root, Debian/Ubuntu)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from bench.commands import common
from bench.paths import resource

TARGETS = ("all", "tools", "docker", "podman", "sandbox", "vagrant")


def register(sub: Any) -> None:
    """Add the ``provision`` subcommand."""
    parser = common.add_command(
        sub,
        "provision",
        help="install/start Docker, libvirt+Vagrant and the workload tools (root)",
        description=(
            "Make this Debian/Ubuntu host ready for every backend, idempotently: install the "
            "workload and reference tools, docker.io (+crun) and qemu/libvirt/vagrant/"
            "vagrant-libvirt from the distribution, and start dockerd, virtlogd and libvirtd "
            "by hand when no init system manages them. Each step is announced. Runs "
            "the provisioning scripts shipped with isobench (scripts/provision in a checkout)."
        ),
        epilog="""\
examples:
  sudo isobench provision             everything
  sudo isobench provision docker      docker.io + crun, dockerd

exit status: that of scripts/provision (0 done, 1 failed or not root); 2 unknown target.
""",
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
    try:
        script = resource("scripts/provision")
    except FileNotFoundError as exc:
        print(f"isobench provision: {exc}", file=sys.stderr)
        return 1
    proc = subprocess.run(["bash", str(script), *args.targets], check=False)
    return proc.returncode

"""``isobench env``: build and inspect the guest environment (rootfs, Docker image, box)."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from bench import backends as registry


def register(sub: Any) -> None:
    """Add the ``env`` subcommand group."""
    parser = sub.add_parser(
        "env",
        help="build the guest environment offline (rootfs, Docker image, Vagrant box)",
        description=(
            "The guest environment is ONE Debian 12 root filesystem built with debootstrap "
            "(workload tools, the static probe, kernel, systemd, sshd, the vagrant user). It "
            "is imported into Docker as isobench/debian12:<hash> and packed into a libvirt "
            "Vagrant box isobench/debian12-<hash>, so container and VM run an identical "
            "userland. Everything is content-hashed and rebuilt only when inputs change."
        ),
    )
    actions = parser.add_subparsers(dest="env_action", metavar="ACTION")
    build = actions.add_parser("build", help="build (or reuse) rootfs, image and box")
    build.add_argument(
        "--only",
        choices=["rootfs", "image", "box"],
        action="append",
        help="build only these parts (repeatable; default: all that the host supports)",
    )
    build.add_argument("--force", action="store_true", help="rebuild the rootfs even if cached")
    build.set_defaults(func=run_build)
    status = actions.add_parser("status", help="show the current content hashes")
    status.set_defaults(func=run_status)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])


def _log(message: str) -> None:
    print(f"[env] {message}", flush=True)


def run_build(args: argparse.Namespace) -> int:
    """Build rootfs, then the Docker image and the Vagrant box where the host can."""
    import importlib  # noqa: PLC0415 - keep CLI start-up light

    from bench.envbuild import rootfs  # noqa: PLC0415

    parts = set(args.only or ["rootfs", "image", "box"])
    try:
        rootfs.ensure_rootfs(_log, force=args.force)
    except Exception as exc:
        print(f"[env] rootfs build failed: {exc}", file=sys.stderr)
        return 1
    failures = 0
    # part -> (module, builder, what it is called in messages)
    builders = {
        "image": ("bench.envbuild.image", "ensure_image", "docker image"),
        "box": ("bench.envbuild.box", "ensure_box", "vagrant box"),
    }
    for part, (module, function, label) in builders.items():
        if part not in parts:
            continue
        try:
            built = getattr(importlib.import_module(module), function)(_log)
            _log(f"{label}: {built}")
        except Exception as exc:  # one failed part must not hide the others
            failures += 1
            print(f"[env] {label} not built: {exc}", file=sys.stderr)
    return 1 if failures else 0


def run_status(_args: argparse.Namespace) -> int:
    """Print the content hashes, whether each artifact is built, and the tools found."""
    from bench.envbuild import box, rootfs  # noqa: PLC0415

    digest = rootfs.rootfs_hash()
    tree = rootfs.rootfs_path(digest)
    built = (tree / ".isobench-complete").exists()
    print(f"rootfs   {'built  ' if built else 'missing'}  {tree}")
    print(f"image    isobench/debian12:{digest}  (check: docker image inspect)")
    name = box.box_name()
    print(f"box      {'built  ' if box.box_installed(name) else 'missing'}  {name}")
    for tool in ("debootstrap", "docker", "vagrant", "virsh"):
        print(f"{tool:<12} {shutil.which(tool) or 'not installed'}")
    for name, probed in registry.probe().items():
        state = "available" if probed.availability.ok else "unavailable"
        print(f"backend  {name:<8} {state}  {probed.availability.reason}".rstrip())
    return 0

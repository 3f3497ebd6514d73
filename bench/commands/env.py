"""``isobench env``: build and inspect the guest environment (rootfs, Docker image, box)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import backends as registry
from bench.commands import common
from bench.paths import scenarios_dir


def register(sub: Any) -> None:
    """Add the ``env`` subcommand group."""
    parser = common.add_command(
        sub,
        "env",
        help="build the guest environment offline (rootfs, Docker image, Vagrant box)",
        description=(
            "The guest environment is ONE Debian 12 root filesystem built with debootstrap "
            "(workload tools, the static probe, kernel, systemd, sshd, the vagrant user). It "
            "is imported into Docker as isobench/debian12:<hash> and packed into a libvirt "
            "Vagrant box isobench/debian12-<hash>, so container and VM run an identical "
            "userland. Everything is content-hashed and rebuilt only when inputs change. "
            "Scenarios' `requires:` packages are added to the base list (the union over the "
            "scenarios given, default scenarios/, and every earlier build's)."
        ),
        epilog="""\
The rootfs is built from the Debian mirror configured in this host's apt sources
(/etc/apt/sources.list.d/*.sources or /etc/apt/sources.list); nothing else is contacted.

examples:
  isobench env status                 built / stale / missing, per artefact
  isobench env build                  build what is missing or stale
  isobench env build --only image     only the Docker image (and the rootfs it needs)
""",
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
    build.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="SCENARIO_FILE_OR_DIR",
        help="scenarios whose `requires:` packages to bake in (default: scenarios/)",
    )
    build.set_defaults(func=run_build)
    status = actions.add_parser(
        "status",
        help="per artefact: built, stale (older inputs) or missing",
        description="For the rootfs, the Docker image and the Vagrant box: built (the "
        "current content hash is present), stale (only a build of older inputs is: run "
        "`isobench env build`), missing, or unknown (engine unreachable); then the tools "
        "found and each backend's availability.",
    )
    status.set_defaults(func=run_status)

    def show_help(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=show_help)


def _log(message: str) -> None:
    print(f"[env] {message}", flush=True)


def run_build(args: argparse.Namespace) -> int:
    """Build rootfs, then the Docker image and the Vagrant box where the host can."""
    import importlib  # noqa: PLC0415 - keep CLI start-up light

    from bench.envbuild import rootfs  # noqa: PLC0415

    parts = set(args.only or ["rootfs", "image", "box"])
    extra = _required_packages(args.paths or [scenarios_dir()])
    if extra is None:
        return 1
    try:
        rootfs.ensure_rootfs(_log, force=args.force, extra=extra)
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


def _required_packages(paths: list[Path]) -> tuple[str, ...] | None:
    """The union of the scenarios' ``requires``; None (after saying why) if any is invalid."""
    from bench.scenario.loader import ScenarioLoadError, load_scenarios  # noqa: PLC0415

    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"[env] no such file or directory: {', '.join(map(str, missing))}", file=sys.stderr)
        return None
    try:
        loaded = load_scenarios(paths)
    except ScenarioLoadError as exc:
        print("[env] invalid scenario file(s), nothing was built:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return None
    return tuple(sorted({name for item in loaded for name in item.scenario.requires}))


def _artefacts() -> list[tuple[str, str, str, str]]:
    """(artefact, state, current name, detail) for rootfs, image and box.

    state: ``built`` (the current content hash is present), ``stale`` (only an older build
    is: inputs changed since, ``isobench env build`` rebuilds), ``missing`` (none at all),
    ``unknown`` (the engine cannot be asked).
    """
    from bench.envbuild import box, image, rootfs  # noqa: PLC0415

    rows: list[tuple[str, str, str, str]] = []
    try:
        digest = rootfs.rootfs_hash()
    except (OSError, ValueError) as exc:  # e.g. vagrant's key or the apt mirror not found
        return [("rootfs", "unknown", "-", str(exc))]
    tree = rootfs.rootfs_path(digest)
    others = [p.name for p in tree.parent.glob("rootfs-*") if p != tree and p.is_dir()]
    state = "built" if (tree / ".isobench-complete").exists() else "stale" if others else "missing"
    rows.append(("rootfs", state, str(tree), ", ".join(others) if state == "stale" else ""))
    tag = image.image_tag(digest)
    try:
        client = image.connect(timeout=5.0)
        tags = [t for i in client.images.list(image.REPOSITORY) for t in i.tags]
    except Exception as exc:  # no engine: say so, the rest of the status still prints
        rows.append(("image", "unknown", tag, image.unreachable_reason(exc)))
    else:
        older = [t for t in tags if t != tag]
        state = "built" if tag in tags else "stale" if older else "missing"
        rows.append(("image", state, tag, ", ".join(older) if state == "stale" else ""))
    name = box.box_name()
    store = box.box_dir(name).parent
    prefix = box.box_dir(box.BOX_PREFIX).name
    older = sorted(
        p.name.replace("-VAGRANTSLASH-", "/")
        for p in store.glob(f"{prefix}-*")
        if p.name != box.box_dir(name).name
    )
    state = "built" if box.box_installed(name) else "stale" if older else "missing"
    rows.append(("box", state, name, ", ".join(older) if state == "stale" else ""))
    return rows


def run_status(_args: argparse.Namespace) -> int:
    """Per artefact built/missing/stale with its name, the tools found, the backends."""
    for artefact, state, name, detail in _artefacts():
        extra = f"  (older: {detail})" if state == "stale" else f"  ({detail})" if detail else ""
        print(f"{artefact:<8} {state:<8} {name}{extra}")
    from bench.envbuild.rootfs import recorded_extras  # noqa: PLC0415

    print(f"extras   {' '.join(recorded_extras()) or '(none)'}  (scenarios' requires)")
    for tool in ("debootstrap", "docker", "vagrant", "virsh"):
        print(f"{tool:<12} {shutil.which(tool) or 'not installed'}")
    for name, probed in registry.probe().items():
        state = "available" if probed.availability.ok else "unavailable"
        print(f"backend  {name:<8} {state}  {probed.availability.reason}".rstrip())
    return 0

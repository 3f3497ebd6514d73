"""The Vagrant (libvirt) box, built offline from the SAME rootfs as the Docker image.

No installer, no bootloader: the rootfs tree becomes an ext4 filesystem image (``mkfs.ext4 -d``)
converted to qcow2, and the box boots it by direct kernel boot with the rootfs's own kernel and
initrd (``libvirt.kernel`` / ``libvirt.initrd`` / ``libvirt.cmd_line`` in the box Vagrantfile).
The box adds, on top of the shared rootfs (which stays as the Docker image has it), the guest
half of the **readiness marker** (:data:`GUEST_FILES`): a udev rule that starts two units when the
virtio-serial port ``org.isobench.marker`` appears; ``isobench-ready.service`` (after
basic.target) writes ``isobench-marker ready``, runs the probe, writes ``isobench-marker exit``;
``isobench-ssh.service`` (after sshd is up and networkd has configured a link) writes
``isobench-marker ssh``. The host timestamps each line as it arrives (see
:mod:`bench.backends.vagrant.marker`). Without the channel (a VM brought up by hand) nothing runs.

The box name carries a content hash of the rootfs hash, this recipe and the guest files, so it is
rebuilt only when an input changes; older ``isobench/debian12-*`` boxes are removed when a new one
is added. Everything lives in the cache directory and in Vagrant's box store, never in git.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from bench.envbuild.rootfs import ensure_rootfs, kernel_files, rootfs_hash
from bench.paths import cache_dir
from bench.workloads import GUEST_PROBE

BOX_RECIPE_VERSION: Final = 2
BOX_PREFIX: Final = "isobench/debian12"
#: Sparse virtual disk size: room for the ~0.5 GB userland plus fio's files.
DISK_GIB: Final = 4
KERNEL_CMDLINE: Final = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
VAGRANT_TIMEOUT: Final = 600.0

Log = Callable[[str], None]

#: virtio-serial port name of the readiness channel (the Vagrantfile's ``target_name``).
MARKER_PORT: Final = "org.isobench.marker"
MARKER_SCRIPT: Final = "/opt/isobench/bin/isobench-marker"

#: Files the box adds to the rootfs: path in the guest -> (mode, content).
GUEST_FILES: Final[dict[str, tuple[int, str]]] = {
    MARKER_SCRIPT: (
        0o755,
        f"""\
#!/bin/sh
# isobench readiness marker: tells the host, over virtio-serial port {MARKER_PORT},
# how far the boot got. The host timestamps each line as it arrives.
port=/dev/virtio-ports/{MARKER_PORT}
case "$1" in
ready)
    exec >"$port"
    echo "isobench-marker ready"
    {GUEST_PROBE} ready
    echo "isobench-marker exit rc=$?"
    ;;
ssh)
    # sshd is up (ssh.service is Type=notify); wait (netlink, no polling) for a configured link.
    /usr/lib/systemd/systemd-networkd-wait-online --any --timeout=600 >/dev/null 2>&1
    echo "isobench-marker ssh rc=$?" >"$port"
    ;;
esac
""",
    ),
    "/etc/udev/rules.d/60-isobench-marker.rules": (
        0o644,
        f"""\
# The isobench readiness channel: start the marker units when its port appears.
# Every action but remove keeps the systemd tag (a "change" event without it unplugs the unit).
ACTION!="remove", SUBSYSTEM=="virtio-ports", ATTR{{name}}=="{MARKER_PORT}", TAG+="systemd", \
ENV{{SYSTEMD_WANTS}}+="isobench-ready.service isobench-ssh.service"
""",
    ),
    "/etc/systemd/system/isobench-ready.service": (
        0o644,
        f"""\
[Unit]
Description=isobench readiness marker (probe run at boot)
# Default dependencies: after basic.target, i.e. when ordinary services start.

[Service]
Type=oneshot
ExecStart={MARKER_SCRIPT} ready
""",
    ),
    "/etc/systemd/system/isobench-ssh.service": (
        0o644,
        f"""\
[Unit]
Description=isobench SSH marker (sshd up and a network link configured)
# After the ready unit: the port is opened by one writer at a time.
After=ssh.service isobench-ready.service

[Service]
# Type=simple: the boot (systemd-analyze) does not wait for the network wait inside.
Type=simple
ExecStart={MARKER_SCRIPT} ssh
""",
    ),
}

BOX_VAGRANTFILE: Final = f"""\
# Box-level Vagrantfile of the isobench box: direct kernel boot, no bootloader in the image.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.kernel = File.join(File.dirname(__FILE__), "vmlinuz")
    libvirt.initrd = File.join(File.dirname(__FILE__), "initrd.img")
    libvirt.cmd_line = "{KERNEL_CMDLINE}"
    libvirt.disk_bus = "virtio"
  end
end
"""


def box_hash(rootfs_digest: str | None = None) -> str:
    """Content hash of the box inputs: rootfs hash + this recipe (12 hex digits)."""
    inputs = {
        "rootfs": rootfs_digest or rootfs_hash(),
        "recipe": BOX_RECIPE_VERSION,
        "disk_gib": DISK_GIB,
        "vagrantfile": BOX_VAGRANTFILE,
        "guest_files": {path: [mode, text] for path, (mode, text) in GUEST_FILES.items()},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def box_name(digest: str | None = None) -> str:
    """Name under which the current box is added to Vagrant."""
    return f"{BOX_PREFIX}-{digest or box_hash()}"


def vagrant_home() -> Path:
    """Vagrant's data directory (``$VAGRANT_HOME``, default ~/.vagrant.d)."""
    env = os.environ.get("VAGRANT_HOME")
    return Path(env) if env else Path.home() / ".vagrant.d"


def box_dir(name: str) -> Path:
    """Where Vagrant unpacks box ``name`` for the libvirt provider (any version)."""
    return vagrant_home() / "boxes" / name.replace("/", "-VAGRANTSLASH-")


def box_installed(name: str | None = None) -> bool:
    """True when box ``name`` (default: the current one) is in Vagrant's store.

    Reads the box store directly: ``vagrant box list`` costs ~3 s of Ruby start-up.
    """
    root = box_dir(name or box_name())
    return any(root.glob("*/libvirt/box.img"))


def _run(argv: Sequence[str], log: Log, timeout: float = VAGRANT_TIMEOUT) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        msg = f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        raise RuntimeError(msg)
    return proc.stdout


def _overlay(tree: Path, work: Path, log: Log) -> Path:
    """A hard-linked copy of ``tree`` plus :data:`GUEST_FILES` (the shared tree is untouched)."""
    copy = work / "tree"
    log(f"adding the readiness marker to a hard-linked copy of {tree.name}")
    _run(["cp", "-al", str(tree), str(copy)], log)
    for guest_path, (mode, text) in GUEST_FILES.items():
        dest = copy / guest_path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)  # never write through a hard link into the shared tree
        dest.write_text(text)
        dest.chmod(mode)
    return copy


def _assemble(tree: Path, work: Path, log: Log) -> Path:
    """Turn the rootfs ``tree`` into ``work/<name>.box``; return the box file."""
    raw, image = work / "root.raw", work / "box.img"
    source = _overlay(tree, work, log)
    log(f"creating {DISK_GIB} GiB ext4 image from {source} (mkfs.ext4 -d)")
    with raw.open("wb") as fh:
        fh.truncate(DISK_GIB * 1024**3)
    _run(["mkfs.ext4", "-q", "-F", "-L", "isobench", "-d", str(source), str(raw)], log)
    shutil.rmtree(source)
    log("converting to qcow2")
    _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(image)], log)
    raw.unlink()
    kernel, initrd = kernel_files(tree)
    shutil.copyfile(kernel, work / "vmlinuz")
    shutil.copyfile(initrd, work / "initrd.img")
    metadata = {"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB}
    (work / "metadata.json").write_text(json.dumps(metadata) + "\n")
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    box = work / "isobench.box"
    log("packing the box (tar czf)")
    members = ["metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img"]
    _run(["tar", "-C", str(work), "-czf", str(box), *members], log)
    return box


def _remove_stale_boxes(keep: str, log: Log) -> None:
    """Remove older isobench boxes and their libvirt base volumes (they are caches)."""
    boxes = vagrant_home() / "boxes"
    prefix = BOX_PREFIX.replace("/", "-VAGRANTSLASH-") + "-"
    for entry in sorted(boxes.glob(prefix + "*")) if boxes.is_dir() else []:
        name = entry.name.replace("-VAGRANTSLASH-", "/")
        if name == keep:
            continue
        log(f"removing stale box {name}")
        try:
            _run(["vagrant", "box", "remove", "--force", "--all", name], log)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"  could not remove {name}: {exc}")
        delete_box_volumes(name)


def _remove_stale_volumes(keep: str) -> None:
    """Delete pool base volumes of isobench boxes other than ``keep`` (no longer used)."""
    prefix = BOX_PREFIX.replace("/", "-VAGRANTSLASH-") + "-"
    keep_prefix = keep.replace("/", "-VAGRANTSLASH-") + "_"
    for volume in libvirt_volumes():
        if volume.startswith(prefix) and not volume.startswith(keep_prefix):
            subprocess.run(
                ["virsh", "-c", "qemu:///system", "vol-delete", "--pool", "default", volume],
                capture_output=True,
                timeout=60,
                check=False,
            )


def delete_box_volumes(name: str) -> None:
    """Delete the base volumes vagrant-libvirt uploaded for box ``name`` (a stale copy)."""
    prefix = name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image"
    for volume in libvirt_volumes():
        if volume.startswith(prefix):
            subprocess.run(
                ["virsh", "-c", "qemu:///system", "vol-delete", "--pool", "default", volume],
                capture_output=True,
                timeout=60,
                check=False,
            )


def libvirt_volumes(pool: str = "default") -> list[str]:
    """Names of the volumes in libvirt ``pool`` (empty when the pool or libvirtd is missing)."""
    try:
        proc = subprocess.run(
            ["virsh", "-c", "qemu:///system", "vol-list", "--pool", pool],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    # A Name/Path table (virsh vol-list has no --name option).
    lines = proc.stdout.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("---")), len(lines))
    return [line.split()[0] for line in lines[start:] if line.strip()]


def ensure_box(log: Log = print, force: bool = False) -> str:
    """Build and add the libvirt box if the current content hash is missing; return its name."""
    for tool in ("vagrant", "mkfs.ext4", "qemu-img", "tar"):
        if shutil.which(tool) is None:
            msg = f"{tool} is not installed (isobench provision)"
            raise FileNotFoundError(msg)
    tree = ensure_rootfs(log)
    digest = box_hash(tree.name.removeprefix("rootfs-"))
    name = box_name(digest)
    with (cache_dir() / "box.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if box_installed(name) and not force:
            log(f"box {name} is up to date")
            _remove_stale_volumes(name)
            return name
        log(f"building box {name} from {tree} (about 2 minutes)")
        work = cache_dir() / f"box-{digest}.partial"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            box = _assemble(tree, work, log)
            log(f"adding the box to Vagrant: vagrant box add --force --name {name}")
            _run(["vagrant", "box", "add", "--force", "--name", name, str(box)], log)
            # vagrant-libvirt would otherwise keep booting its uploaded copy of a replaced box.
            delete_box_volumes(name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _remove_stale_boxes(name, log)
        _remove_stale_volumes(name)
        log(f"box ready: {name}")
        return name

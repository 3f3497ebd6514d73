"""The shared guest root filesystem, built offline with debootstrap.

One tree serves both the Docker image (``docker import``) and the Vagrant box (``mkfs.ext4 -d``),
so container and VM run an identical userland and the only variable is the isolation layer.
It is content-addressed: the hash covers the package list, suite, mirror, probe source and
this recipe's version, and an existing tree with that hash is reused.

The package list is :data:`PACKAGES` plus the environment's *extra* packages: the union of the
``requires:`` of every scenario ``isobench env build`` was given, recorded in
``<cache>/guest-packages.json`` once a tree with them is built (so building for one scenario
never drops the tools another one needed, and the image tag a backend looks up is the one
built). :func:`missing_packages` is what ``validate`` and ``run`` check a scenario against.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from bench.paths import cache_dir
from bench.workloads import GUEST_PROBE, build_probe, probe_hash

RECIPE_VERSION: Final = 2
SUITE: Final = "bookworm"
#: Workload tools + what a VM needs to boot to SSH (kernel, systemd, sshd, sudo, networkd).
PACKAGES: Final = (
    "fio",
    "time",
    "procps",
    "iproute2",
    "sysbench",
    "iperf3",  # by-hand cross-checks of the network workload (docs/docker.md)
    "sockperf",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "linux-image-cloud-amd64",
    "ca-certificates",
)
#: Where apt keeps its sources; the guest is built from the mirror configured there.
APT_DIR: Final = Path("/etc/apt")
#: Where the extra packages of the built environment are recorded (in the cache directory).
EXTRAS_FILE: Final = "guest-packages.json"
VAGRANT_INSECURE_KEYS: Final = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub",
)

Log = Callable[[str], None]


class MirrorNotConfiguredError(FileNotFoundError):
    """The host's apt sources name no Debian mirror for the guest's suite."""


def _deb822_mirrors(text: str, suite: str) -> list[str]:
    """URIs of enabled ``Types: deb`` stanzas of a deb822 ``.sources`` file serving ``suite``."""
    found: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and current:  # a continuation line
                fields[current] += " " + line.strip()
                continue
            name, _, value = line.partition(":")
            current = name.strip().lower()
            fields[current] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            found += fields.get("uris", "").split()
    return found


def _one_line_mirrors(text: str, suite: str) -> list[str]:
    """URIs of ``deb [options] URI SUITE COMPONENTS...`` lines serving ``suite``."""
    found: list[str] = []
    for raw in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb" and line[2] == suite:
            found.append(line[1])
    return found


def host_mirror(apt_dir: Path = APT_DIR, suite: str = SUITE) -> str:
    """The Debian mirror this host's apt uses for ``suite``: the only mirror debootstrap uses.

    Reads ``sources.list.d/*.sources`` (deb822), then ``sources.list.d/*.list`` and
    ``sources.list`` (one-line format). No mirror is built in: a host that cannot reach one
    through its own apt configuration cannot build the guest either.
    """
    candidates = sorted((apt_dir / "sources.list.d").glob("*.sources"))
    legacy = [*sorted((apt_dir / "sources.list.d").glob("*.list")), apt_dir / "sources.list"]
    for path in [*candidates, *legacy]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        parse = _deb822_mirrors if path.suffix == ".sources" else _one_line_mirrors
        mirrors = [m.rstrip("/") for m in parse(text, suite) if re.match(r"^(https?|file)://", m)]
        if mirrors:
            return mirrors[0]
    msg = (
        f"no Debian mirror for {suite!r} in this host's apt sources; configure one in "
        f"{apt_dir / 'sources.list.d' / 'debian.sources'} (Types: deb, URIs: <mirror>, "
        f"Suites: {suite}, Components: main) or in {apt_dir / 'sources.list'} "
        f"(deb <mirror> {suite} main), then run apt-get update"
    )
    raise MirrorNotConfiguredError(msg)


def vagrant_public_key() -> str:
    """Vagrant's published insecure public key, as shipped by the vagrant package."""
    for pattern in VAGRANT_INSECURE_KEYS:
        root = Path("/")
        for path in sorted(root.glob(pattern.lstrip("/"))):
            return path.read_text().strip()
    msg = "vagrant's insecure public key not found: install vagrant (apt-get install vagrant)"
    raise FileNotFoundError(msg)


def recorded_extras() -> tuple[str, ...]:
    """Extra packages (scenarios' ``requires``) of the built environment, sorted."""
    path = cache_dir() / EXTRAS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        extras = data["extra"]
    except FileNotFoundError:
        return ()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{path} is unreadable ({exc}); remove it and run: isobench env build"
        raise RuntimeError(msg) from exc
    return tuple(sorted({str(name) for name in extras}))


def _record_extras(extras: tuple[str, ...]) -> None:
    path = cache_dir() / EXTRAS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"extra": sorted(extras)}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def guest_packages(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every package of the guest environment: the base list, recorded extras, ``extra``."""
    return tuple(sorted({*PACKAGES, *recorded_extras(), *extra}))


def missing_packages(requires: tuple[str, ...]) -> list[str]:
    """Packages of ``requires`` the guest environment (image and box) does not contain."""
    present = set(guest_packages())
    return [name for name in requires if name not in present]


#: Backends that run workloads in the guest environment: the image (Docker, Podman), the
#: rootfs itself (the sandbox's ``/``), the box (Vagrant).
GUEST_BACKENDS: Final = ("sandbox", "docker", "podman", "vagrant")


def requirement_problems(
    requires: tuple[str, ...], backends: Iterable[str], source: Path
) -> list[tuple[int, str]]:
    """(index in ``requires``, message) for each package the guest environment lacks.

    Only when one of ``backends`` runs in the guest: native checks the host when it runs.
    """
    guests = [name for name in backends if name in GUEST_BACKENDS]
    if not guests or not requires:
        return []
    missing = set(missing_packages(requires))
    return [
        (
            index,
            f"package {name!r} is not in the guest environment that {', '.join(guests)} "
            f"run(s) in (rootfs, image, box); add it with: isobench env build {source}",
        )
        for index, name in enumerate(requires)
        if name in missing
    ]


def rootfs_hash(mirror: str | None = None, packages: tuple[str, ...] | None = None) -> str:
    """Content hash of the rootfs inputs (12 hex digits)."""
    inputs = {
        "recipe": RECIPE_VERSION,
        "suite": SUITE,
        "mirror": mirror or host_mirror(),
        "packages": sorted(packages if packages is not None else guest_packages()),
        "probe": probe_hash(),
        "vagrant_key": hashlib.sha256(vagrant_public_key().encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def rootfs_path(digest: str | None = None) -> Path:
    """Where the rootfs tree with ``digest`` lives."""
    return cache_dir() / f"rootfs-{digest or rootfs_hash()}"


def _configure(tree: Path, log: Log) -> None:
    """Install the probe, the vagrant user, sshd and networkd settings into ``tree``."""
    probe = build_probe(cache_dir())
    dest = tree / GUEST_PROBE.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(probe, dest)
    dest.chmod(0o755)

    log("configuring vagrant user, sshd and networkd in the rootfs")
    chroot = ["chroot", str(tree)]
    subprocess.run([*chroot, "useradd", "-m", "-s", "/bin/bash", "vagrant"], check=False)
    subprocess.run([*chroot, "sh", "-c", "echo vagrant:vagrant | chpasswd"], check=True)
    (tree / "etc/sudoers.d/vagrant").write_text("vagrant ALL=(ALL) NOPASSWD:ALL\n")
    (tree / "etc/sudoers.d/vagrant").chmod(0o440)
    ssh_dir = tree / "home/vagrant/.ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(vagrant_public_key() + "\n")
    subprocess.run([*chroot, "chown", "-R", "vagrant:vagrant", "/home/vagrant/.ssh"], check=True)
    (ssh_dir / "authorized_keys").chmod(0o600)
    ssh_dir.chmod(0o700)
    sshd_conf = tree / "etc/ssh/sshd_config.d/isobench.conf"
    sshd_conf.parent.mkdir(parents=True, exist_ok=True)
    sshd_conf.write_text("UseDNS no\nGSSAPIAuthentication no\n")
    network = tree / "etc/systemd/network/10-eth.network"
    network.parent.mkdir(parents=True, exist_ok=True)
    network.write_text("[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n")
    for unit in ("systemd-networkd", "ssh"):
        subprocess.run([*chroot, "systemctl", "enable", unit], check=False, capture_output=True)
    (tree / "etc/hostname").write_text("isobench-guest\n")
    # Without this, every sudo in the guest does a failing name lookup of its own hostname.
    (tree / "etc/hosts").write_text(
        "127.0.0.1\tlocalhost\n127.0.1.1\tisobench-guest\n::1\tlocalhost ip6-localhost\n"
    )
    (tree / "etc/fstab").write_text("/dev/vda / ext4 rw,relatime 0 1\n")
    (tree / "etc/machine-id").write_text("")
    # Regenerated host keys per build would make the hash lie about content; generate once here.
    subprocess.run([*chroot, "ssh-keygen", "-A"], check=False, capture_output=True)
    shutil.rmtree(tree / "var/cache/apt/archives", ignore_errors=True)
    (tree / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def ensure_rootfs(log: Log = print, force: bool = False, extra: tuple[str, ...] = ()) -> Path:
    """Build the rootfs tree if no tree with the current content hash exists; return it.

    ``extra``: packages to add to the environment (scenarios' ``requires``); recorded as the
    environment's once the tree with them exists.
    """
    if shutil.which("debootstrap") is None:
        msg = "debootstrap is not installed (apt-get install debootstrap)"
        raise FileNotFoundError(msg)
    mirror = host_mirror()
    packages = guest_packages(extra)
    extras = tuple(sorted(set(packages) - set(PACKAGES)))
    digest = rootfs_hash(mirror, packages)
    tree = rootfs_path(digest)
    marker = tree / ".isobench-complete"
    lock_path = cache_dir() / "rootfs.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and not force:
            log(f"rootfs {digest} is up to date: {tree}")
            _record_extras(extras)
            return tree
        if tree.exists():
            shutil.rmtree(tree)
        if extras:
            log(f"extra packages (scenarios' requires): {', '.join(extras)}")
        log(f"building rootfs {digest} with debootstrap from {mirror} (about 2 minutes)")
        work = tree.with_name(tree.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        _debootstrap(packages, work, mirror)
        _configure(work, log)
        work.rename(tree)
        marker.write_text(digest + "\n")
        _record_extras(extras)
        log(f"rootfs ready: {tree}")
        _remove_stale_trees(tree, log)
        return tree


def _debootstrap(packages: tuple[str, ...], work: Path, mirror: str) -> None:
    """debootstrap ``packages`` into ``work``; its own error (an unknown package) on failure."""
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE]
    proc = subprocess.run(
        [*argv, str(work), mirror], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        errors = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if "E:" in ln]
        detail = "; ".join(errors[-3:]) or f"status {proc.returncode}"
        msg = f"debootstrap failed: {detail} (packages: {', '.join(packages)})"
        raise RuntimeError(msg)


def _remove_stale_trees(current: Path, log: Log) -> None:
    """Delete rootfs trees of older hashes (images and boxes built from them stay usable)."""
    for stale in current.parent.glob("rootfs-*"):
        if stale != current and stale.is_dir():
            log(f"removing stale rootfs {stale.name}")
            shutil.rmtree(stale, ignore_errors=True)


def kernel_files(tree: Path) -> tuple[Path, Path]:
    """The guest kernel and initrd inside ``tree`` (for direct kernel boot)."""
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    initrds = sorted((tree / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        msg = f"no kernel/initrd under {tree / 'boot'}"
        raise FileNotFoundError(msg)
    return kernels[-1], initrds[-1]

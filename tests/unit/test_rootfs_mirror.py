"""The guest is built only from the mirror in the host's apt sources (issue 8 item 8)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench.envbuild.rootfs import MirrorNotConfiguredError, host_mirror

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "http://mirror.invalid/debian"


def apt(tmp_path: Path, sources: dict[str, str]) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in sources.items():
        target = tmp_path / name
        target.write_text(text)
    return tmp_path


def test_deb822_stanza_for_the_suite_wins_over_security_and_disabled(tmp_path: Path) -> None:
    text = f"""\
Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Enabled: no

# a comment between stanzas
Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security

Types: deb-src deb
URIs: {MIRROR}/
Suites: bookworm bookworm-updates
Components: main
"""
    directory = apt(tmp_path, {"sources.list.d/debian.sources": text})
    assert host_mirror(directory) == MIRROR


def test_one_line_format_with_options(tmp_path: Path) -> None:
    text = (
        "# deb http://old.invalid/debian bookworm main\n"
        f"deb [arch=amd64 signed-by=/k] {MIRROR} bookworm main\n"
    )
    directory = apt(tmp_path, {"sources.list": text})
    assert host_mirror(directory) == MIRROR


def test_no_mirror_fails_naming_the_file_to_configure(tmp_path: Path) -> None:
    directory = apt(tmp_path, {"sources.list": "deb http://x.invalid/debian bullseye main\n"})
    with pytest.raises(MirrorNotConfiguredError) as info:
        host_mirror(directory)
    message = str(info.value)
    assert str(directory / "sources.list.d" / "debian.sources") in message
    assert str(directory / "sources.list") in message
    assert "'bookworm'" in message


#: Host names of package registries and mirrors, as patterns (this file must not spell them).
REGISTRY_HOSTS = re.compile(
    r"(deb|ftp|security|snapshot|cdn-fastly)[.\w-]*\.debian\.org"
    r"|pypi\.(org|python\.org)|pythonhosted\.org|npmjs\.(org|com)"
    r"|registry-1\.docker\.io|(hub|index)\.docker\.com|archive\.ubuntu\.com"
    r"|ghcr\.io|quay\.io|crates\.io|proxy\.golang\.org",
    re.IGNORECASE,
)


def test_no_registry_host_name_anywhere_in_the_tree() -> None:
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.split(b"\0")
    found = []
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name.decode()}: {m.group(0)}" for m in REGISTRY_HOSTS.finditer(text)]
    assert found == []

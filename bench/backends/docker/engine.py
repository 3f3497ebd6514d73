"""What the engine is, for environment.json: versions, drivers, runtimes, seccomp; the CLI.

Facts only: nothing here changes the engine. The version of a command-line tool is read with
the one mechanism :func:`bench.sysinfo.tool_versions` (Podman's backend uses it too).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import docker

from bench.sysinfo import tool_versions
from bench.values import BackendError


def engine_facts(info: Mapping[str, Any], version: Mapping[str, Any]) -> dict[str, Any]:
    """Engine, API, storage and cgroup drivers, runtimes, seccomp from ``info`` and ``version``."""
    security = list(info.get("SecurityOptions") or [])
    return {
        "engine_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "min_api_version": version.get("MinAPIVersion"),
        "sdk_version": docker.__version__,
        "cli_version": cli_version(["docker", "version", "--format", "{{.Client.Version}}"]),
        "containerd_commit": (info.get("ContainerdCommit") or {}).get("ID"),
        "runc_commit": (info.get("RuncCommit") or {}).get("ID"),
        "storage_driver": info.get("Driver"),
        "backing_filesystem": dict(info.get("DriverStatus") or []).get("Backing Filesystem"),
        "cgroup_driver": info.get("CgroupDriver"),
        "cgroup_version": info.get("CgroupVersion"),
        "runtimes": sorted(info.get("Runtimes") or {}),
        "default_runtime": info.get("DefaultRuntime"),
        "security_options": security,
        "seccomp_supported": any("seccomp" in opt for opt in security),
        "engine_kernel": info.get("KernelVersion"),
    }


def cli_version(argv: Sequence[str]) -> str | None:
    """The first line ``argv`` (a tool's version command) prints; None when it is absent."""
    return tool_versions({"cli": tuple(argv)}).get("cli")


def docker_cli() -> str:
    """The docker CLI's path (the path=cli startup variant runs it)."""
    cli = shutil.which("docker")
    if cli is None:
        msg = "the docker CLI is not installed (needed for the path=cli startup variant)"
        raise BackendError(msg)
    return cli

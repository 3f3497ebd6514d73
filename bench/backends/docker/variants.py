"""Which Docker variants a scenario asks for: runtime x network x seccomp (x storage, x path).

Pure: the runtimes dockerd knows and their registration come in as arguments, so the product
is computed (and unit-tested) without an engine. A combination that cannot run is left out
with a note saying why, never silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.backends.docker.netdensity import sweep_variants
from bench.scenario.model import (
    DensityWorkload,
    DiskWorkload,
    NetworkWorkload,
    Scenario,
    storage_variants,
)
from bench.values import Variant
from bench.workloads import disk_variant


def runtime_args_params(args: Sequence[str]) -> dict[str, str]:
    """``--platform=ptrace`` -> platform, ``--network=none`` -> sandbox_network (gVisor flags)."""
    out: dict[str, str] = {}
    for arg in args:
        key, sep, value = str(arg).lstrip("-").partition("=")
        if sep and key == "platform":
            out["platform"] = value
        elif sep and key == "network":
            out["sandbox_network"] = value
    return out


def docker_variants(
    scenario: Scenario,
    known: Sequence[str],
    runtime_params: Callable[[str], dict[str, str]],
    notes: list[str],
) -> list[Variant]:
    """runtime x network x seccomp (x storage for disk, x path for startup).

    ``known``: the runtimes dockerd reports; ``runtime_params``: the variant parameters a
    runtime's registration fixes (:func:`runtime_args_params`). Skips are explained once in
    ``notes``.
    """
    options = scenario.docker
    out: list[Variant] = []
    for runtime in options.runtimes:
        if runtime not in known:
            _note(
                notes,
                f"{scenario.name}: runtime {runtime!r} is not registered with dockerd "
                f"(known: {', '.join(known)}); its variants are skipped",
            )
            continue
        fixed = runtime_params(runtime)
        for network in options.network:
            if fixed.get("sandbox_network", network) != network:
                _note(
                    notes,
                    f"{scenario.name}: runtime {runtime!r} is registered with"
                    f" --network={fixed['sandbox_network']}; network={network} is skipped",
                )
                continue
            # gVisor loads no OCI seccomp profile (without --oci-seccomp): the container's
            # syscalls go to its own kernel, the Sentry, which gVisor confines itself.
            seccomps = ("sentry",) if "platform" in fixed else options.seccomp
            for seccomp in seccomps:
                base = {"runtime": runtime, **_platform(fixed)}
                base |= {"network": network, "seccomp": seccomp}
                out += _per_workload(scenario, base, notes)
    return out


def _per_workload(scenario: Scenario, base: dict[str, str], notes: list[str]) -> list[Variant]:
    """``base`` x what the workload varies: storage, start-up path, client or instances."""
    workload = scenario.workload
    storages = storage_variants(scenario)
    if storages:
        direct = disk_variant(workload) if isinstance(workload, DiskWorkload) else {}
        return [Variant.of(**base, storage=s, **direct) for s in storages]
    if workload.kind == "startup":
        return [Variant.of(**base), Variant.of(**base, path="cli")]
    if isinstance(workload, NetworkWorkload | DensityWorkload):
        return sweep_variants(scenario, base, notes)
    return [Variant.of(**base)]


def _note(notes: list[str], note: str) -> None:
    if note not in notes:
        notes.append(note)


def _platform(fixed: dict[str, str]) -> dict[str, str]:
    return {"platform": fixed["platform"]} if "platform" in fixed else {}

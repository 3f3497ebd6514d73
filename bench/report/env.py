"""'What served this run': environment facts and caveat banners for the report (pure).

Every ``environment.json`` key may be missing (older runs, partial captures, interrupted
runs), so each accessor is defensive and returns plain strings for the template to escape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bench.report import format as fmt
from bench.report.timing import adaptive_facts, time_facts
from bench.stats import run_warnings


def get(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...`` or None when any level is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str:
    if value is None or value == "":
        return fmt.DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def host_facts(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows describing the host and the harness of one run."""
    host = get(env, "host") or {}
    memory = get(host, "memory_bytes")
    virtualized = get(host, "virtualized")
    hypervisor = get(host, "hypervisor")
    virt = _text(virtualized)
    if virtualized and hypervisor:
        virt = f"yes ({hypervisor})"
    sha = _text(get(env, "harness", "git_sha"))
    if get(env, "harness", "git_dirty"):
        sha += " (dirty work tree)"
    rows = [
        ("run", _text(get(env, "run_id"))),
        ("started / finished", f"{_text(env.get('started'))} / {_text(env.get('finished'))}"),
        ("hostname", _text(get(host, "hostname"))),
        ("host fingerprint", _identity(get(host, "identity"))),
        ("host kernel", _text(get(host, "kernel"))),
        ("OS", _text(get(host, "os"))),
        ("CPU", f"{_text(get(host, 'cpu_model'))} {fmt.TIMES} {_text(get(host, 'cpu_count'))}"),
        ("memory", fmt.value(float(memory), "B") if isinstance(memory, int | float) else fmt.DASH),
        ("cgroup version", _text(get(host, "cgroup_version"))),
        ("host virtualized", virt),
        ("CPU governor / turbo", f"{_text(get(host, 'governor'))} / {_text(get(host, 'turbo'))}"),
        ("mitigations", mitigation_summary(get(host, "mitigations"))),
        ("TCP congestion control (default)", _text(get(host, "tcp_congestion_control"))),
        ("harness", f"isobench {_text(get(env, 'harness', 'version'))}, git {sha}"),
        ("python", _text(get(env, "harness", "python"))),
    ]
    rows += time_facts(env) + adaptive_facts(env)[0]
    tools = get(host, "tools")
    if isinstance(tools, Mapping):
        rows.extend((f"tool: {name}", _text(version)) for name, version in sorted(tools.items()))
    return rows


def _identity(identity: Any) -> str:
    if not isinstance(identity, Mapping) or not identity.get("fingerprint"):
        return "not recorded (host told apart by its hardware facts)"
    return f"{identity['fingerprint']} (from {_text(identity.get('basis'))})"


def mitigation_summary(mitigations: Any) -> str:
    """'12 entries: 9 mitigated, 2 not affected, 1 vulnerable (spectre_v1)'."""
    if not isinstance(mitigations, Mapping) or not mitigations:
        return fmt.DASH
    vulnerable = sorted(k for k, v in mitigations.items() if "vulnerable" in str(v).lower())
    unaffected = sum(1 for v in mitigations.values() if "not affected" in str(v).lower())
    mitigated = len(mitigations) - len(vulnerable) - unaffected
    text = f"{len(mitigations)} entries: {mitigated} mitigated, {unaffected} not affected"
    if vulnerable:
        text += f", {len(vulnerable)} vulnerable ({', '.join(vulnerable)})"
    return text


def kernel_rows(
    env: Mapping[str, Any], variants: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Host kernel vs the kernel observed inside each backend variant (the classic demo)."""
    host_kernel = _text(get(env, "host", "kernel"))
    observed = get(env, "observed")
    rows = []
    seen: set[tuple[str, str]] = set()
    pairs = list(variants)
    if isinstance(observed, Mapping):
        for backend, by_variant in observed.items():
            if isinstance(by_variant, Mapping):
                pairs.extend((str(backend), str(v)) for v in by_variant)
    for backend, variant in sorted(set(pairs)):
        if (backend, variant) in seen:
            continue
        seen.add((backend, variant))
        facts = get(observed, backend, variant)
        kernel = get(facts, "kernel") if isinstance(facts, Mapping) else None
        if kernel is None and backend == "native":
            kernel = get(env, "host", "kernel")
        other = (
            [(str(k), _text(v)) for k, v in sorted(facts.items()) if k != "kernel"]
            if isinstance(facts, Mapping)
            else []
        )
        rows.append(
            {
                "backend": backend,
                "variant": variant,
                "kernel": _text(kernel),
                "host_kernel": host_kernel,
                "same": None if kernel is None else str(kernel) == host_kernel,
                "facts": other,
            }
        )
    return rows


def backend_rows(env: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Availability, reasons, versions and accelerator of every backend of one run."""
    backends = get(env, "backends")
    if not isinstance(backends, Mapping):
        return []
    rows = []
    for name, raw in sorted(backends.items()):
        info = raw if isinstance(raw, Mapping) else {}
        details = [
            (str(k), _text(v))
            for k, v in sorted(info.items())
            if k not in ("available", "reason", "hint", "notes")
        ]
        rows.append(
            {
                "name": str(name),
                "available": info.get("available"),
                "reason": _text(info.get("reason")),
                "hint": _text(info.get("hint")) if info.get("hint") else "",
                "details": details,
            }
        )
    return rows


def scenario_rows(envs: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Scenario name, hash, file, workload and definition, deduplicated across runs."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for env in envs:
        scenarios = get(env, "scenarios")
        if not isinstance(scenarios, Mapping):
            continue
        for name, raw in scenarios.items():
            info = raw if isinstance(raw, Mapping) else {}
            digest = _text(info.get("hash"))
            definition = info.get("definition")
            rows[(str(name), digest)] = {
                "name": str(name),
                "hash": digest,
                "file": _text(info.get("file")),
                "workload": _text(info.get("workload")),
                "definition": json.dumps(definition, indent=2, sort_keys=True, default=str)
                if definition is not None
                else fmt.DASH,
            }
    return [rows[k] for k in sorted(rows)]


def declared_directions(envs: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Metric -> higher is better, for metrics the runs' scenarios declare (workload.metrics)."""
    found: dict[str, bool] = {}
    for env in envs:
        scenarios = get(env, "scenarios")
        for info in scenarios.values() if isinstance(scenarios, Mapping) else ():
            declared = get(info, "definition", "workload", "metrics")
            for entry in declared if isinstance(declared, list) else ():
                if isinstance(entry, Mapping) and entry.get("name"):
                    found[str(entry["name"])] = entry.get("direction") == "higher"
    return found


def load_banners(env: Mapping[str, Any]) -> list[str]:
    """What the loader noticed about a run: incomplete (killed, still running), fallbacks.

    An interrupted run is left to the warning recorded with it (one banner, not two).
    """
    notes = get(env, "load", "notes")
    if not isinstance(notes, list):
        return []
    run = _text(get(env, "run_id") or get(env, "load", "path"))
    interrupted = get(env, "load", "state") == "interrupted"
    return [
        f"Run {run}: {_text(note)}"
        for note in notes
        if not (interrupted and str(note).startswith("incomplete run:"))
    ]


def banners(
    env: Mapping[str, Any], variants: Iterable[tuple[str, str]], host: str = ""
) -> list[str]:
    """Loud caveats for one run: TCG-emulated VMs, nested virtualization, health problems.

    ``host`` is the run's host key (:func:`bench.results.host_key`): the same caveat from two
    runs of one host reads the same (the caller says it once), and two machines that share
    a hostname stay apart.
    """
    found: list[str] = load_banners(env)
    host_name = host or _text(get(env, "host", "hostname"))
    accel = get(env, "backends", "vagrant", "accelerator")
    pairs = list(variants)
    tcg_variants = sorted({v for _, v in pairs if "accel=tcg" in v})
    measured_vms = any(b == "vagrant" for b, _ in pairs)
    # Only when VMs were measured: an unavailable vagrant backend still reports its accelerator.
    if tcg_variants or (accel == "tcg" and measured_vms):
        reason = get(env, "backends", "vagrant", "accelerator_reason")
        found.append(
            "VMs on "
            + host_name
            + " ran under TCG software emulation (no hardware virtualization)"
            + (f": {reason}" if reason else "")
            + ". VM figures measure an emulated CPU and are far slower than KVM would be; "
            "do not read them as the cost of virtualization in general."
        )
    hypervisor = get(env, "host", "hypervisor")
    recorded = run_warnings(env)
    already = any("virtualized" in w for w in recorded)  # sysinfo may have said it already
    if not already and (
        get(env, "host", "virtualized") or get(env, "backends", "vagrant", "host_virtualized")
    ):
        found.append(
            f"The host {host_name} is itself virtualized"
            + (f" ({hypervisor})" if hypervisor else "")
            + ": native numbers include that hypervisor's cost, and VMs are nested."
        )
    found.extend(f"{host_name}: {warning}" for warning in recorded)
    backends = get(env, "backends")
    for name, info in sorted(backends.items()) if isinstance(backends, Mapping) else ():
        notes = info.get("notes") if isinstance(info, Mapping) else None
        found.extend(f"{host_name}, {name}: {_text(note)}" for note in notes or ())
    if get(env, "harness", "git_dirty"):
        found.append(f"{host_name}: the harness ran from a dirty git work tree.")
    found.extend(f"{host_name}: {text}" for text in adaptive_facts(env)[1])
    found.extend(f"{host_name}: {text}" for text in congestion_mix(env))
    return found


def congestion_mix(env: Mapping[str, Any]) -> list[str]:
    """A caveat when the run's TCP streams were sent under different congestion controls.

    The sender's algorithm is part of what a stream measures (cubic moved 1.2x more than
    bbr through Docker's published port on one host): a throughput ratio between a variant
    whose sender used one and a variant whose sender used another compares unlike things.
    A VM's guest keeps its own default, which can differ from the host's.
    """
    observed = get(env, "observed")
    users: dict[str, list[str]] = {}
    for backend, by_variant in observed.items() if isinstance(observed, Mapping) else ():
        for variant, facts in by_variant.items() if isinstance(by_variant, Mapping) else ():
            value = get(facts, "net_stream_congestion") if isinstance(facts, Mapping) else None
            for name in value if isinstance(value, list) else [value]:
                if name not in (None, "", "unknown"):
                    users.setdefault(str(name), []).append(f"{backend}/{variant}")
    if len(users) < 2:
        return []
    parts = "; ".join(f"{name}: {', '.join(sorted(who))}" for name, who in sorted(users.items()))
    return [
        "TCP streams were sent under different congestion controls "
        f"({parts}): network.tcp_throughput ratios between them compare unlike senders "
        "(docs/docker.md, 'Congestion control')."
    ]

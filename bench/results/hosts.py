"""Which host a run came from: the key the frame's ``host`` column holds."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final


def host_name(environment: Mapping[str, Any]) -> str:
    """The hostname recorded in an environment.json ('' when absent)."""
    host = environment.get("host")
    return str(host.get("hostname") or "") if isinstance(host, dict) else ""


#: Hardware facts that tell two machines apart when a run has no recorded fingerprint.
_HARDWARE_FACTS: Final = ("cpu_model", "cpu_count", "memory_bytes", "arch", "kernel", "os")


def host_key(environment: Mapping[str, Any], run: str = "") -> str:
    """The frame's host: ``label (fingerprint[:8])``; two machines never share one.

    The fingerprint comes from ``host.identity`` (:func:`bench.sysinfo.host_identity`).
    Older runs without it fall back to the hostname plus a hash of the run's hardware facts
    (``label (hw 1a2b3c4d)``); a run with no hardware facts at all is a host of its own
    (``label (run RUN)``), since nothing shows it shares a machine with another run.
    """
    host = environment.get("host")
    host = host if isinstance(host, Mapping) else {}
    identity = host.get("identity")
    if isinstance(identity, Mapping) and identity.get("fingerprint"):
        label = str(identity.get("label") or host.get("hostname") or "host")
        return f"{label} ({str(identity['fingerprint'])[:8]})"
    facts = [f"{name}={host.get(name)}" for name in _HARDWARE_FACTS if host.get(name)]
    if not facts:
        label = host.get("hostname") or "unknown host"
        return f"{label} (run {environment.get('run_id') or run or '?'})"
    digest = hashlib.sha256("\n".join(facts).encode()).hexdigest()[:8]
    return f"{host.get('hostname') or 'host'} (hw {digest})"

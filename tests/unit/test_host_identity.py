"""Host identity: a fingerprint that keeps two machines apart even when hostnames agree."""

from __future__ import annotations

from pathlib import Path

from bench import sysinfo


def ident(tmp_path: Path, machine_id: str | None, boot: str = "b1", dmi: str | None = None):
    mid = tmp_path / "machine-id"
    if machine_id is not None:
        mid.write_text(machine_id + "\n")
    boot_file = tmp_path / "boot_id"
    boot_file.write_text(boot)
    dmi_file = tmp_path / "uuid"
    if dmi is not None:
        dmi_file.write_text(dmi)
    return sysinfo.host_identity([str(mid)], str(boot_file), [str(dmi_file)])


def test_machine_id_is_stable_across_boots(tmp_path):
    a, b = ident(tmp_path, "abc", boot="1"), ident(tmp_path, "abc", boot="2")
    assert a["fingerprint"] == b["fingerprint"]
    assert a["basis"] == "machine-id"
    assert len(a["fingerprint"]) == 16


def test_different_machine_ids_are_different_hosts(tmp_path):
    assert ident(tmp_path, "abc")["fingerprint"] != ident(tmp_path, "abd")["fingerprint"]


def test_without_machine_id_dmi_and_boot_id_are_used(tmp_path):
    first = ident(tmp_path, None, boot="1", dmi="uuid-1")
    assert first["basis"] == "dmi+hardware+boot-id"
    assert first["fingerprint"] != ident(tmp_path, None, boot="2", dmi="uuid-1")["fingerprint"]


def test_the_real_host_has_a_label_and_a_fingerprint():
    real = sysinfo.host_identity()
    assert real["label"]
    assert all(c in "0123456789abcdef" for c in real["fingerprint"])
    assert sysinfo.host_info()["identity"] == real

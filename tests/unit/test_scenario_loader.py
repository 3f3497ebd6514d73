"""Scenario loading: each bad input names the file, the line, the field and the expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import backends
from bench.scenario.loader import (
    MAX_FILE_BYTES,
    ScenarioError,
    ScenarioLoadError,
    check_paths,
    load_scenarios,
)
from bench.scenario.model import WORKLOAD_KINDS
from bench.scenario.safeyaml import MAX_NODES

GOOD = """\
format_version: 1
name: good
workload:
  kind: syscall
  null_calls: 1000
"""


def errors_of(tmp_path: Path, text: str | bytes, filename: str = "s.yaml") -> list[ScenarioError]:
    path = tmp_path / filename
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    [result] = check_paths([path])
    assert result.loaded is None, "expected the file to be rejected"
    assert result.errors
    return result.errors


def the_error(
    errors: list[ScenarioError], path: Path, line: int | None, field: str, *fragments: str
) -> ScenarioError:
    """The one error on ``field``; checks its file, line and message fragments."""
    matching = [e for e in errors if e.field == field]
    assert len(matching) == 1, f"no single error on {field!r}: {[str(e) for e in errors]}"
    error = matching[0]
    assert error.path == path
    assert error.line == line
    text = str(error)
    prefix = f"{path}:{line}" if line else str(path)
    assert text.startswith(prefix + ":"), text
    if field:
        assert f" {field}: " in text
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


# --- bad inputs, one test per case -------------------------------------------------------------


def test_unknown_top_level_key_lists_allowed_keys(tmp_path):
    errors = errors_of(tmp_path, GOOD + "repaet: 3\n")
    the_error(
        errors, tmp_path / "s.yaml", 6, "repaet", "unknown key 'repaet'", "allowed keys", "repeat"
    )


def test_unknown_workload_key_lists_the_workloads_keys(tmp_path):
    errors = errors_of(tmp_path, GOOD + "  nul_calls: 3\n")
    error = the_error(errors, tmp_path / "s.yaml", 6, "workload.nul_calls", "unknown key")
    assert "kind, null_calls, mixed_calls" in error.message


def test_wrong_type_says_what_was_expected_and_found(tmp_path):
    text = GOOD.replace("null_calls: 1000", "null_calls: many")
    errors = errors_of(tmp_path, text)
    the_error(
        errors, tmp_path / "s.yaml", 5, "workload.null_calls", "expected an integer", "'many'"
    )


def test_numbers_are_strict_a_quoted_number_is_a_string(tmp_path):
    errors = errors_of(tmp_path, GOOD + "repeat: '5'\n")
    the_error(errors, tmp_path / "s.yaml", 6, "repeat", "expected an integer", "string")


def test_boolean_is_not_a_number(tmp_path):
    errors = errors_of(tmp_path, GOOD + "timeout: true\n")
    the_error(errors, tmp_path / "s.yaml", 6, "timeout", "expected a number", "boolean")


@pytest.mark.parametrize("value", ["0", "-3"])
def test_zero_or_negative_repeat(tmp_path, value):
    errors = errors_of(tmp_path, GOOD + f"repeat: {value}\n")
    the_error(errors, tmp_path / "s.yaml", 6, "repeat", "expected a value >= 1", value)


def test_negative_warmup(tmp_path):
    errors = errors_of(tmp_path, GOOD + "warmup: -1\n")
    the_error(errors, tmp_path / "s.yaml", 6, "warmup", "expected a value >= 0")


def test_zero_timeout(tmp_path):
    errors = errors_of(tmp_path, GOOD + "timeout: 0\n")
    the_error(errors, tmp_path / "s.yaml", 6, "timeout", "expected a value > 0")


def test_unknown_workload_kind_lists_the_kinds(tmp_path):
    text = GOOD.replace("kind: syscall", "kind: netwrok").replace("  null_calls: 1000\n", "")
    errors = errors_of(tmp_path, text)
    the_error(
        errors,
        tmp_path / "s.yaml",
        4,
        "workload.kind",
        "unknown workload kind 'netwrok'",
        ", ".join(WORKLOAD_KINDS),
    )


def test_missing_workload_kind_points_at_the_workload(tmp_path):
    text = GOOD.replace("  kind: syscall\n", "")
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 3, "workload.kind", "missing workload kind", "startup")


def test_unknown_backend_lists_known_backends(tmp_path):
    errors = errors_of(tmp_path, GOOD + "backends:\n  - native\n  - kvm\n")
    the_error(
        errors,
        tmp_path / "s.yaml",
        8,
        "backends[1]",
        "unknown backend 'kvm'",
        "native, sandbox, docker, podman, vagrant",
    )


def test_duplicate_backend(tmp_path):
    errors = errors_of(tmp_path, GOOD + "backends: [native, native]\n")
    the_error(errors, tmp_path / "s.yaml", 6, "backends", "listed twice")


def test_empty_backend_list(tmp_path):
    errors = errors_of(tmp_path, GOOD + "backends: []\n")
    the_error(errors, tmp_path / "s.yaml", 6, "backends", "expected at least 1 item")


def test_backend_registered_at_runtime_is_accepted(tmp_path):
    # A name of our own, so that unregistering cannot disturb a "fake" other tests registered.
    name = "scenario-test-backend"
    path = tmp_path / "s.yaml"
    path.write_text(GOOD + f"backends: [{name}]\n", encoding="utf-8")
    backends.register(name, lambda: None)  # type: ignore[arg-type,return-value]
    try:
        [loaded] = load_scenarios([path])
    finally:
        backends.unregister(name)
    assert loaded.scenario.backends == (name,)
    errors = errors_of(tmp_path, GOOD + f"backends: [{name}]\n")
    the_error(errors, path, 6, "backends[0]", f"unknown backend {name!r}")


def test_unsupported_format_version_is_the_only_error(tmp_path):
    text = GOOD.replace("format_version: 1", "format_version: 2") + "newfield: x\n"
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1
    the_error(errors, tmp_path / "s.yaml", 1, "format_version", "unsupported format_version 2", "1")


def test_format_version_of_the_wrong_type(tmp_path):
    errors = errors_of(tmp_path, GOOD.replace("format_version: 1", "format_version: v1"))
    the_error(errors, tmp_path / "s.yaml", 1, "format_version", "expected an integer")


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    errors = errors_of(tmp_path, "format_version: 1\nname: x\nworkload: {kind: [syscall\n")
    [error] = errors
    assert error.line == 4
    assert error.column == 1
    assert str(error).startswith(f"{tmp_path / 's.yaml'}:4:1: YAML syntax error")
    assert "line 4, column 1" in error.message
    assert "started at line 3" in error.message


def test_yaml_syntax_error_bad_indentation(tmp_path):
    errors = errors_of(tmp_path, "format_version: 1\nname: x\n  repeat: 3\n")
    [error] = errors
    assert error.line == 3
    assert "YAML syntax error" in error.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path, text):
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", None, "", "empty file", "format_version, name")


def test_duplicate_name_across_files_names_both_files(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(GOOD, encoding="utf-8")
    second.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ScenarioLoadError) as info:
        load_scenarios([tmp_path])
    [error] = info.value.errors
    the_error([error], second, 2, "name", "duplicate scenario name 'good'", str(first))


def test_same_file_given_twice_is_not_a_duplicate(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert len(load_scenarios([path, tmp_path, tmp_path / "." / "a.yaml"])) == 1


def test_duplicate_key_in_a_mapping(tmp_path):
    errors = errors_of(tmp_path, GOOD + "repeat: 3\nrepeat: 4\n")
    the_error(errors, tmp_path / "s.yaml", 7, "repeat", "duplicate key 'repeat'", "first on line 6")


def test_duplicate_key_nested_and_other_errors_still_reported(tmp_path):
    errors = errors_of(tmp_path, GOOD + "  null_calls: 5\nrepeat: 0\n")
    the_error(errors, tmp_path / "s.yaml", 6, "workload.null_calls", "duplicate key")
    the_error(errors, tmp_path / "s.yaml", 7, "repeat", "expected a value >= 1")


@pytest.mark.parametrize(
    ("text", "found"), [("- a\n- b\n", "a list"), ("just text\n", "'just text'")]
)
def test_top_level_must_be_a_mapping(tmp_path, text, found):
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 1, "", "expected a mapping", found)


def test_missing_required_field_points_at_the_parent_mapping(tmp_path):
    errors = errors_of(tmp_path, "# header\nformat_version: 1\nworkload:\n  kind: command\n")
    the_error(errors, tmp_path / "s.yaml", 2, "name", "missing required field 'name'")
    the_error(errors, tmp_path / "s.yaml", 3, "workload.command", "missing", "list of strings")


def test_nested_list_item_error_has_an_index_path(tmp_path):
    text = GOOD + "vagrant:\n  sizes:\n    - cpus: 1\n    - memory: 64MiB\n"
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1  # no echo "list too short" error
    the_error(errors, tmp_path / "s.yaml", 9, "vagrant.sizes[1].memory", "at least 128MiB", "64MiB")


def test_limits_validated(tmp_path):
    errors = errors_of(tmp_path, GOOD + "limits:\n  cpus: 0\n  memory: 1MiB\n")
    the_error(errors, tmp_path / "s.yaml", 7, "limits.cpus", "expected a value > 0")
    the_error(errors, tmp_path / "s.yaml", 8, "limits.memory", "expected at least 4MiB")


def test_docker_options_validated(tmp_path):
    text = GOOD + "docker:\n  runtimes: ['']\n  network: [nat]\n"
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 7, "docker.runtimes[0]", "non-empty string")
    the_error(errors, tmp_path / "s.yaml", 8, "docker.network[0]", "'none', 'bridge' or 'host'")


def test_ambiguous_size_unit(tmp_path):
    text = GOOD.replace("kind: syscall\n  null_calls: 1000", "kind: memory\n  alloc: 64M")
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 5, "workload.alloc", "ambiguous", "MiB", "MB")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("a/b", "no '/'"), ("'..'", "no '/'"), ('"a\\tb"', "printable"), ("''", "non-empty")],
)
def test_bad_names(tmp_path, name, fragment):
    errors = errors_of(tmp_path, GOOD.replace("name: good", f"name: {name}"))
    the_error(errors, tmp_path / "s.yaml", 2, "name", fragment)


# --- untrusted input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tagged",
    [
        "!!python/object/apply:os.system ['touch /tmp/isobench-pwned']",
        "!!python/name:os.system",
        "!custom {kind: syscall}",
        "!!binary aGVsbG8=",
    ],
)
def test_non_plain_tags_are_rejected(tmp_path, tagged):
    text = f"format_version: 1\nname: x\nworkload: {tagged}\n"
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 3, "workload", "is not allowed", "plain YAML")
    assert not Path("/tmp/isobench-pwned").exists()


def test_billion_laughs_is_rejected(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    errors = errors_of(tmp_path, "\n".join(lines) + "\n")
    [error] = errors
    assert "possible billion-laughs" in error.message
    assert str(MAX_NODES) in error.message
    assert error.line is not None


def test_recursive_alias_is_rejected(tmp_path):
    [error] = errors_of(tmp_path, "format_version: 1\nname: &n [*n]\n")
    assert "recursive alias" in error.message


def test_deep_nesting_is_rejected_before_composing(tmp_path):
    [error] = errors_of(tmp_path, "x: " + "[" * 5000 + "]" * 5000 + "\n")
    # our own depth check, or libyaml's (newer PyYAML builds stop at 1000 levels themselves)
    assert "nesting deeper than" in error.message or "maximum nesting depth" in error.message
    assert error.line == 1


def test_oversized_file_is_rejected_before_parsing(tmp_path):
    text = GOOD + "description: '" + "x" * MAX_FILE_BYTES + "'\n"
    [error] = errors_of(tmp_path, text)
    assert "larger than 256 KiB" in error.message


def test_non_utf8_file(tmp_path):
    [error] = errors_of(tmp_path, GOOD.encode() + b"description: \xff\xfe\n")
    assert "not UTF-8" in error.message


def test_multiple_documents_are_rejected(tmp_path):
    [error] = errors_of(tmp_path, GOOD + "---\n" + GOOD)
    assert "single document" in error.message
    assert error.line == 6


def test_aliases_and_merge_keys_within_limits_work(tmp_path):
    path = tmp_path / "s.yaml"
    text = GOOD + (
        "vagrant:\n  sizes:\n    - &small {cpus: 1, memory: 512MiB}\n"
        "    - <<: *small\n      cpus: 2\n"
    )
    path.write_text(text, encoding="utf-8")
    [loaded] = load_scenarios([path])
    sizes = loaded.scenario.vagrant.sizes
    assert [(s.cpus, s.memory) for s in sizes] == [(1, 512 * 1024**2), (2, 512 * 1024**2)]


def test_merged_key_errors_point_at_the_merge_source(tmp_path):
    text = (
        "format_version: 1\nname: merged\nworkload:\n  <<:\n    kind: syscall\n"
        "    null_calls: 0\n  mixed_calls: 20\n"
    )
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 6, "workload.null_calls", "expected a value >= 1")


def test_directory_without_scenarios_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ScenarioLoadError, match="no scenario files"):
        load_scenarios([tmp_path])


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioLoadError, match="no such file"):
        load_scenarios([tmp_path / "absent.yaml"])


def test_all_errors_of_all_files_are_reported_together(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD + "repeat: 0\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(GOOD.replace("good", "c"), encoding="utf-8")
    with pytest.raises(ScenarioLoadError) as info:
        load_scenarios([tmp_path])
    assert [e.path.name for e in info.value.errors] == ["a.yaml", "b.yaml"]
    assert "a.yaml:6:1: repeat:" in str(info.value)


def test_explicit_key_beats_merged_key_for_values_and_lines(tmp_path):
    text = GOOD + (
        "vagrant:\n  sizes:\n    - &small {cpus: 1, memory: 64MiB}\n"
        "    - <<: *small\n      memory: 32MiB\n"
    )
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 8, "vagrant.sizes[0].memory", "got 64MiB")
    the_error(errors, tmp_path / "s.yaml", 10, "vagrant.sizes[1].memory", "got 32MiB")


def test_shadowed_merged_mapping_does_not_steal_line_numbers(tmp_path):
    text = (
        "format_version: 1\nname: m\n<<: {workload: {kind: syscall, null_calls: 7}}\n"
        "workload:\n  kind: syscall\n  null_calls: -1\n"
    )
    errors = errors_of(tmp_path, text)
    the_error(errors, tmp_path / "s.yaml", 6, "workload.null_calls", "got -1")

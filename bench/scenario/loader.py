"""Load scenario files safely and report errors a user can act on.

Scenario files are untrusted input. A file is read only up to :data:`MAX_FILE_BYTES`, and its
YAML is parsed by :mod:`bench.scenario.safeyaml` (bounded depth and node count, plain tags only,
duplicate keys reported, field lines recorded) before the model validates it. Every error names
the file, the line where one is known, the field as a dotted path and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import yaml
from pydantic import ValidationError

from bench import backends
from bench.scenario.errors import FieldPath, dotted, translate
from bench.scenario.model import (
    SUPPORTED_FORMAT_VERSIONS,
    Scenario,
    ignored_settings,
    parse_scenario,
)
from bench.scenario.safeyaml import RejectedError, compose

#: Largest scenario file accepted, checked before parsing (real ones are ~1 KiB).
MAX_FILE_BYTES: Final = 256 * 1024
SCENARIO_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario and the file it came from."""

    scenario: Scenario
    path: Path
    text: str


@dataclass(frozen=True, slots=True)
class ScenarioError:
    """One problem in one scenario file (``line``/``column`` are 1-based)."""

    path: Path
    line: int | None
    field: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line:
            where += f":{self.line}" + (f":{self.column}" if self.column else "")
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ScenarioLoadError(Exception):
    """One or more scenario files are invalid."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(slots=True)
class FileResult:
    """Outcome of checking one file: the scenario or the errors (``lines``: field -> line)."""

    path: Path
    loaded: LoadedScenario | None = None
    errors: list[ScenarioError] = field(default_factory=list)
    lines: dict[FieldPath, int] = field(default_factory=dict)
    columns: dict[FieldPath, int] = field(default_factory=dict)


# --- files ------------------------------------------------------------------------------------


def _syntax_error(exc: yaml.MarkedYAMLError, path: Path) -> ScenarioError:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if mark:
        message += f" at line {line}, column {column}"
    if exc.context and exc.problem and exc.context_mark:
        message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
    return ScenarioError(path, line, "", message, column)


def parse_text(text: str, path: Path) -> FileResult:
    """Validate scenario ``text`` (as read from ``path``, which only labels errors)."""
    result = _parse_text(text, path)
    by_field: dict[str, tuple[int | None, int]] = {
        dotted(p): (result.lines.get(p), c) for p, c in result.columns.items()
    }
    by_line: dict[int, int] = {}  # a line's first field (an absent field's mapping)
    for where, first in result.columns.items():
        at = result.lines.get(where)
        if at is not None:
            by_line[at] = min(first, by_line.get(at, first))
    for number, error in enumerate(result.errors):
        line, column = by_field.get(error.field, (None, 0))
        found: int | None = column if line == error.line else None
        if found is None and error.line is not None:
            found = by_line.get(error.line)
        if error.column is None and found:
            result.errors[number] = replace(error, column=found)
    return result


def _parse_text(text: str, path: Path) -> FileResult:
    result = FileResult(path)
    try:
        data, walker, structural, fatal = compose(text)
        result.lines, result.columns = walker.lines, walker.columns
    except RejectedError as exc:
        result.errors.append(ScenarioError(path, *exc.where))
        return result
    except yaml.MarkedYAMLError as exc:
        result.errors.append(_syntax_error(exc, path))
        return result
    except yaml.YAMLError as exc:
        result.errors.append(ScenarioError(path, None, "", f"YAML error: {exc}"))
        return result
    for line, field_, message in structural:
        result.errors.append(ScenarioError(path, line, field_, message))
    if fatal:
        return result
    version = data.get("format_version")
    unsupported = version not in SUPPORTED_FORMAT_VERSIONS
    if isinstance(version, int) and not isinstance(version, bool) and unsupported:
        # A newer format may rename anything: its other fields are not worth listing.
        supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
        message = f"unsupported format_version {version}; expected one of: {supported}"
        at = result.lines.get(("format_version",))
        result.errors.append(ScenarioError(path, at, "format_version", message))
        return result
    try:
        scenario = parse_scenario(data)
    except ValidationError as exc:
        result.errors += [ScenarioError(path, *where) for where in translate(exc, result.lines)]
        result.errors.sort(key=lambda error: error.line or 0)  # stable: file order
        return result
    result.errors += _unregistered_backends(scenario, path, result.lines)
    result.errors += [
        ScenarioError(path, result.lines.get(where), dotted(where), message)
        for where, message in ignored_settings(scenario)
    ]
    if not result.errors:  # duplicate keys: the data validated, the file did not
        result.loaded = LoadedScenario(scenario, path, text)
    return result


def _unregistered_backends(
    scenario: Scenario, path: Path, lines: dict[FieldPath, int]
) -> list[ScenarioError]:
    """Backend names the registry does not know, each with its file, line and field."""
    known = backends.names()
    return [
        ScenarioError(
            path,
            lines.get(("backends", index)) or lines.get(("backends",)),
            f"backends[{index}]",
            f"unknown backend {name!r}; expected one of: {', '.join(known)}",
        )
        for index, name in enumerate(scenario.backends)
        if name not in known
    ]


def read_file(path: Path) -> FileResult:
    """Read (bounded) and validate one scenario file."""

    def fail(message: str) -> FileResult:
        return FileResult(path, errors=[ScenarioError(path, None, "", message)])

    too_big = f"file larger than {MAX_FILE_BYTES // 1024} KiB; expected a small scenario file"
    try:
        if not path.is_file():
            return fail("no such file" if not path.exists() else "not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            return fail(too_big)
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # the file may grow between stat and read
    except OSError as exc:
        return fail(f"cannot read file: {exc.strerror or exc}")
    if len(raw) > MAX_FILE_BYTES:
        return fail(too_big)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return fail(f"not UTF-8 text (invalid byte at offset {exc.start}); expected UTF-8 YAML")
    return parse_text(text, path)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories expanded to their ``*.yaml``/``*.yml`` files, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES)
        else:
            out.append(path)
    return out


def check_paths(paths: Iterable[Path]) -> list[FileResult]:
    """Validate every file (directories expanded) including names unique across files."""
    results: list[FileResult] = []
    seen: set[Path] = set()
    for given in paths:
        files = expand_paths([given])
        if given.is_dir() and not files:
            message = "no scenario files (*.yaml, *.yml) in this directory"
            results.append(FileResult(given, errors=[ScenarioError(given, None, "", message)]))
        for path in files:
            key = path.resolve()
            if key not in seen:  # the same file reached twice is one file, not a duplicate
                seen.add(key)
                results.append(read_file(path))
    first: dict[str, Path] = {}
    for result in results:
        if result.loaded is None:
            continue
        name = result.loaded.scenario.name
        if name in first:
            message = f"duplicate scenario name {name!r}, also used by {first[name]}"
            line, column = result.lines.get(("name",)), result.columns.get(("name",))
            result.errors.append(ScenarioError(result.path, line, "name", message, column))
            result.loaded = None
        else:
            first[name] = result.path
    return results


def load_scenarios(paths: Iterable[Path]) -> list[LoadedScenario]:
    """Load and validate every scenario file; raise ScenarioLoadError listing all problems."""
    results = check_paths(paths)
    errors = [error for result in results for error in result.errors]
    if errors:
        raise ScenarioLoadError(errors)
    return [result.loaded for result in results if result.loaded is not None]

"""Load scenario files safely and report errors a user can act on.

(Minimal version; hardened by the scenario-validation work: line numbers, bounded aliases,
duplicate keys, tags.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from bench.scenario import Scenario, parse_scenario


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """A validated scenario and the file it came from."""

    scenario: Scenario
    path: Path
    text: str


@dataclass(frozen=True, slots=True)
class ScenarioError:
    """One problem in one scenario file."""

    path: Path
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ScenarioLoadError(Exception):
    """One or more scenario files are invalid."""

    def __init__(self, errors: list[ScenarioError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories expanded to their ``*.yaml``/``*.yml`` files, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"})
        else:
            out.append(path)
    return out


def load_scenarios(paths: Iterable[Path]) -> list[LoadedScenario]:
    """Load and validate every scenario file; raise ScenarioLoadError listing all problems."""
    loaded: list[LoadedScenario] = []
    errors: list[ScenarioError] = []
    for path in expand_paths(paths):
        try:
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
            loaded.append(LoadedScenario(parse_scenario(data), path, text))
        except (OSError, yaml.YAMLError) as exc:
            errors.append(ScenarioError(path, None, "", str(exc)))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"])
                errors.append(ScenarioError(path, None, field, err["msg"]))
    if errors:
        raise ScenarioLoadError(errors)
    return loaded

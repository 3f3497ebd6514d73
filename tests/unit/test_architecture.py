"""The package's layering, checked on every import of ``bench/`` (read with ``ast``).

Every ``import`` and ``from ... import`` is collected: module level, inside functions (lazy
imports) and under ``if TYPE_CHECKING:``. Relative imports are resolved. An import of
``bench.a.b`` also counts as an import of the package ``bench.a`` (Python runs its
``__init__`` first).

Rules (the README's Architecture section draws the same picture):

1. No cycles among the imports that run (module level and lazy; ``TYPE_CHECKING`` blocks are
   for the type checker only and are left out of this one rule).
2. ``bench.values`` (the shared value types) imports nothing of bench.
3. Every module of the ``bench.stats`` package imports only numpy, pandas, scipy, the
   standard library, ``bench.metrics`` (the metric catalog) and other ``bench.stats`` modules.
4. The report, ``bench.compare`` and ``bench.export`` import no backend and not the runner.
5. Backends import neither the report, stats, compare, export, the CLI nor the runner.
6. The scenario model (every module of ``bench.scenario`` but the loader: model, workloads,
   options, constraints, fields, safeyaml, errors) imports no backend and not the runner (the
   loader checks backend names against the registry).
7. ``bench.sysinfo`` imports no backend and no scenario.
8. Workloads import no backend.
9. ``bench.backends.base`` imports the scenario model for typing only.
10. Only the CLI (``bench.cli``, ``bench.commands``) imports ``bench.commands``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bench"

STATS = "bench.stats"
STATS_ALLOWED = ("numpy", "pandas", "scipy", "bench.metrics", STATS)
BACKENDS = "bench.backends"
REGISTRY = "bench.backends"  # the package __init__: names and factories, no backend code
RUNNER = "bench.run"
REPORTING = ("bench.report", "bench.compare", "bench.export")
CLI = ("bench.cli", "bench.commands", "bench.__main__")
SCENARIO_LOADER = "bench.scenario.loader"  # the one scenario module that may ask the registry


@dataclass(frozen=True)
class Import:
    """One import statement's target as seen from one module."""

    source: str
    target: str
    line: int
    typing_only: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(source: str, module: str, is_package: bool) -> list[Import]:
    """Every import in ``source`` (module ``module``), with ``from X import y`` as X and X.y."""
    tree = ast.parse(source)
    found: list[Import] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(module, alias.name, node.lineno, typing_only))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            found.append(Import(module, target, node.lineno, typing_only))
            for alias in node.names:  # `from bench import stats` imports bench.stats
                found.append(Import(module, f"{target}.{alias.name}", node.lineno, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def collect(root: Path = PACKAGE) -> tuple[set[str], list[Import]]:
    """(modules of the package, imports between them and to the outside)."""
    modules: set[str] = set()
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root.parent)
        modules.add(name)
        found += imports_of(path.read_text(), name, path.name == "__init__.py")
    return modules, found


def internal_edges(
    modules: set[str], found: Iterable[Import], runtime_only: bool
) -> dict[str, set[str]]:
    """Module -> bench modules it imports (plus their parent packages)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        if runtime_only and imp.typing_only:
            continue
        if imp.target not in modules:  # `from bench.x import SomeClass` also yields bench.x.Some…
            continue
        parts = imp.target.split(".")
        for i in range(2, len(parts) + 1):  # bench.a.b also runs bench.a's __init__...
            parent = ".".join(parts[:i])
            # ...except the source's own ancestors, which Python initialised before it.
            if parent in modules and not _within(imp.source, parent):
                graph[imp.source].add(parent)
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def _within(name: str, prefixes: str | Iterable[str]) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_backend_code(name: str) -> bool:
    return _within(name, BACKENDS) and name != REGISTRY


def _stats_problems(src: str, tgt: str) -> list[str]:
    """Rule 3 for one import of a ``bench.stats`` module."""
    top = tgt.split(".", maxsplit=1)[0]
    if _within(tgt, STATS_ALLOWED) or tgt == "bench":  # `from bench import metrics` names bench
        return []
    if top == "bench":
        return [f"{src} imports {tgt}: stats imports only the metric catalog"]
    if top in sys.stdlib_module_names or top == "__future__":
        return []
    return [f"{src} imports {tgt}: stats stays pure"]


def violations(modules: set[str], found: list[Import]) -> list[str]:
    """Every broken rule, one readable line each (empty when the layering holds)."""
    problems: list[str] = []
    cycle = find_cycle(internal_edges(modules, found, runtime_only=True))
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    graph = internal_edges(modules, found, runtime_only=False)

    def rule(source_ok: bool, target: str, why: str, src: str) -> None:
        if source_ok:
            problems.append(f"{src} imports {target}: {why}")

    for imp in found:
        src, tgt = imp.source, imp.target
        top = tgt.split(".")[0]
        if src == "bench.values" and top == "bench":
            problems.append(f"bench.values imports {tgt}: the value types must be a leaf")
        if _within(src, STATS):
            problems += _stats_problems(src, tgt)
    for src, targets in graph.items():
        for tgt in targets:
            rule(
                _within(src, REPORTING) and (_within(tgt, BACKENDS) or _within(tgt, RUNNER)),
                tgt,
                "reporting reads results, never backends or the runner",
                src,
            )
            rule(
                _is_backend_code(src) and (_within(tgt, (*REPORTING, STATS, RUNNER, *CLI))),
                tgt,
                "a backend measures; it does not report, summarise, run plans or parse argv",
                src,
            )
            rule(
                _within(src, "bench.scenario")
                and src != SCENARIO_LOADER
                and (_within(tgt, BACKENDS) or _within(tgt, RUNNER)),
                tgt,
                "the scenario model knows nothing of backends or the runner",
                src,
            )
            rule(
                src == "bench.sysinfo"
                and (_within(tgt, BACKENDS) or _within(tgt, "bench.scenario")),
                tgt,
                "environment capture imports no backend and no scenario",
                src,
            )
            rule(
                _within(src, "bench.workloads") and _within(tgt, BACKENDS),
                tgt,
                "workloads are shared by every backend and import none",
                src,
            )
            rule(
                _within(tgt, "bench.commands") and not _within(src, CLI),
                tgt,
                "only the CLI imports its subcommands",
                src,
            )
    for imp in found:
        if (
            imp.source == "bench.backends.base"
            and _within(imp.target, "bench.scenario")
            and not imp.typing_only
        ):
            problems.append(
                f"bench.backends.base imports {imp.target} at run time (line {imp.line}):"
                " the scenario type is for typing only"
            )
    return sorted(set(problems))


def test_the_layering_holds() -> None:
    modules, found = collect()
    assert "bench.values" in modules
    assert violations(modules, found) == []


# --- each rule fails on a deliberate violation -----------------------------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> tuple[set[str], list[Import]]:
    for rel, text in files.items():
        path = tmp_path / "bench" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in [tmp_path / "bench", *(tmp_path / "bench").rglob("*")]:
        if directory.is_dir() and not (directory / "__init__.py").exists():
            (directory / "__init__.py").write_text("")
    return collect(tmp_path / "bench")


BASE_TREE = {
    "values.py": "",
    "metrics.py": "",
    "stats/__init__.py": "from bench.stats.core import median\n",
    "stats/core.py": "import numpy\nfrom bench import metrics\nfrom bench.metrics import lookup\n",
    "stats/more.py": "from bench.stats.core import median\nfrom . import core\n",
    "scenario/model.py": "import pydantic\n",
    "backends/__init__.py": "from bench.values import Availability\n",
    "backends/base.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from bench.scenario.model import Scenario\n"
    ),
    "backends/native/backend.py": "from bench.backends.base import Backend\n",
    "run/runner.py": "from bench.backends import base\n",
    "report/html.py": "from bench import stats\n",
    "sysinfo.py": "import psutil\n",
    "workloads/__init__.py": "from bench.values import Outcome\n",
    "cli.py": "from bench.commands import run\n",
    "commands/run.py": "from bench.run import runner\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert violations(*_tree(tmp_path, BASE_TREE)) == []


@pytest.mark.parametrize(
    ("rel", "extra", "expected"),
    [
        ("values.py", "from bench import metrics\n", "must be a leaf"),
        ("stats/__init__.py", "import matplotlib\n", "stats stays pure"),
        ("stats/core.py", "import matplotlib\n", "stats stays pure"),
        ("stats/more.py", "from bench import results\n", "only the metric catalog"),
        ("stats/more.py", "def f():\n    from bench.run import runner\n", "only the metric"),
        ("stats/core.py", "from bench.values import Outcome\n", "only the metric catalog"),
        ("report/html.py", "from bench.backends.native import backend\n", "never backends"),
        ("report/html.py", "def f():\n    from bench.run import runner\n", "never backends"),
        ("backends/native/backend.py", "from bench.report import html\n", "a backend measures"),
        ("backends/native/backend.py", "from bench import stats\n", "a backend measures"),
        ("backends/native/backend.py", "from bench.run import plan\n", "a backend measures"),
        ("scenario/model.py", "def f():\n    from bench import backends\n", "knows nothing"),
        ("scenario/workloads.py", "from bench.run import plan\n", "knows nothing"),
        ("scenario/options.py", "from bench.backends import base\n", "knows nothing"),
        ("sysinfo.py", "from bench.scenario import model\n", "no scenario"),
        ("sysinfo.py", "from bench.backends import base\n", "no backend"),
        ("workloads/__init__.py", "from bench.backends.base import X\n", "import none"),
        ("backends/base.py", "from bench.scenario.model import Scenario\n", "typing only"),
        ("run/runner.py", "from bench.commands import run\n", "only the CLI"),
        ("scenario/model.py", "from bench.scenario import loader\n", "import cycle"),
    ],
)
def test_each_rule_fails_on_a_violation(
    tmp_path: Path, rel: str, extra: str, expected: str
) -> None:
    files = dict(BASE_TREE)
    files[rel] = files.get(rel, "") + extra
    if expected == "import cycle":
        files["scenario/loader.py"] = "from bench.scenario import model\n"
    found = violations(*_tree(tmp_path, files))
    assert any(expected in problem for problem in found), found


def test_typing_only_imports_do_not_make_a_cycle_but_obey_the_rules(tmp_path: Path) -> None:
    files = dict(BASE_TREE)
    files["scenario/model.py"] += (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bench.backends import base\n"
    )
    found = violations(*_tree(tmp_path, files))
    assert not any("cycle" in p for p in found)
    assert any("knows nothing" in p for p in found)


def test_help_imports_neither_pydantic_nor_pandas() -> None:
    import subprocess  # noqa: PLC0415

    probe = (
        "import sys, contextlib, io\n"
        "from bench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('pydantic', 'pandas', 'numpy', 'docker', 'vagrant')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

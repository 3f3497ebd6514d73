"""Safe, bounded YAML with line numbers: the first line of defence against a hostile scenario.

The event stream is checked for nesting depth and node count before anything is composed
(:data:`MAX_DEPTH`, :data:`MAX_NODES`), the composed node graph is walked with aliases expanded
(so a "billion laughs" file is rejected before anything is built from it), only plain YAML tags
are accepted, duplicate keys are reported, and only then does PyYAML's *safe* constructor build
Python values. The walk records the line and column of every field for error messages.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from bench.scenario.errors import FieldPath, dotted

#: Most YAML nodes a file may expand to, aliases counted at every use.
MAX_NODES: Final = 10_000
#: Deepest nesting of mappings/lists accepted (the format needs 4).
MAX_DEPTH: Final = 32

_CORE: Final = "tag:yaml.org,2002:"
#: Tags a scenario may use: plain values only, nothing that builds language objects.
ALLOWED_TAGS: Final = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)
_MERGE_TAG: Final = _CORE + "merge"
_PLAIN_TYPES: Final = "strings, numbers, booleans, null, mappings and lists"


class RejectedError(Exception):
    """Stop processing a file: the attached line, field and message say why."""

    def __init__(self, line: int | None, field: str, message: str) -> None:
        super().__init__(message)
        self.where = (line, field, message)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


#: Only *events* come from this parser (nothing is constructed): libyaml's C parser when
#: available, because PyYAML's pure-Python scanner looks ahead ~1 KiB per pending flow key.
_EVENT_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _event_line(event: yaml.Event) -> int | None:
    """1-based line where a parser event starts, if known."""
    return event.start_mark.line + 1 if event.start_mark else None


def _check_shape(text: str) -> None:
    """Bound nesting depth and node count on the flat event stream, before composing."""
    # The composer recurses once per nesting level and materialises every node, so both are
    # bounded here, where checking costs one pass and no memory.
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_EVENT_LOADER):
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                msg = f"more than {MAX_NODES} YAML nodes; expected a small scenario"
                raise RejectedError(_event_line(event), "", msg)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                msg = f"nesting deeper than {MAX_DEPTH} levels; expected a flat scenario mapping"
                raise RejectedError(_event_line(event), "", msg)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class Walker:
    """Walk a composed node graph: count nodes, check tags and keys, record field lines."""

    def __init__(self) -> None:
        self.lines: dict[FieldPath, int] = {}
        self.columns: dict[FieldPath, int] = {}
        self.errors: list[tuple[int, str, str]] = []  # fatal: nothing can be built
        self.duplicates: list[tuple[int, str, str]] = []
        self.nodes = 0

    def walk(self, node: yaml.Node, path: FieldPath, depth: int = 0) -> None:
        """Visit ``node`` (at field ``path``) and everything below it, aliases expanded."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            msg = (
                f"too many aliases/nodes (possible billion-laughs): more than {MAX_NODES}"
                " YAML nodes once aliases are expanded; expected a small scenario"
            )
            raise RejectedError(node.start_mark.line + 1, "", msg)
        if depth > MAX_DEPTH:
            msg = f"nesting deeper than {MAX_DEPTH} levels once aliases are expanded"
            raise RejectedError(node.start_mark.line + 1, "", msg + " (recursive alias?)")
        if node.tag not in ALLOWED_TAGS:
            msg = (
                f"tag {_short_tag(node.tag)!r} is not allowed; expected plain YAML values"
                f" only ({_PLAIN_TYPES})"
            )
            self.errors.append((node.start_mark.line + 1, dotted(path), msg))
            return
        if isinstance(node, yaml.MappingNode):
            self._mapping(node, path, depth, inherited=False)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines.setdefault((*path, index), item.start_mark.line + 1)
                self.columns.setdefault((*path, index), item.start_mark.column + 1)
                self.walk(item, (*path, index), depth + 1)

    def _mapping(
        self, node: yaml.MappingNode, path: FieldPath, depth: int, inherited: bool
    ) -> None:
        seen: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == _MERGE_TAG:
                merges.append(value)
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag not in ALLOWED_TAGS:
                msg = "expected a plain key (a field name), found a complex or tagged key"
                self.errors.append((line, dotted(path), msg))
                continue
            name = key.value
            if name in seen:
                # Not fatal: the last value wins (as in PyYAML), so validate it as well.
                msg = f"duplicate key {name!r} (first on line {seen[name]}); expected each once"
                self.duplicates.append((line, dotted((*path, name)), msg))
            seen[name] = line
            if inherited and (*path, name) in self.lines:
                # Shadowed by an explicit key: still checked (tags, size), but its lines must
                # not replace those of the value actually used.
                kept, self.lines = self.lines, {}
                self.walk(value, (*path, name), depth + 1)
                self.lines = kept
                continue
            self.lines[(*path, name)] = line
            self.columns[(*path, name)] = key.start_mark.column + 1
            self.walk(value, (*path, name), depth + 1)
        # Merged keys (<<: *base) count, but explicit keys of this mapping take precedence.
        for merge in merges:
            self.nodes += 1
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    self._mapping(source, path, depth + 1, inherited=True)


def compose(text: str) -> tuple[Any, Walker, list[tuple[int, str, str]], bool]:
    """Safely parse ``text``: (data, walker with field lines, errors, fatal).

    Raises RejectedError.
    """
    _check_shape(text)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None or node.tag == _CORE + "null":  # nothing, or only "---"
            msg = "empty file; expected a scenario mapping with format_version, name and workload"
            raise RejectedError(None, "", msg)
        walker = Walker()
        walker.lines[()] = node.start_mark.line + 1
        walker.walk(node, ())
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else f"{node.value!r}"
            msg = (
                "expected a mapping of scenario fields at the top level (format_version, name,"
                f" workload, ...), got {kind}"
            )
            raise RejectedError(node.start_mark.line + 1, "", msg)
        errors = sorted(walker.errors + walker.duplicates)
        if walker.errors:
            return None, walker, errors, True
        return loader.construct_document(node), walker, errors, False
    finally:
        loader.dispose()

"""Translate pydantic validation errors into (line, dotted field, expectation) triples.

Pure. Pydantic's error ``loc`` includes the workload's discriminator tag
(``('workload', 'syscall', 'null_calls')``), which is not a key of the file; :func:`resolve`
removes it and finds the model at a location so that an unknown key can be answered with the
keys allowed there.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, Final, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bench.scenario.model import WORKLOAD_KINDS, Scenario, workload_classes

FieldPath = tuple[str | int, ...]

_KIND_TO_MODEL: Final = dict(zip(WORKLOAD_KINDS, workload_classes(), strict=True))
_UNIONS: Final = (Union, types.UnionType)
_TYPE_NAMES: Final = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "NoneType": "null",
    "list": "list",
    "dict": "mapping",
}
_SIMPLE: Final = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "dict_type": "expected a mapping",
}
#: What a required field holds, for "missing required field" messages.
_REQUIRED: Final = {
    "format_version": "the format version, 1",
    "name": "a unique scenario name",
    "workload": f"a mapping with kind: one of {', '.join(WORKLOAD_KINDS)}",
    "command": "the command as a list of strings, e.g. [sysbench, cpu, run]",
}


def dotted(path: Sequence[str | int]) -> str:
    """``('vagrant', 'sizes', 0, 'memory')`` -> ``vagrant.sizes[0].memory``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the type that matters."""
    while True:
        args = get_args(annotation)
        if hasattr(annotation, "__metadata__"):
            annotation = args[0]
        elif get_origin(annotation) in _UNIONS and len(args) == 2 and type(None) in args:
            annotation = next(a for a in args if a is not type(None))
        else:
            return annotation


def resolve(loc: Sequence[str | int]) -> tuple[FieldPath, type[BaseModel] | None]:
    """Drop discriminator tags from a pydantic loc; also return the model at its end."""
    path: list[str | int] = []
    current: Any = Scenario
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            path.append(part)
            info = current.model_fields.get(str(part))
            current = info.annotation if info else None
        elif get_origin(current) in _UNIONS and part in _KIND_TO_MODEL:
            current = _KIND_TO_MODEL[str(part)]  # the workload's kind tag, not a YAML key
        elif get_origin(current) is tuple:
            path.append(part)
            current = get_args(current)[0]
        else:
            path.append(part)
            current = None
    current = _unwrap(current)
    model = current if isinstance(current, type) and issubclass(current, BaseModel) else None
    return tuple(path), model


def _got(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"got {text} ({_TYPE_NAMES.get(type(value).__name__, type(value).__name__)})"


def expectation(err: Mapping[str, Any]) -> str:
    """What was expected (and what was found) for one pydantic error."""
    kind: str = err["type"]
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind == "value_error":  # our validators' messages already say both
        return str(ctx.get("error", err["msg"]))
    if kind in _SIMPLE:
        text = _SIMPLE[kind]
    elif kind == "greater_than":
        text = f"expected a value > {ctx['gt']:g}"
    elif kind == "greater_than_equal":
        text = f"expected a value >= {ctx['ge']:g}"
    elif kind == "less_than":
        text = f"expected a value < {ctx['lt']:g}"
    elif kind == "less_than_equal":
        text = f"expected a value <= {ctx['le']:g}"
    elif kind == "finite_number":
        text = "expected a finite number (not .inf or .nan)"
    elif kind == "too_short":
        text = f"expected at least {ctx['min_length']} item(s)"
    elif kind in {"too_long", "string_too_long"}:
        text = f"expected at most {ctx['max_length']} characters or items"
    elif kind == "literal_error":
        text = f"expected {ctx['expected']}"
    else:
        text = str(err["msg"]).replace("Input should be", "expected")
    return f"{text}, {_got(err['input'])}"


def translate(
    exc: ValidationError, lines: Mapping[FieldPath, int]
) -> list[tuple[int | None, str, str]]:
    """(line, dotted field, message) for every error; ``lines`` maps field paths to lines."""
    kinds = ", ".join(WORKLOAD_KINDS)
    raw = exc.errors()
    out: list[tuple[int | None, str, str]] = []
    for err in raw:
        loc = tuple(err["loc"])
        # "too short after validation" only echoes a failed item already reported below it.
        if err["type"] == "too_short" and any(o["loc"][: len(loc)] == loc != o["loc"] for o in raw):
            continue
        path, _ = resolve(loc)
        line = lines.get(path)
        if err["type"] == "missing":
            parent, _ = resolve(loc[:-1])
            line = lines.get(parent)  # the field is absent: point at the mapping lacking it
            hint = _REQUIRED.get(str(path[-1]))
            message = f"missing required field {path[-1]!r}" + (
                f"; expected {hint}" if hint else ""
            )
        elif err["type"] == "extra_forbidden":
            _, model = resolve(loc[:-1])
            allowed = ", ".join(model.model_fields) if model else "(none)"
            message = f"unknown key {path[-1]!r}; allowed keys here: {allowed}"
        elif err["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            path = (*path, "kind")
            line = lines.get(path, line)
            tag = (err.get("ctx") or {}).get("tag")
            what = f"unknown workload kind {tag!r}" if tag else "missing workload kind"
            message = f"{what}; expected one of: {kinds}"
        else:
            message = expectation(err)
        out.append((line, dotted(path), message))
    return out

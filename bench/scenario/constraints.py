"""The constrained field types every scenario model shares: bounded numbers, sizes, labels.

Pure (pydantic only). Every number is finite and bounded, sizes take an explicit unit, strings
have a byte limit: a value past these limits is a typo or a hostile file, never a benchmark.
Messages are phrased "expected ..." because the loader shows them next to the file, line and
field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
)

#: Longest scenario name (it becomes part of file names and report headings), in characters
#: and in bytes of UTF-8: with a backend, variant and counter appended a file name must stay
#: under the 255 bytes every common file system allows.
MAX_NAME_LENGTH: Final = 100
MAX_NAME_BYTES: Final = 128
#: Sane maxima: a value past these is a typo or a hostile file, never a benchmark.
MAX_REPEAT: Final = 10_000
MAX_WARMUP: Final = 1_000
MAX_SECONDS: Final = 86_400.0  # timeouts, idle and run times: at most a day
MAX_CALLS: Final = 10**10  # probe loop counts (4 M null calls take about a second)
MAX_CPUS: Final = 1024
MAX_BYTES: Final = 1 << 40  # 1 TiB: allocations, test files, memory limits, VM memory
MAX_LABEL_BYTES: Final = 64  # runtime names and the like (they become variant labels)
MAX_ARGS: Final = 4096
MAX_ARG_BYTES: Final = 128 * 1024  # the kernel's MAX_ARG_STRLEN
MAX_DESCRIPTION: Final = 10_000


MiB: Final = 1024 * 1024
_UNIT: Final = re.compile(r"^\s*[\d.]+\s*([A-Za-z]+)\s*$")
_T = TypeVar("_T")


def size_input(value: Any) -> Any:
    # ByteSize would take True as 1 byte and 3.7 as an unparseable string; YAML gives ints
    # and strings for sizes, so anything else is a typo worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | str):
        msg = (
            "expected a size: an integer number of bytes or a string like 64MiB, 1GiB, 500MB;"
            f" got {value!r}"
        )
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a field error
    unit = _UNIT.match(value) if isinstance(value, str) else None
    if unit and unit.group(1).lower() in {"k", "m", "g", "t", "p", "e"}:
        # fio and docker read "64m" as MiB, pydantic as 10^6 bytes: make the user choose.
        letter = unit.group(1).upper()
        msg = (
            f"ambiguous size unit in {value!r}; expected {letter}iB (binary) or {letter}B (decimal)"
        )
        raise ValueError(msg)
    return value


def format_size(value: int) -> str:
    """Bytes as the shortest exact binary unit: 4MiB, 1536KiB, 1000B."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


def at_least(minimum: int, maximum: int = MAX_BYTES) -> Callable[[ByteSize], ByteSize]:
    def check(value: ByteSize) -> ByteSize:
        if value < minimum:
            msg = f"expected at least {format_size(minimum)}, got {format_size(value)}"
            raise ValueError(msg)
        if value > maximum:
            msg = f"expected at most {format_size(maximum)}, got {format_size(value)}"
            raise ValueError(msg)
        return value

    return check


def max_bytes(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > limit:
            msg = f"expected at most {limit} bytes of UTF-8, got {size} bytes"
            raise ValueError(msg)
        return value

    return check


def _fraction(value: Any) -> Any:
    # "5%" reads as 0.05; a bare number is already a fraction (0.05). Anything else is
    # left to the float check, which names what was expected.
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            pass
    return value


def no_duplicates(values: tuple[_T, ...]) -> tuple[_T, ...]:
    seen: list[_T] = []
    for value in values:
        if value in seen:
            msg = f"expected distinct entries, {value!r} is listed twice"
            raise ValueError(msg)
        seen.append(value)
    return values


def non_empty(value: str) -> str:
    if not value.strip():
        msg = "expected a non-empty string"
        raise ValueError(msg)
    return value


# Strict numbers: YAML already types its scalars, so "5" (a string) or true (a boolean) where a
# number belongs is a mistake to report, not something to coerce.
# Every number is finite and bounded: .inf or 1e300 passes a "positive" check and then
# exhausts the host (a timer that never fires, a plan of 10^8 items).
Count = Annotated[StrictInt, Field(ge=1, le=MAX_REPEAT)]
NonNegativeCount = Annotated[StrictInt, Field(ge=0, le=MAX_WARMUP)]
Calls = Annotated[StrictInt, Field(ge=1, le=MAX_CALLS)]
CpuCount = Annotated[StrictInt, Field(ge=1, le=MAX_CPUS)]
PositiveNumber = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
Cpus = Annotated[StrictFloat, Field(gt=0, le=MAX_CPUS, allow_inf_nan=False)]
Seconds = Annotated[StrictFloat, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
#: Relative half-width of the median's 95 % CI: 0.05 or "5%".
Precision = Annotated[
    StrictFloat, BeforeValidator(_fraction), Field(gt=0, lt=1, allow_inf_nan=False)
]
NonEmptyStr = Annotated[str, AfterValidator(non_empty)]
Label = Annotated[str, AfterValidator(non_empty), AfterValidator(max_bytes(MAX_LABEL_BYTES))]
Argument = Annotated[str, AfterValidator(max_bytes(MAX_ARG_BYTES))]
# Byte sizes: an integer or a string with a unit (64MiB, 1GiB, 500MB), with a floor each.
AllocSize = Annotated[ByteSize, BeforeValidator(size_input), AfterValidator(at_least(1))]
# fio's sequential jobs use 1 MiB blocks, so a smaller file holds no complete block.
FioFileSize = Annotated[ByteSize, BeforeValidator(size_input), AfterValidator(at_least(MiB))]
# Below a few MiB not even the probe's static binary and libc pages fit.
LimitMemory = Annotated[ByteSize, BeforeValidator(size_input), AfterValidator(at_least(4 * MiB))]
# A Debian 12 guest with systemd and sshd does not boot reliably in less.
VmMemory = Annotated[ByteSize, BeforeValidator(size_input), AfterValidator(at_least(128 * MiB))]


_ON: Final = frozenset({"on", "true", "yes"})
_OFF: Final = frozenset({"off", "false", "no"})


def on_off_input(value: Any) -> Any:
    # YAML 1.1 reads a bare on/off (and yes/no, true/false) as a boolean; quoted, any case.
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str) and value.strip().lower() in _ON | _OFF:
        return "on" if value.strip().lower() in _ON else "off"
    return value


#: on/off however YAML types it: true/false, on/off, yes/no, quoted or not, any case.
OnOff = Annotated[Literal["on", "off"], BeforeValidator(on_off_input)]


class Frozen(BaseModel):
    """Base of every scenario model: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

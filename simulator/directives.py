"""Per-request behaviour injected through `[[sim:...]]` in the last user message.

Several directives may be given, as separate brackets or comma-separated in one:
`hello [[sim:tokens=5,think]] [[sim:delay_ms=20]]`. A typo is a 400, not silently ignored.
"""

import re
from dataclasses import dataclass, replace
from typing import Any

from simulator.errors import SimError

_DIRECTIVE = re.compile(r"\[\[sim:([^\]]*)\]\]")
PRESTREAM_ERRORS = frozenset({"400", "401", "403", "404", "429", "500", "502", "503"})
STREAM_ERRORS = frozenset({"midstream", "truncate"})


@dataclass(frozen=True)
class Directives:
    error: str | None = None
    tokens: int | None = None
    delay_ms: float | None = None
    first_delay_ms: float | None = None
    think: bool = False
    tool_call: bool = False
    final_content: bool = False
    echo: bool = False
    # Write every NDJSON line in two sends, so clients must reassemble lines.
    split: bool = False


_FLAGS = frozenset({"think", "tool_call", "final_content", "echo", "split"})
_NUMBERS: dict[str, type[int] | type[float]] = {
    "tokens": int,
    "delay_ms": float,
    "first_delay_ms": float,
}
NONE = Directives()


def parse_directives(text: str) -> Directives:
    if "[[sim:" not in text:
        return NONE
    changes: dict[str, Any] = {}
    for group in _DIRECTIVE.findall(text):
        for item in filter(None, (part.strip() for part in group.split(","))):
            key, _, value = item.partition("=")
            changes[key] = _parse_value(key, value, item)
    return replace(NONE, **changes)


def _parse_value(key: str, value: str, item: str) -> Any:
    if key in _FLAGS and not value:
        return True
    if key == "error" and value in PRESTREAM_ERRORS | STREAM_ERRORS:
        return value
    if key in _NUMBERS and value:
        try:
            number = _NUMBERS[key](value)
        except ValueError:
            pass
        else:
            if number >= 0:
                return number
    raise SimError(400, f"invalid simulator directive '{item}'")

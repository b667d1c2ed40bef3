"""Whole-column checks: a batch's column of plain text validated at C speed, in one pass.

Why: most columns of a large file are plain text that passes (identifiers, document numbers).
Checking them one cell at a time in Python costs more than the database insert; joining the
column and running one regular expression, or one string method, over the result costs a few
nanoseconds a character. :mod:`node.ingest.cells` compiles these checks next to the per-cell
rules of the same fields.

Invariants:
* A check returns the database columns of its field for the batch only when *every* cell
  passes, and then exactly what the per-cell rule would give cell by cell; otherwise it
  returns ``None`` and the caller takes the per-cell path, which names each problem. A check
  may send a valid column to the per-cell path (it is a shortcut), never the reverse.
* Empty optional cells become ``None``; an empty required cell always goes to the per-cell
  path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

#: A whole-column check: the database columns when every cell passes, ``None`` when some
#: cell needs the per-cell path (which then names the problem).
ColumnCheck = Callable[[Sequence[str]], list[list[Any]] | None]

_EMPTY_TO_NONE: dict[str, None] = {"": None}


def null_empty(column: Sequence[str]) -> list[Any]:
    """``column`` with empty cells as ``None`` (a dictionary lookup per cell, at C speed)."""
    return list(map(_EMPTY_TO_NONE.get, column, column))


def charset(pattern: str) -> str | None:
    """The characters of a ``^[class]+$`` pattern (ranges expanded); ``None`` for others."""
    match = re.fullmatch(r"\^\[([^\]\^\\]+)\]\+\$", pattern)
    if match is None:
        return None
    spec, i = match.group(1), 0
    chars: list[str] = []
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            chars.append(spec[i])
            i += 1
    return "".join(chars)


def _line_pattern(
    allowed: str | None, limit: int, required: bool, formula_start: frozenset[str]
) -> re.Pattern[str]:
    """A regular expression for a column joined with line feeds, one value per line: every
    value within ``limit`` characters, of ``allowed`` characters only (any but a line feed
    when ``None``), not starting with a formula character, and not empty when ``required``."""
    body = f"[{re.escape(allowed)}]" if allowed is not None else "[^\\n]"
    first = f"(?![{re.escape(''.join(sorted(formula_start)))}]){body}"
    value = f"{first}{body}{{0,{limit - 1}}}"
    line = value if required else f"(?:{value})?"
    return re.compile(f"{line}(?:\\n{line})*")


def text_column_check(
    pattern: str | None, limit: int, required: bool, formula_start: frozenset[str]
) -> ColumnCheck | None:
    """The checks of a plain text field: required, length cap, formula rule (refused at any
    leading formula character; numbers then go through the per-cell path) and the pattern when
    it is a character class (a value passes iff it strips to nothing). ``None`` when the
    pattern is not a character class.

    One regular expression over the joined column settles the common case (every value
    passes); the stripping checks decide the rest. Both read the joined column as one value
    per line, so a column in which some value holds a line feed goes to the per-cell path:
    stripping would take that line feed for a separator and pass ``"A1\nA2"`` or ``"A1\n"``.
    """
    allowed = charset(pattern) if pattern else ""
    if allowed is None:
        return None
    lines = _line_pattern(allowed or None, limit, required, formula_start)
    allowed += "\n"
    starts = tuple("\n" + c for c in formula_start)

    def check(column: Sequence[str]) -> list[list[Any]] | None:
        if not column:
            return None
        joined = "\n".join(column)
        if joined.count("\n") != len(column) - 1:
            return None  # a value holds a line feed
        if not lines.fullmatch(joined):
            if (required and "" in column) or max(map(len, column)) > limit:
                return None
            joined = "\n" + joined
            if any(start in joined for start in starts):
                return None
            if pattern and joined.strip(allowed):
                return None
        return [list(column) if required else null_empty(column)]

    return check


def document_number_check(limit: int, required: bool) -> ColumnCheck:
    """The common case of a document number column: every number already canonical ASCII
    letters and digits of at most ``limit`` characters, whose normalised form (ICAO 9303) is
    its upper case. Gives the number as recorded and its normalised form."""

    def check(column: Sequence[str]) -> list[list[Any]] | None:
        if not column or (required and "" in column):
            return None
        joined = "".join(column)
        if not (joined.isascii() and (joined.isalnum() or not joined)):
            return None
        if max(map(len, column)) > limit:
            return None
        upper = list(map(str.upper, column))
        if required:
            return [list(column), upper]
        return [null_empty(column), null_empty(upper)]

    return check

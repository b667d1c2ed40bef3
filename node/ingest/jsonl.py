"""The JSON Lines reader: one JSON object per line, its fields named like the dataset's columns.

Why a module of its own: a line is a whole record with its own rules (each field once, a
list only where the column holds several codes, values that a CSV cell could hold); the row
contract is :mod:`node.ingest.readers`' (the line number, cells as the text a CSV would hold).

Invariants:
* A line longer than :data:`~node.ingest.readers.MAX_LINE_BYTES` is refused without being
  held in memory; the next line is read as usual.
* A refused line keeps its text whole (its only cell), so the rejects file shows it as read.
* A field written twice in one line refuses the line: ``json`` would keep the last value
  silently, and the record be imported with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from node.ingest.readers import (
    EXTRA_COLUMNS,
    MAX_LINE_BYTES,
    READ_CHUNK,
    RowProblem,
    Source,
    SourceRow,
    cell_text,
    source_columns,
    source_row,
)
from node.records.codelists import suggest_codes


class JsonLinesSource(Source):
    def raw_text(self, cells: Sequence[str]) -> str:
        """A refused line as read (its cells are the line itself)."""
        return "".join(cells)

    def rows(self) -> Iterator[SourceRow]:
        columns = source_columns(self.spec)
        index = {c: i for i, c in enumerate(columns)}
        codes = {f.name for f in self.spec.fields if f.type == "codes"}
        self.extras_present = EXTRA_COLUMNS.get(self.spec.name, ())
        with self.facts.path.open("rb") as handle:
            self.handle = handle
            number = 0
            while True:
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while (rest := handle.readline(READ_CHUNK)) and not rest.endswith(b"\n"):
                        pass
                    yield source_row(
                        number,
                        [],
                        RowProblem(
                            "-",
                            f"the line is longer than {MAX_LINE_BYTES} bytes",
                            "one line holds one record",
                        ),
                    )
                    continue
                line = raw.decode("utf-8")
                if number == 1:
                    line = line.removeprefix("\ufeff")
                if line.strip():
                    yield self._parse(number, line, columns, index, codes)

    def _parse(
        self,
        number: int,
        line: str,
        columns: tuple[str, ...],
        index: dict[str, int],
        codes: set[str],
    ) -> SourceRow:
        raw = [line.rstrip("\r\n")]  # the cells of a refused line: the line itself
        try:
            record = json.loads(line, object_pairs_hook=_object_once)
        except _RepeatedKeyError as exc:
            return source_row(
                number,
                raw,
                RowProblem(
                    exc.key,
                    f"the field {exc.key!r} appears twice in the line",
                    "keep one: a record has one value per field",
                ),
            )
        except json.JSONDecodeError as exc:
            return source_row(
                number,
                raw,
                RowProblem(
                    "-",
                    f"not valid JSON ({exc.msg} at character {exc.pos + 1})",
                    "one JSON object per line",
                ),
            )
        if not isinstance(record, dict):
            return source_row(
                number,
                raw,
                RowProblem("-", "the line is not a JSON object", 'write {"column": "value", ...}'),
            )
        cells = [""] * len(columns)
        for key, value in record.items():
            position = index.get(key)
            if position is None:
                close = suggest_codes(str(key), columns)
                fix = f"did you mean {close[0]!r}?" if close else "remove it"
                return source_row(number, raw, RowProblem(str(key), "unknown field", fix))
            if isinstance(value, list) and key in codes:
                texts = [cell_text(v) for v in value]
                text = None if any(t is None for t in texts) else ";".join(map(str, texts))
            else:
                text = cell_text(value)
            if text is None:
                return source_row(
                    number,
                    raw,
                    RowProblem(
                        key,
                        f"a {type(value).__name__} is not a value",
                        "write a string or a number",
                    ),
                )
            cells[position] = text
        return source_row(number, cells)


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: of a key written twice, ``json`` would
    keep the last value silently (and the record be imported with it)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKeyError(key)
            seen.add(key)
    return record

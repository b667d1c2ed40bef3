"""The CSV files of one generation run and the text forms of generated values.

Why: generating is dominated by turning columns into text. This module owns the open files
(:class:`OutputFiles`) and the fast formatters (dates by table lookup, zero-padded identifiers by
slicing, multi-valued codes by bit mask), so that the row builders work on whole columns and
never format a value one at a time.

Invariants:
* Every file of :data:`OUTPUT_FILES` is created with its header, even when it gets no rows; the
  headers are the dataset columns of :mod:`node.records.datasets` and
  :data:`GROUND_TRUTH_COLUMNS`.
* Rows are joined with ``,`` and not quoted: no generated field holds a comma, quote or line
  break. The consular directory (free text) is the one file written through the csv module.
* Files are UTF-8 with LF line ends, so the same arguments give byte-identical files everywhere.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from node.records.datasets import DATASETS
from node.records.synthetic_tables import EPOCH, I64

OUTPUT_FILES = (
    "encounters.csv", "travel_documents.csv", "document_alerts.csv", "persons_of_interest.csv",
    "biometric_templates.csv", "consular_directory.csv", "ground_truth.csv",
)  # fmt: skip
GROUND_TRUTH_COLUMNS = (
    "global_person_id", "country", "dataset", "local_id", "document_key", "true_nationality",
)  # fmt: skip


class OutputFiles:
    """The open CSV files of one generation run and their row counts."""

    def __init__(self, out_dir: Path) -> None:
        self.handles: dict[str, IO[str]] = {}
        self.writers: dict[str, Any] = {}
        self.rows = dict.fromkeys(OUTPUT_FILES, 0)
        for name in OUTPUT_FILES:
            handle = (out_dir / name).open("w", encoding="utf-8", newline="")
            self.handles[name] = handle
            self.writers[name] = csv.writer(handle, lineterminator="\n")
            spec = DATASETS.get(name.removesuffix(".csv"))
            self.writers[name].writerow(spec.columns if spec else GROUND_TRUTH_COLUMNS)

    def write(self, name: str, rows: Iterable[tuple[str, ...]]) -> None:
        """Append rows. Fields never contain ',', '"' or line breaks (pools are checked when the
        tables are built; everything else is codes, digits and dates), except in the consular
        directory, which goes through the csv module's quoting."""
        if name == "consular_directory.csv":
            rows = list(rows)
            self.writers[name].writerows(rows)
            self.rows[name] += len(rows)
            return
        lines = list(map(",".join, rows))
        if lines:
            self.handles[name].write("\n".join(lines))
            self.handles[name].write("\n")
        self.rows[name] += len(lines)

    def columns(self, name: str, *columns: list[str]) -> None:
        self.write(name, zip(*columns, strict=True))

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def bit_strings(codes: tuple[str, ...], explicit_none: bool) -> npt.NDArray[np.object_]:
    """Every subset of ``codes`` as ``;``-joined text, indexed by its bit mask (the empty set is
    ``none`` where the member's system records that explicitly)."""
    table = [";".join(c for i, c in enumerate(codes) if m >> i & 1) for m in range(1 << len(codes))]
    table[0] = "none" if explicit_none else ""
    return np.array(table, dtype=object)


def numbered(prefix: str, start: int, n: int) -> list[str]:
    """``prefix`` + the last nine digits of ``start .. start + n - 1`` (fast zero padding)."""
    return [prefix + s[-9:] for s in map(str, range(start, start + n))]


def prefixed(prefix: str, values: I64) -> npt.NDArray[np.object_]:
    """``prefix`` + the decimal digits of ``values`` after their first (``10**n`` padding)."""
    return np.array([prefix + s[1:] for s in map(str, values.tolist())], dtype=object)


def given_names(table: npt.NDArray[np.object_], g1: I64, g2: I64) -> npt.NDArray[np.object_]:
    """First given name, plus the second where there is one (``g2`` -1 means none)."""
    first, second = table[g1], table[np.maximum(g2, 0)]
    out: npt.NDArray[np.object_] = np.where(g2 >= 0, first + " " + second, first)
    return out


def loosely_typed(number: str, how: int) -> str:
    """The same number as typed by hand: lower case, a space, a hyphen or an MRZ filler."""
    if how == 1:
        return number.lower()
    if how == 2:
        return f"{number[:2]} {number[2:]}"
    if how == 3:
        return f"{number[:3]}-{number[3:]}"
    return number + "<" if how == 4 else number


_FIRST_DAY = int((np.datetime64("1900-01-01", "D") - EPOCH).astype(np.int64))


@functools.cache
def _day_strings() -> npt.NDArray[np.object_]:
    """``YYYY-MM-DD`` for every day of 1900-2069, indexed by ``day - _FIRST_DAY``."""
    days = np.arange(_FIRST_DAY, _FIRST_DAY + 170 * 366).astype("timedelta64[D]")
    return np.datetime_as_string(EPOCH + days, unit="D").astype(object)


def date_strings(days: I64, width: int = 10, suffix: str = "") -> npt.NDArray[np.object_]:
    """Dates as text, cut to ``width`` characters (7: ``YYYY-MM``, 4: ``YYYY``) + ``suffix``."""
    table = _day_strings()
    if width != 10 or suffix:
        table = _cut_table(width, suffix)
    out: npt.NDArray[np.object_] = table[days - _FIRST_DAY]
    return out


@functools.cache
def _cut_table(width: int, suffix: str) -> npt.NDArray[np.object_]:
    return np.array([d[:width] + suffix for d in _day_strings().tolist()], dtype=object)

"""Reading probe templates from the files an officer has at hand.

Why: a probe reaches the querier's node as a face embedding exported by a capture station, a
row of the node's own ``biometric_templates`` export, or a bare vector pasted from another
tool. ``enlace match biometric`` accepts all of them (``docs/biometrics.md``):

* ``.npy`` — a numpy array of shape ``(128,)`` (one template) or ``(n, 128)``, any real dtype;
* ``.csv`` — a header with a ``vector`` column of base64 float32 little-endian values (the
  ``biometric_templates`` format of the data dictionary); the label is ``label``,
  ``record_id`` or ``person_id``, the first present;
* ``.jsonl`` / ``.json`` — one JSON object per line with ``vector`` (base64 as in CSV, or a list
  of numbers) and the same optional label fields;
* anything else — one base64 float32 little-endian vector per non-empty line.

Invariants:
* Every template read has dimension :data:`~node.records.datasets.TEMPLATE_DIMENSION`, finite
  values and a finite, non-zero norm (values near 1e200 overflow the norm, and the unit vector
  would then be all zeros: a code that matches nothing); anything else raises
  :class:`InvalidArgumentError` naming the file and line (or row). No parser error of numpy,
  csv or json escapes: an empty or truncated ``.npy``, a number too large for a float or an
  over-long CSV field is that error too.
* Reading never modifies the file and never keeps more than the parsed vectors.
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from node.errors import InvalidArgumentError
from node.records.datasets import TEMPLATE_DIMENSION

LABEL_FIELDS = ("label", "record_id", "person_id")
MAX_TEMPLATES = 1_000_000


@dataclass(frozen=True)
class Templates:
    labels: list[str]
    vectors: npt.NDArray[np.float64]  # (n, TEMPLATE_DIMENSION)

    def __len__(self) -> int:
        return len(self.labels)


def _bad(path: Path, where: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{path.name}:{where}: {problem}",
        field="template",
        hint=f"a template is {TEMPLATE_DIMENSION} float32 values (see docs/biometrics.md)",
    )


def _decode(text: str, path: Path, where: str) -> npt.NDArray[np.float64]:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(path, where, "the vector is not valid base64") from None
    if len(raw) != 4 * TEMPLATE_DIMENSION:
        raise _bad(path, where, f"the vector has {len(raw)} bytes, not {4 * TEMPLATE_DIMENSION}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float64)


def _vector(value: Any, path: Path, where: str) -> npt.NDArray[np.float64]:
    if isinstance(value, str):
        return _decode(value, path, where)
    if isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        if len(value) != TEMPLATE_DIMENSION:
            raise _bad(path, where, f"the vector has {len(value)} values, not {TEMPLATE_DIMENSION}")
        try:
            return np.asarray(value, dtype=np.float64)
        except OverflowError:
            raise _bad(path, where, "a value is too large for a float") from None
    raise _bad(path, where, "vector must be base64 text or a list of numbers")


def _label(row: dict[str, Any], default: str) -> str:
    for name in LABEL_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default


def _check(labels: list[str], rows: list[npt.NDArray[np.float64]], path: Path) -> Templates:
    if not rows:
        raise _bad(path, "-", "no template in the file")
    if len(rows) > MAX_TEMPLATES:
        raise _bad(path, "-", f"more than {MAX_TEMPLATES:,} templates; split the file")
    vectors = np.stack(rows)
    for index, row in enumerate(vectors):
        if not np.isfinite(row).all():
            raise _bad(path, labels[index], "the vector has NaN or infinite values")
        if not np.any(row):
            raise _bad(path, labels[index], "the vector is all zeros")
        with np.errstate(over="ignore"):
            norm = np.linalg.norm(row)
        if not np.isfinite(norm):
            raise _bad(path, labels[index], "the values are too large (their norm overflows)")
    return Templates(labels, vectors)


def _read_npy(path: Path) -> Templates:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy's header parser raises EOFError, TokenError…
        reason = str(exc) or type(exc).__name__
        raise _bad(path, "-", f"not a numpy .npy array ({reason})") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != TEMPLATE_DIMENSION:
        raise _bad(path, "-", f"shape {array.shape}, expected ({TEMPLATE_DIMENSION},) or (n, 128)")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise _bad(path, "-", f"dtype {array.dtype} is not real numbers")
    rows = [row.astype(np.float64) for row in array]
    return _check([f"{path.stem}#{i + 1}" for i in range(len(rows))], rows, path)


def _read_csv(path: Path) -> Templates:
    labels: list[str] = []
    rows: list[npt.NDArray[np.float64]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "vector" not in reader.fieldnames:
            raise _bad(path, "1", "the header has no 'vector' column")
        try:
            for row in reader:
                where = str(reader.line_num)
                rows.append(_decode(row.get("vector") or "", path, where))
                labels.append(_label(row, f"row {reader.line_num}"))
        except csv.Error as exc:  # e.g. a field over the csv module's limit of 131,072 chars
            raise _bad(path, str(reader.line_num + 1), f"not readable as CSV ({exc})") from None
    return _check(labels, rows, path)


def _read_jsonl(path: Path) -> Templates:
    labels: list[str] = []
    rows: list[npt.NDArray[np.float64]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad(path, str(number), f"not JSON ({exc.msg})") from None
            except (ValueError, RecursionError) as exc:  # an integer of thousands of digits…
                raise _bad(path, str(number), f"not usable JSON ({exc})") from None
            if not isinstance(row, dict) or "vector" not in row:
                raise _bad(path, str(number), "expected an object with a 'vector'")
            rows.append(_vector(row["vector"], path, str(number)))
            labels.append(_label(row, f"line {number}"))
    return _check(labels, rows, path)


def _read_lines(path: Path) -> Templates:
    labels: list[str] = []
    rows: list[npt.NDArray[np.float64]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                rows.append(_decode(line, path, str(number)))
                labels.append(f"line {number}")
    return _check(labels, rows, path)


def read_templates(path: Path) -> Templates:
    """Every template in ``path``, by its extension (see the module docstring)."""
    if not path.is_file():
        raise InvalidArgumentError(f"{path} is not a file", field="template")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path)
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix in (".jsonl", ".json"):
            return _read_jsonl(path)
        return _read_lines(path)
    except UnicodeDecodeError:
        raise _bad(path, "-", "the file is not UTF-8 text") from None

"""Reading probe templates: every accepted format gives the same vectors; bad input is named."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from node.biometrics.templates import read_templates
from node.errors import InvalidArgumentError

RNG = np.random.default_rng(11)
FACES = RNG.standard_normal((3, 128)).astype("<f4")


def _b64(row: np.ndarray) -> str:
    return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")


def test_every_format_reads_the_same_vectors(tmp_path: Path) -> None:
    np.save(tmp_path / "many.npy", FACES)
    np.save(tmp_path / "one.npy", FACES[0].astype(np.float64))
    (tmp_path / "rows.csv").write_text(
        "record_id,person_id,modality,capture_date,vector\n"
        + "".join(
            f"CRIB{i},CRIP{i},face,2024-01-0{i + 1},{_b64(f)}\n" for i, f in enumerate(FACES)
        ),
        encoding="utf-8",
    )
    (tmp_path / "rows.jsonl").write_text(
        json.dumps({"label": "first", "vector": _b64(FACES[0])})
        + "\n\n"
        + json.dumps({"person_id": "P2", "vector": [float(v) for v in FACES[1]]})
        + "\n"
        + json.dumps({"vector": _b64(FACES[2])})
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "rows.b64").write_text("\n".join(_b64(f) for f in FACES) + "\n", encoding="utf-8")
    for name in ("many.npy", "rows.csv", "rows.jsonl", "rows.b64"):
        read = read_templates(tmp_path / name)
        assert read.vectors.shape == (3, 128)
        np.testing.assert_array_equal(read.vectors, FACES.astype(np.float64))
    assert read_templates(tmp_path / "rows.csv").labels == ["CRIB0", "CRIB1", "CRIB2"]
    assert read_templates(tmp_path / "rows.jsonl").labels == ["first", "P2", "line 4"]
    assert read_templates(tmp_path / "many.npy").labels == ["many#1", "many#2", "many#3"]
    one = read_templates(tmp_path / "one.npy")
    assert len(one) == 1 and np.allclose(one.vectors[0], FACES[0])


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("short.b64", base64.b64encode(bytes(100)).decode(), "short.b64:1: the vector has 100"),
        ("bad.b64", "not base64!\n", "bad.b64:1: the vector is not valid base64"),
        ("nan.jsonl", json.dumps({"vector": [float("nan")] * 128}), "NaN"),
        ("novec.csv", "record_id,person_id\nX,Y\n", "no 'vector' column"),
        ("zero.b64", _b64(np.zeros(128)) + "\n", "all zeros"),
        ("empty.b64", "\n\n", "no template"),
        ("list.jsonl", json.dumps({"vector": [1.0, 2.0]}), "2 values, not 128"),
    ],
)
def test_bad_templates_are_refused_with_file_and_line(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="template") as refused:
        read_templates(tmp_path / name)
    assert problem in str(refused.value)


def test_a_numpy_array_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "wide.npy", np.ones((2, 64)))
    with pytest.raises(InvalidArgumentError, match=r"shape \(2, 64\)"):
        read_templates(tmp_path / "wide.npy")
    with pytest.raises(InvalidArgumentError, match="is not a file"):
        read_templates(tmp_path / "missing.npy")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bigint.jsonl", json.dumps({"vector": [10**400] + [1] * 127}), "bigint.jsonl:1: a value "
         "is too large"),
        ("huge.jsonl", json.dumps({"vector": [1e300] * 128}), "huge.jsonl:line 1: the values are "
         "too large"),
        ("digits.jsonl", '{"vector": [' + "9" * 5000 + "]}", "digits.jsonl:1: not usable JSON"),
        ("long.csv", f"vector,label\n{_b64(FACES[0])},{'x' * 2_000_000}\n", "long.csv:2: not "
         "readable as CSV"),
    ],
)  # fmt: skip
def test_values_and_fields_beyond_the_parsers_limits_are_named_not_crashes(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(InvalidArgumentError) as refused:
        read_templates(tmp_path / name)
    assert problem in str(refused.value)


def test_broken_npy_files_and_overflowing_norms_are_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "trunc.npy").write_bytes(np.lib.format.magic(1, 0) + b"\x10\x00{'descr': '<f4', ")
    np.save(tmp_path / "big.npy", np.full((1, 128), 1e200))
    for name in ("empty.npy", "trunc.npy"):
        with pytest.raises(InvalidArgumentError, match=f"{name}:-: not a numpy .npy array"):
            read_templates(tmp_path / name)
    with pytest.raises(InvalidArgumentError, match=r"big.npy:big#1: the values are too large"):
        read_templates(tmp_path / "big.npy")

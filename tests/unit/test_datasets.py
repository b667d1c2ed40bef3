"""The dataset specs: internal consistency, row validation, and the generated data dictionary."""

from __future__ import annotations

import base64
import importlib.util
import struct
from pathlib import Path
from types import ModuleType

import pytest

from node.errors import InvalidArgumentError
from node.records.codelists import CODELIST_NAMES, codelist
from node.records.datasets import (
    DATASETS,
    TEMPLATE_DIMENSION,
    DatasetSpec,
    check_header,
    check_row,
    validate_row,
)

ROOT = Path(__file__).resolve().parents[2]


def _vector(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def example_row(spec: DatasetSpec) -> dict[str, str]:
    row = {f.name: f.example for f in spec.fields}
    if "vector" in row:
        row["vector"] = _vector([0.5] * TEMPLATE_DIMENSION)
    return row


def encounter(**changes: str) -> dict[str, str]:
    return {**example_row(DATASETS["encounters"]), **changes}


def test_the_seven_datasets_and_their_keys() -> None:
    assert set(DATASETS) == {
        "encounters", "travel_documents", "document_alerts", "persons_of_interest",
        "biometric_templates", "matrices", "consular_directory",
    }  # fmt: skip
    for spec in DATASETS.values():
        assert spec.filename == f"{spec.name}.csv"
        assert set(spec.key_fields) <= set(spec.columns)
        if spec.name != "matrices":  # in a matrix an empty dimension is the total: still a key
            assert all(spec.field(k).required for k in spec.key_fields)


def test_code_fields_name_real_lists_or_closed_choices() -> None:
    for spec in DATASETS.values():
        for field in spec.fields:
            if field.codelist is not None:
                assert field.codelist in CODELIST_NAMES
                assert field.type in ("code", "codes")
            if field.type in ("code", "codes"):
                assert field.codelist or field.choices, f"{spec.name}.{field.name}"
            assert field.description_es and field.description_en, f"{spec.name}.{field.name}"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_documented_example_is_valid(name: str) -> None:
    assert validate_row(DATASETS[name], example_row(DATASETS[name])) == []


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("event_type", "apprehended", "is not a code of event_type"),
        ("event_date", "2023-02-30", "is not a date"),
        ("event_date", "20230214", "is not a date"),
        ("birth_date", "1990-13", "month 13 does not exist"),
        ("nationality", "Haiti", "is not a code of nationality"),
        ("care_provided", "food;food", "repeated"),
        ("care_provided", "none;food", "'none' cannot be combined"),
        ("vulnerabilities", "pregnant;tired", "'tired' is not a code"),
        ("document_number", "AB12$456", "only letters A-Z and digits"),
        ("document_country", "ZZZ", "neither ISO 3166-1 nor ICAO"),
        ("surname", "1234", "has no letters"),
        ("record_id", "with space", "does not have the expected form"),
        ("border_post", "X" * 33, "at most 32"),
    ],
)
def test_bad_values_are_reported_with_their_column(column: str, value: str, expected: str) -> None:
    problems = validate_row(DATASETS["encounters"], encounter(**{column: value}))
    assert len(problems) == 1
    assert problems[0].startswith(f"{column}: ")
    assert expected in problems[0]


def test_loose_but_normalisable_values_are_accepted() -> None:
    row = encounter(document_number="ab 123-4567<", document_country="HT", birth_date="1990-00-00",
                    surname="Nguyễn", given_names="Анна")  # fmt: skip
    assert validate_row(DATASETS["encounters"], row) == []


def test_required_missing_and_unknown_columns() -> None:
    row = encounter(event_date="")
    del row["sex"]
    row["colour"] = "blue"
    problems = validate_row(DATASETS["encounters"], row)
    assert sorted(problems) == [
        "colour: unknown column", "event_date: required but empty", "sex: column missing",
    ]  # fmt: skip
    assert validate_row(DATASETS["encounters"], encounter(document_number="")) == []


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        ("not base64!", "not valid base64"),
        (_vector([0.1] * 127), "508 bytes; expected 512"),
        (_vector([float("nan")] + [0.0] * 127), "NaN"),
    ],
)
def test_template_vectors(vector: str, expected: str) -> None:
    row = {**example_row(DATASETS["biometric_templates"]), "vector": vector}
    problems = validate_row(DATASETS["biometric_templates"], row)
    assert len(problems) == 1 and expected in problems[0]


def test_matrix_periods_and_values() -> None:
    spec = DATASETS["matrices"]
    for period in ("2023", "2023Q4", "2023-07"):
        assert validate_row(spec, {**example_row(spec), "period": period}) == []
    for period in ("2023Q5", "2023-13", "23Q1"):
        assert validate_row(spec, {**example_row(spec), "period": period})
    assert "below 0" in validate_row(spec, {**example_row(spec), "value": "-1"})[0]
    assert "whole number" in validate_row(spec, {**example_row(spec), "value": "1.5"})[0]


def test_consular_procedures_are_a_closed_list() -> None:
    spec = DATASETS["consular_directory"]
    assert validate_row(spec, {**example_row(spec), "procedures": "visa;civil_registry"}) == []
    assert validate_row(spec, {**example_row(spec), "procedures": "weddings"})
    assert validate_row(spec, {**example_row(spec), "host_country": "FRA"})  # not a member


def test_check_row_raises_naming_dataset_and_column() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_row(DATASETS["encounters"], encounter(sex="W"))
    assert info.value.field == "encounters.sex"
    assert "data-dictionary" in info.value.hint
    check_row(DATASETS["encounters"], encounter())


def test_check_header() -> None:
    spec = DATASETS["document_alerts"]
    check_header(spec, list(reversed(spec.columns)))
    with pytest.raises(InvalidArgumentError, match="missing"):
        check_header(spec, spec.columns[:-1])
    with pytest.raises(InvalidArgumentError):
        check_header(spec, [*spec.columns, "record_id"])


def test_sex_codes_follow_the_regional_list() -> None:
    sex = DATASETS["encounters"].field("sex")
    assert sex.codelist == "sex"
    for code in codelist("sex"):
        assert validate_row(DATASETS["encounters"], encounter(sex=code)) == []


def _script() -> ModuleType:
    path = ROOT / "scripts" / "gen_data_dictionary.py"
    spec = importlib.util.spec_from_file_location("gen_data_dictionary", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_data_dictionary_matches_the_specs() -> None:
    rendered = _script().render()
    committed = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert committed == rendered, "run: python scripts/gen_data_dictionary.py"
    for spec in DATASETS.values():
        for column in spec.columns:
            assert f"| `{column}` |" in committed

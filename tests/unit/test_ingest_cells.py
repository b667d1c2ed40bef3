"""The compiled cell rules of an import agree with the reference, and their whole-column
shortcut never accepts what the per-cell rule refuses.

Why: a pattern-checked cell (``record_id``, a matrix ``period``) is part of a natural key. A
value that slips past its pattern with a line feed ("PANE1\\nPANE2", "2023Q3\\n") is stored as a
second record of what the file meant as one, and duplicate detection cannot see it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.ingest.cells import CellError, ColumnRule, compile_field
from node.records.datasets import DATASETS, Field, validate_row

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIELDS = {(spec.name, f.name): f for spec in DATASETS.values() for f in spec.fields}
#: Fields whose column may take the whole-column shortcut.
FAST = sorted(k for k, f in FIELDS.items() if compile_field(f, None, NOW, lambda d: d).fast)
TRICKY = ["\n", "\r", "\t", " ", "=", "+", "-", "@", "\u00a0", "\u2028", "١", "３", "é", "ß"]


def rule(dataset: str, name: str) -> ColumnRule:
    return compile_field(FIELDS[(dataset, name)], None, NOW, lambda day: day)


def per_cell(rule: ColumnRule, value: str) -> tuple[Any, ...] | None:
    try:
        return rule.convert(value)
    except CellError:
        return None


def reference_accepts(dataset: str, field: Field, value: str) -> bool:
    """What :func:`validate_row` says of ``value`` in an otherwise valid row."""
    spec = DATASETS[dataset]
    row = {f.name: f.example for f in spec.fields}
    row[field.name] = value
    return not any(p.startswith(f"{field.name}: ") for p in validate_row(spec, row))


def test_some_columns_take_the_shortcut() -> None:
    assert ("encounters", "record_id") in FAST and ("matrices", "matrix_id") in FAST


@pytest.mark.parametrize(
    "dataset, name, value",
    [
        ("encounters", "record_id", "PANE1\nPANE2"),
        ("encounters", "record_id", "PANE000000000\n"),
        ("encounters", "record_id", "\nPANE000000000"),
        ("encounters", "person_id", "PANP1\n"),
        ("matrices", "matrix_id", "eventos\n"),
        ("matrices", "period", "2023Q3\n"),
        ("matrices", "period", "2023\n"),
        ("consular_directory", "phone", "+507 263 9001\n"),
        ("consular_directory", "email", "consular@mea.example\n"),
    ],
)
def test_a_line_feed_does_not_pass_a_pattern(dataset: str, name: str, value: str) -> None:
    compiled = rule(dataset, name)
    assert per_cell(compiled, value) is None
    assert not reference_accepts(dataset, FIELDS[(dataset, name)], value)
    if compiled.fast is not None:
        assert compiled.fast([value]) is None
        assert compiled.fast(["PANE1", value, "PANE2"]) is None


@pytest.mark.parametrize(
    "dataset, name, value",
    [
        ("matrices", "period", "٢٠٢٣Q3"),  # Arabic-Indic digits
        ("matrices", "period", "２０２３-０９"),  # full-width digits
        ("matrices", "value", "١٣٧"),
        ("matrices", "value", "１２３"),
        ("encounters", "event_date", "٢٠٢٣-٠٩-١٤"),
        ("encounters", "birth_date", "١٩٩٤-٠٧"),
        ("encounters", "birth_date", "１９９４"),
        ("consular_directory", "phone", "+٥٠٧ ٢٦٣ ٩٠٠١"),
    ],
)
def test_digits_of_other_scripts_are_refused(dataset: str, name: str, value: str) -> None:
    """Only 0-9 are digits: a period, phone or number in other digits would be stored as text
    that never equals the same value written in 0-9 (docs/ingest.md)."""
    assert per_cell(rule(dataset, name), value) is None
    assert not reference_accepts(dataset, FIELDS[(dataset, name)], value)


def test_a_number_in_other_digits_is_no_exception_to_the_formula_rule() -> None:
    address = rule("consular_directory", "address")
    assert per_cell(address, "-12") == ("-12",)
    assert per_cell(address, "-١٢") is None


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(FAST),
    column=st.lists(
        st.one_of(
            st.sampled_from(["PANE000000001", "2023Q3", "eventos_1", "AB123", "", "x" * 41]),
            st.text(alphabet=st.sampled_from([*TRICKY, "A", "z", "0", "_", ".", ":"]), max_size=6),
            st.builds(
                lambda a, b, c: a + b + c,
                st.sampled_from(["", "PANE1", "eventos"]),
                st.sampled_from(TRICKY),
                st.sampled_from(["", "PANE2", "x"]),
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_the_column_shortcut_never_accepts_what_a_cell_refuses(
    key: tuple[str, str], column: list[str]
) -> None:
    compiled = rule(*key)
    assert compiled.fast is not None
    fast = compiled.fast(column)
    if fast is None:
        return  # the per-cell path decides, cell by cell
    cells = [per_cell(compiled, value) for value in column]
    assert None not in cells, f"shortcut accepted {column!r}, a cell rule refuses it"
    by_column = [list(values) for values in zip(*cells, strict=True)]  # type: ignore[misc]
    assert fast == by_column
    field = FIELDS[key]
    assert all(reference_accepts(key[0], field, value) for value in column)

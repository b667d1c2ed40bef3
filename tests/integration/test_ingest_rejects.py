"""The rejects file of ``--skip-invalid`` runs nothing when opened in a spreadsheet.

Why: the rejects file is how an operator recovers refused rows, and it is opened in a
spreadsheet; every cell, ``_source`` (a file name chosen by the file's sender) included, is
inert there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.ingest.pipeline import IngestReport, ingest
from node.records.datasets import ENCOUNTERS
from node.store import Store, open_store

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
COLUMNS = list(ENCOUNTERS.columns)


def encounter(i: int, **changes: str) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        record_id=f"PANE{i:09d}", person_id=f"PANP{i:08d}", event_type="encounter",
        event_date="2023-09-14", nationality="HTI", nationality_basis="declared", sex="F",
        birth_date="1994-07", age_group="Y25T34", care_provided="food;health",
        surname="Jean-Baptiste", given_names="Marie",
    )  # fmt: skip
    row.update(changes)
    return row


def csv_lines(order: list[str], rows: list[dict[str, str]]) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(order)
    writer.writerows([r[c] for c in order] for r in rows)
    return buffer.getvalue().splitlines()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


def skipping(
    store: Store, path: Path | str, rejects: Path
) -> tuple[IngestReport, list[dict[str, str]]]:
    """Import with --skip-invalid; the report and the rejects file's rows."""
    report = ingest(store, "encounters", [path], now=NOW, skip_invalid=True, rejects_path=rejects)
    with rejects.open(encoding="utf-8", newline="") as handle:
        return report, list(csv.DictReader(handle))


def test_the_source_cell_is_neutralised_like_the_others(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = '=HYPERLINK("example.invalid")+0.csv'  # a name chosen by a file's sender
    lines = csv_lines(COLUMNS, [encounter(0), encounter(1, sex="Q")])
    Path(name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, [row] = skipping(store, name, tmp_path / "rejects.csv")
    assert row["_source"] == f"'{name}:3"

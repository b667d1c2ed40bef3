"""Tables at 80 columns: no word is broken in the middle, and identifiers stay whole.

Why: rich narrows the widest columns first, down to a few characters, so on an 80-column
terminal a table with a 32-digit id printed "approv|ed" and dates cut in two. Each table is
rendered here with realistic content through the CLI's console, and every fragment of text
in a cell that is not an id must be a whole word of what was put in the table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from rich.table import Table

from node.biometrics.client import BiometricReport, ProbeOutcome
from node.cli import audit_cmd, biometric_cmd, common, followup_cmd, policy_view, screen_cmd, st_cmd
from node.cli.followups_view import followups_table
from node.store.followup_store import FollowUpRecord
from policies.signatures import load_signed_agreement

FOLLOWUP_IDS = ("3f2b9c4e8a1d4f6b9e0c7a5d2b1e8f40", "a1b2c3d4e5f60718293a4b5c6d7e8f90")
REFERENCE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
PULL_IDS = ("P20270402T060000-a1b2c3", "P20270402T070000-0f9e8d")


@pytest.fixture
def render(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Print a table on the CLI's console at ``width`` columns and return what was printed."""

    def printed(table: Table, width: int = 80) -> str:
        monkeypatch.setattr(common.console, "_width", width)
        common.console.print(table)
        return capsys.readouterr().out

    return printed


def _words(table: Table) -> set[str]:
    """Every word put in the table: its headers and its cells."""
    texts = [c.header for c in table.columns] + [cell for c in table.columns for cell in c._cells]
    return {w for t in texts for w in common._plain(t).split()}


def broken_words(out: str, table: Table, ids: tuple[str, ...] = ()) -> list[str]:
    """The fragments of text, in the columns not headed by one of ``ids``, that are not whole
    words of the table (a word folded over two lines leaves two such fragments)."""
    words = _words(table)
    lines = [line for line in out.splitlines() if line[:1] in "│┃"]
    skip: set[int] = set()
    for line in lines:
        if line.startswith("┃"):
            cells = line.split("┃")[1:-1]
            skip |= {i for i, cell in enumerate(cells) if cell.strip() in ids}
    bad = []
    for line in lines:
        cells = line.replace("┃", "│").split("│")[1:-1]
        bad += [
            w for i, c in enumerate(cells) if i not in skip for w in c.split() if w not in words
        ]
    return bad


def _followup(n: int, status: str, case: str, dataset: str, purpose: str) -> FollowUpRecord:
    return FollowUpRecord(
        FOLLOWUP_IDS[n], "inbound", ("PAN", "GTM")[n], dataset, 3, "0" * 64, case, purpose,
        "PAN-CRI-2027-01", (("surname", "given_names"), ("alert_type",))[n], (), status,
        dt.datetime(2027, 3, 14 + n, 9, 30, tzinfo=dt.UTC),
    )  # fmt: skip


def test_followup_list_keeps_id_status_and_date_whole(render: Any) -> None:
    records = [
        _followup(0, "approved", "CRI-2027-000123", "identities", "identity_verification"),
        _followup(1, "pending", "DGM-GT-2027/0456", "document_alerts", "document_fraud"),
    ]
    table = followup_cmd.followups_table(records, "Follow-ups received")
    out = render(table)
    assert broken_words(out, table, ("id",)) == []
    assert all(i in out.split() for i in FOLLOWUP_IDS)
    assert "2027-03-14 09:30" in out and "approved" in out.split()
    assert "not shown at 80 columns: dataset, case, purpose, attributes" in " ".join(out.split())
    wide = render(table, 200)  # a wide terminal shows every column
    assert "not shown" not in wide and "CRI-2027-000123" in wide


def _report() -> BiometricReport:
    return BiometricReport(
        ["probe-0001"],
        [
            ProbeOutcome(
                0, "PAN", "strong", reference=REFERENCE, agreement="PAN-CRI-2027-01", epoch=3
            ),
            ProbeOutcome(0, "GTM", "no hit", agreement="GTM-CRI-2027-04", epoch=3),
            ProbeOutcome(
                0,
                "HND",
                "error",
                code="UNAVAILABLE",
                detail="HND did not answer within 3.0 s (connection refused)",
            ),
        ],
        0.5,
    )


def test_biometric_search_results_and_follow_ups_break_no_word(render: Any) -> None:
    table = biometric_cmd._table(_report(), "biometric probe probe-0001 (identity_verification)")
    out = render(table)
    assert broken_words(out, table, ("hit reference",)) == []
    assert REFERENCE in out.split() and "probe: probe-0001" in out.splitlines()

    case = "CRI-2027-000123"
    entries = [
        {"label": "probe-0001", "peer": "PAN", "dataset": "biometric_templates",
         "case_reference": case, "status": "released", "followup_id": FOLLOWUP_IDS[0],
         "released": {"first_seen_quarter": "2026-Q3", "event_type": "irregular_entry"}},
        {"label": "probe-0001", "peer": "GTM", "dataset": "biometric_templates",
         "case_reference": case, "status": "failed", "reason": "GTM refused: the daily follow-up "
         "quota of agreement GTM-CRI-2027-04 is spent (RESOURCE_EXHAUSTED)"},
        {"label": "probe-0001", "peer": "HND", "dataset": "biometric_templates",
         "case_reference": case, "status": "not asked", "reason": "our agreement with HND grants "
         "no follow-up attribute of biometric_templates for identity_verification"},
    ]  # fmt: skip
    table = followups_table(entries, case, hit=("label", "probe"))
    out = render(table)
    assert broken_words(out, table, ("follow-up id",)) == []
    assert FOLLOWUP_IDS[0] in out.split()
    assert {"probe: probe-0001", "dataset: biometric_templates"} <= set(out.splitlines())


def test_st_status_tables_break_no_date_and_no_word(render: Any) -> None:
    members = [
        {"country": "PAN", "state": "current", "as_of": "2027-03-31T00:00:00+00:00",
         "deadline": "2027-04-15T23:59:59+00:00", "days_late": None,
         "last_answer": "2027-04-02T06:00:12+00:00"},
        {"country": "HND", "state": "late", "as_of": "2026-12-31T00:00:00+00:00",
         "deadline": "2027-04-15T23:59:59+00:00", "days_late": 12, "last_answer": None},
    ]  # fmt: skip
    table = st_cmd.members_table({"period": "2027-Q1", "members": members})
    out = render(table)
    assert broken_words(out, table) == []

    pulls = [
        {"pull_id": PULL_IDS[0], "created_at": "2027-04-02T06:00:00+00:00",
         "trigger": "scheduled", "period": "2027-Q1", "status": "partial",
         "missing": ["GTM", "HND", "NIC"]},
        {"pull_id": PULL_IDS[1], "created_at": "2027-04-02T07:00:00+00:00", "trigger": "retry",
         "period": "2027-Q1", "status": "complete", "missing": []},
    ]  # fmt: skip
    table = st_cmd.pulls_table(pulls)
    out = render(table)
    assert broken_words(out, table, ("pull",)) == []
    assert all(i in out.split() for i in PULL_IDS) and "PARTIAL" in out.split()


def test_policy_show_lists_the_quotas_below_rather_than_break_words(render: Any) -> None:
    example = Path(__file__).parents[2] / "docs" / "examples" / "agreement-pan-cri.yaml"
    agreement = load_signed_agreement(example.read_text(encoding="utf-8")).agreement
    table = policy_view.grants_table(policy_view.grant_rows(agreement))
    out = render(table)
    assert broken_words(out, table) == []
    assert "identity_verification" in out.split() and "consular_directory" in out.split()
    assert "  #2: 10000/day, 300000/quarter" in out.splitlines()
    assert "  #5: 2000/day, unlimited/quarter" in out.splitlines()


def test_audit_and_manifest_lists_break_no_word(render: Any) -> None:
    rows = [
        {"seq": 10234, "at": "2027-03-14T09:30:12.123456+00:00", "direction": "inbound",
         "peer": "CRI", "method": "/enlace.v1.MatchService/EvaluateBatch", "status": "OK",
         "agreement": "PAN-CRI-2026-01"},
        {"seq": 10235, "at": "2027-03-14T09:31:40+00:00", "direction": "outbound",
         "peer": "GTM", "method": "/enlace.v1.MatchService/FollowUp",
         "status": "RESOURCE_EXHAUSTED", "agreement": "GTM-PAN-2027-02"},
    ]  # fmt: skip
    table = audit_cmd.audit_table(rows)
    out = render(table)
    assert broken_words(out, table, ("agreement",)) == []
    assert "RESOURCE_EXHAUSTED" in out.split() and "GTM-PAN-2027-02" in out.split()

    manifests = [
        {"manifest_id": "M20270314093012-1a2b3c4d", "format": "paxlst", "reference": "CM0123",
         "travellers": 187, "hits": 2, "status": "screened",
         "expires_at": "2027-03-21T09:30:12+00:00"},
        {"manifest_id": "M20270314101500-9f8e7d6c", "format": "csv", "reference": "BUS-0042",
         "travellers": 41, "hits": 0, "status": "expired",
         "expires_at": "2027-03-21T10:15:00+00:00"},
    ]  # fmt: skip
    table = screen_cmd.stored_table(manifests)
    out = render(table)
    assert broken_words(out, table, ("manifest_id",)) == []
    assert "M20270314093012-1a2b3c4d" in out.split() and "2027-03-21" in out.split()


def test_a_fitted_table_that_fits_is_laid_out_as_rich_does(render: Any) -> None:
    table = common.FittedTable(title="t")
    common.text_column(table, "country")
    common.text_column(table, "note", drop=1)
    table.add_row("PAN", "a note")
    plain = Table(title="t")
    common.text_column(plain, "country")
    common.text_column(plain, "note")
    plain.add_row("PAN", "a note")
    assert render(table) == render(plain)


def test_the_import_history_breaks_no_word(render: Any) -> None:
    from node.cli.ingest_cmd import imports_table
    from node.store.records_store import ImportRecord

    def run(n: int, dataset: str, name: str, added: int, status: str) -> ImportRecord:
        moment = dt.datetime(2026, 11, 29, 16, 20 + n, 5, tzinfo=dt.UTC)
        return ImportRecord(
            f"I{n}", dataset, name, "ab" * 32, 1_000_000, "csv", added + 12, added, 12_345, 0,
            0 if n else 3, moment, moment, status, None, "2026-11", "1",
        )  # fmt: skip

    history = [
        run(0, "encounters", "encuentros-2026-10.csv", 1_000_000, "committed"),
        run(1, "travel_documents", "documentos_viaje.xlsx", 48_211, "committed"),
    ]
    table = imports_table(history)
    out = render(table)
    assert broken_words(out, table) == []
    assert "2026-11-29" in out.split() and "travel_documents" in out.split()
    assert "1,000,000" in out.split()

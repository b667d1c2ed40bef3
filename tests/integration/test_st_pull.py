"""The Secretariat pulls over real gRPC: partial results, retries, deadlines, outputs."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from st_support import (
    QUARTER,
    office,
    serving_members,
)

from node.secretariat import consular
from node.secretariat.outputs import regional_matrix, write_regional

LiveFederation = Any  # tests/integration/conftest.py

MEMBERS = ("PAN", "CRI", "HND")


@pytest.fixture
def st_live(live_federation_factory: Callable[..., LiveFederation]) -> LiveFederation:
    return serving_members(live_federation_factory(MEMBERS), MEMBERS)


def test_pull_from_every_member_then_regional_totals(st_live: LiveFederation) -> None:
    st = office(st_live.runtimes["CRM"])
    report = st.collect(QUARTER, matrices=["M01", "M03"])
    assert report.status == "complete" and report.pull is not None
    assert {c: o.status for c, o in report.pull.members.items()} == dict.fromkeys(
        MEMBERS, "complete"
    )
    rows = st_live.runtimes["CRM"].store.secretariat.results(period=QUARTER)
    assert {(r.member, r.table_id, r.status) for r in rows} == {
        (m, t, "complete") for m in MEMBERS for t in ("M01", "M03")
    }
    assert all(r.agreement_id == f"{r.member}-CRM-STATS" for r in rows)
    result = regional_matrix(st, "M03", QUARTER)
    assert result.table.contributors == MEMBERS[::-1] or set(result.table.contributors) == set(
        MEMBERS
    )
    grand = result.table.cell(("_T", "_T"))
    members_total = sum(
        next(c[1] for c in r.cells if c[0] == ["_T", "_T"])  # type: ignore[union-attr]
        for r in rows
        if r.table_id == "M03"
    )
    assert grand is not None and grand.value == members_total and grand.n_contrib == 3


def test_member_down_gives_a_partial_result_and_a_retry_completes_it(
    st_live: LiveFederation,
) -> None:
    st = office(st_live.runtimes["CRM"])
    st_live.servers.pop("HND").stop(grace=0)
    report = st.collect(QUARTER, matrices=["M01", "M02"])
    pull = report.pull
    assert pull is not None and report.status == "partial" and pull.missing == ["HND"]
    assert pull.members["HND"].status == "missing"
    assert "UNAVAILABLE" in pull.members["HND"].failed["M01"]
    assert pull.members["HND"].failed["M02"].startswith("not tried")  # down: not asked twice
    assert pull.members["PAN"].status == "complete"
    stored = st_live.runtimes["CRM"].store.secretariat
    assert stored.pull(pull.pull_id).status == "partial"  # type: ignore[union-attr]
    partial = regional_matrix(st, "M01", QUARTER)
    assert partial.table.status == "partial" and partial.table.missing == ("HND",)
    assert any("PARTIAL" in note for note in partial.notes)

    st_live.serve("HND")
    (retried,) = st.retry()
    assert retried.pull_id == pull.pull_id and retried.status == "complete"
    assert stored.pull(pull.pull_id).status == "complete"  # type: ignore[union-attr]
    assert regional_matrix(st, "M01", QUARTER).table.status == "complete"


def test_a_failed_attempt_never_erases_data_received_earlier(st_live: LiveFederation) -> None:
    st = office(st_live.runtimes["CRM"])
    st.collect(QUARTER, matrices=["M01"])
    st_live.servers.pop("CRI").stop(grace=0)
    again = st.collect(QUARTER, matrices=["M01"])
    assert again.status == "partial"
    (row,) = st_live.runtimes["CRM"].store.secretariat.results(member="CRI", table_id="M01")
    assert row.status == "complete" and row.cells
    assert row.attempts >= 2 and "UNAVAILABLE" in row.last_error
    # the regional table still counts CRI's earlier answer
    assert "CRI" in regional_matrix(st, "M01", QUARTER).table.contributors


def test_a_refusal_is_final_and_not_retried(st_live: LiveFederation) -> None:
    st = office(st_live.runtimes["CRM"], attempts=3)
    report = st.collect(QUARTER, matrices=["M01"], purpose="marketing")
    assert report.pull is not None
    for outcome in report.pull.members.values():
        assert outcome.status == "missing" and outcome.attempts == 1
        assert outcome.failed["M01"].startswith("PERMISSION_DENIED")


@contextmanager
def black_hole(endpoint: str) -> Iterator[None]:
    """A port that accepts connections and never answers (a hung node)."""
    host, port = endpoint.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, int(port)))
        sock.listen(16)
        yield


def test_a_late_node_hits_its_deadline_without_holding_up_the_others(
    st_live: LiveFederation,
) -> None:
    st_live.servers.pop("HND").stop(grace=0)
    st = office(
        st_live.runtimes["CRM"], node_deadline_seconds=5.0, call_timeout_seconds=4.5, attempts=3
    )
    with black_hole(st_live.federation.endpoint("HND")):
        report = st.collect(QUARTER, matrices=["M01"])
    assert report.pull is not None
    hnd = report.pull.members["HND"]
    assert hnd.status == "missing"
    assert "DEADLINE_EXCEEDED" in hnd.failed["M01"]
    assert hnd.seconds < 9  # bounded by the node deadline (plus one call timeout)
    assert report.pull.members["PAN"].status == "complete"


def test_regional_outputs_say_what_they_count(
    st_live: LiveFederation, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    st = office(st_live.runtimes["CRM"])
    st.collect(QUARTER, matrices=["M01", "M02"])
    # A matrix that cannot be exported leaves no file of the set: not M01's beside nothing.
    from node.errors import InvalidArgumentError
    from node.secretariat import outputs

    real = outputs.export_answer_rows

    def refuse_m02(answer, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("matrix") == "M02":
            raise InvalidArgumentError("'_Q' is not a quarter code", field="TIME_PERIOD")
        return real(answer, **kwargs)

    monkeypatch.setattr(outputs, "export_answer_rows", refuse_m02)
    with pytest.raises(InvalidArgumentError):
        write_regional(st, QUARTER, matrices=["M01", "M02"], out_dir=tmp_path)
    assert not (tmp_path / QUARTER).exists()
    monkeypatch.setattr(outputs, "export_answer_rows", real)
    paths = write_regional(st, QUARTER, matrices=["M01", "M02"], out_dir=tmp_path)
    names = sorted(p.name for p in paths)
    assert names == [
        "LEEME-README.txt",
        "regional-2024Q2.json",
        "regional-M01-2024Q2.csv",
        "regional-M01-2024Q2.sdmx.csv",
        "regional-M01-2024Q2.xlsx",
        "regional-M02-2024Q2.csv",
        "regional-M02-2024Q2.sdmx.csv",
        "regional-M02-2024Q2.xlsx",
    ]
    human = list(
        csv.DictReader(io.StringIO((tmp_path / QUARTER / names[2]).read_text("utf-8-sig")))
    )
    assert human and all(r["n_contrib"].isdigit() for r in human)
    assert all(r["value"] == "" for r in human if r["obs_status"] == "Q")  # withheld, not 0
    for table, name in (("M01", names[3]), ("M02", names[6])):  # one matrix a file: unique keys
        sdmx = list(csv.DictReader(io.StringIO((tmp_path / QUARTER / name).read_text())))
        assert {r["REF_AREA"] for r in sdmx} == {"CRM"} and {r["TABLE_ID"] for r in sdmx} == {table}
        assert all(r["N_CONTRIB"].isdigit() for r in sdmx)
        keys = [tuple(v for k, v in r.items() if k not in _ATTRIBUTES) for r in sdmx]
        assert len(keys) == len(set(keys)), table
    status = json.loads((tmp_path / QUARTER / names[1]).read_text())
    assert "transits, not unique persons" in status["note_en"]
    assert "tránsitos" in (tmp_path / QUARTER / names[0]).read_text()


#: SDMX-CSV columns that are not part of an observation's key.
_ATTRIBUTES = {"OBS_VALUE", "OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE", "TABLE_ID", "N_CONTRIB"}


def test_consular_directory_is_merged_from_every_member(st_live: LiveFederation) -> None:
    collection = consular.collect(st_live.runtimes["CRM"])
    assert set(collection.received) == set(MEMBERS) and not collection.missing
    assert len(collection.entries) <= sum(collection.received.values())
    hosts = {e.host_country for e in collection.entries}
    assert set(MEMBERS) <= hosts
    for entry in collection.entries:
        assert entry.reported_by and entry.procedures
        if entry.host_country in entry.reported_by:
            assert entry.host_country in MEMBERS


def test_a_regional_only_table_without_a_helper_fails_alone(st_live: LiveFederation) -> None:
    st = office(st_live.runtimes["CRM"], regional_only=("M05",))
    report = st.collect(QUARTER, matrices=["M01", "M05"])
    assert report.pull is not None and report.pull.status == "complete"
    assert [i["table"] for i in st_live.runtimes["CRM"].store.secretariat.pull(
        report.pull.pull_id).items] == ["M01"]  # type: ignore[union-attr]  # fmt: skip
    (round_,) = report.rounds
    assert round_.status == "failed" and "helper" in round_.detail
    assert report.status == "partial"


def test_the_brief_names_a_members_failure_by_its_code_and_only_while_it_stands(
    st_live: LiveFederation,
) -> None:
    """The brief is public and in its own language: a member that did not answer is shown by
    the status code of the failure, never the raw English error with the node's address; once
    a retry completed its pull, nothing is shown."""
    from node.secretariat.brief_collect import build_brief_data, collect_brief_tables

    st = office(st_live.runtimes["CRM"], regional_only=())  # no helper in this federation
    month = "2024-06"
    st_live.servers.pop("HND").stop(grace=0)
    collect_brief_tables(st, month)
    rows = {r.country: r for r in build_brief_data(st, month, "es").coverage}
    assert rows["HND"].notes == "sin respuesta: UNAVAILABLE"
    assert rows["PAN"].notes == ""
    english = {r.country: r for r in build_brief_data(st, month, "en").coverage}
    assert english["HND"].notes == "no answer: UNAVAILABLE"
    st_live.serve("HND")
    st.retry()
    rows = {r.country: r for r in build_brief_data(st, month, "es").coverage}
    assert rows["HND"].notes == "", rows["HND"]


def test_a_month_without_records_finds_every_member_complete(st_live: LiveFederation) -> None:
    """No leading nationality, so the brief's trend table is never asked: a member that sent
    every table that was asked is complete, not partial."""
    from node.secretariat.brief_collect import build_brief_data, collect_brief_tables

    st = office(st_live.runtimes["CRM"], regional_only=())
    collect_brief_tables(st, "2026-06")  # no record in the twelve months to it
    statuses = {m.country: m.status for m in build_brief_data(st, "2026-06", "es").members}
    assert statuses and set(statuses.values()) == {"complete"}, statuses

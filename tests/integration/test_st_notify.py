"""Freshness, reminders (signed notification + SMTP) and emergency updates over real gRPC."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from st_support import (
    QUARTER,
    load_member,
    office,
    prepare,
    publish_focal_points,
    serving_members,
)

from enlace.v1 import secretariat_pb2
from node.cli.status_cmd import node_status
from node.demo.federation import free_port
from node.errors import PeerError
from node.secretariat.emergency import COALESCE_WINDOW, EMERGENCY, send_emergency_update
from node.secretariat.freshness import period_end, quarter_of
from node.secretariat.notify import NOTIFY

MEMBERS = ("PAN", "CRI", "HND")
LiveFederation = Any  # tests/integration/conftest.py


class Sink:
    """An SMTP server's message handler that keeps what it received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def st_live(live_federation_factory: Callable[..., LiveFederation]) -> LiveFederation:
    return serving_members(live_federation_factory(MEMBERS, valid_days=200), MEMBERS)


def test_late_members_are_reminded_by_signed_notification_and_email(
    st_live: LiveFederation, smtp: tuple[Sink, int]
) -> None:
    sink, port = smtp
    crm = st_live.runtimes["CRM"]
    period = quarter_of(crm.clock.now().date())  # the current quarter: data not yet complete
    publish_focal_points(st_live, {"CRI": "puntofocal@cri.example", "HND": "pf@hnd.example"})
    st = office(crm, grace_days=5, smtp_host="127.0.0.1", smtp_port=port)
    assert st.collect(period, matrices=["M01"]).pull.members["PAN"].status == "partial"  # type: ignore[union-attr]
    assert {f.state for f in st.freshness(period)} == {"pending"}

    late_by = period_end(period) + dt.timedelta(days=6) - crm.clock.now()
    for clock in st_live.clocks.values():
        clock.advance(late_by)
    load_member(st_live.runtimes["PAN"])  # PAN delivers: its data now cover the period
    st.collect(period, matrices=["M01"], members=["PAN"])
    states = {f.country: f.state for f in st.freshness(period)}
    assert states == {"PAN": "current", "CRI": "late", "HND": "late"}

    sent = st.remind_late(period)
    assert sorted((r["member"], r["channel"], r["status"]) for r in sent) == [
        ("CRI", "email", "sent"),
        ("CRI", "node", "sent"),
        ("HND", "email", "sent"),
        ("HND", "node", "sent"),
    ]
    for member in ("CRI", "HND"):
        (note,) = node_status(st_live.runtimes[member])["notifications"]
        assert note["from"] == "CRM" and note["kind"] == "reminder" and note["period"] == period
        assert period in note["subject"]
        stored = st_live.runtimes[member].store.secretariat.notifications()[0]
        assert stored["signed_by"] == crm.signing_key.key_id
    assert node_status(st_live.runtimes["PAN"])["notifications"] == []
    assert sorted(tuple(m.rcpt_tos) for m in sink.messages) == [
        ("pf@hnd.example",),
        ("puntofocal@cri.example",),
    ]
    assert all(period.encode() in m.content for m in sink.messages)

    assert st.remind_late(period) == []  # reminded less than remind_every ago
    assert len(st.remind_late(period, channels=("node",), force=True)) == 2


def test_an_unreachable_mail_relay_does_not_stop_the_node_notification(
    st_live: LiveFederation,
) -> None:
    crm = st_live.runtimes["CRM"]
    publish_focal_points(st_live, {"CRI": "pf@cri.example"})
    st = office(crm, grace_days=0, smtp_host="127.0.0.1", smtp_port=free_port())
    period = "2024Q2"  # long over; nobody has been pulled, so everyone is late
    sent = st.remind_late(period, channels=("email", "node"))
    by = {(r["member"], r["channel"]): r["status"] for r in sent}
    assert by[("CRI", "email")] == "failed" and by[("CRI", "node")] == "sent"
    assert by[("HND", "email")] == "failed"  # no focal point listed: refused, recorded
    assert len(node_status(st_live.runtimes["CRI"])["notifications"]) == 1


def test_only_the_secretariat_may_notify_a_member(st_live: LiveFederation) -> None:
    with st_live.client("PAN", "CRI") as client, pytest.raises(PeerError) as refused:
        client.call(
            NOTIFY,
            secretariat_pb2.NotifyRequest(kind="notice", subject="hola", language="es"),
            secretariat_pb2.NotifyResponse,
        )
    assert refused.value.status_name == "PERMISSION_DENIED"
    assert "secretariat role" in refused.value.message


def test_emergency_update_triggers_an_immediate_pull(st_live: LiveFederation) -> None:
    st_live.serve("CRM")  # the ST's server runs its Secretariat
    pan = st_live.runtimes["PAN"]
    answer = send_emergency_update(pan, QUARTER, ["M01"], "corrected records imported")
    assert answer.pull_started and answer.emergency_id
    store = st_live.runtimes["CRM"].store.secretariat
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        (row,) = store.emergencies()
        if row["status"] not in ("received", "pulling"):
            break
        time.sleep(0.1)
    assert row["member"] == "PAN" and row["status"] == "complete" and row["pull_id"]
    pull = store.pull(row["pull_id"])
    assert pull is not None
    assert (pull.trigger, pull.purpose, pull.members) == ("emergency", "emergency_update", ["PAN"])
    (result,) = store.results(member="PAN", table_id="M01", period=QUARTER)
    assert result.status == "complete" and result.pull_id == row["pull_id"]
    # The analyst's `st status` shows it in its table form too, not only with --json.
    from typer.testing import CliRunner

    from node.cli.main import app

    home = str(st_live.federation.homes["CRM"].root)
    shown = CliRunner().invoke(app, ["st", "status", "--home", home], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert "Emergency updates:" in shown.output
    assert f"{row['emergency_id']} from PAN, {QUARTER}: complete" in shown.output


def test_emergency_updates_coalesce_while_one_waits_to_start(
    st_live: LiveFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.secretariat.office import Secretariat

    started: list[tuple[Any, ...]] = []  # the pulls the Secretariat was asked to start
    monkeypatch.setattr(Secretariat, "start_emergency", lambda self, *a: started.append(a))
    st_live.serve("CRM")
    pan, cri = st_live.runtimes["PAN"], st_live.runtimes["CRI"]
    answers = [send_emergency_update(pan, QUARTER, ["M01"], f"import {i}") for i in range(20)]
    first = answers[0]
    assert first.pull_started
    for later in answers[1:]:
        assert (later.pull_started, later.emergency_id) == (False, first.emergency_id)
        assert "already waiting to start" in later.detail
    assert [a[3] for a in started] == [first.emergency_id]
    store = st_live.runtimes["CRM"].store.secretariat
    assert [r["emergency_id"] for r in store.emergencies()] == [first.emergency_id]
    # Another member, or another period, has its own.
    assert send_emergency_update(cri, QUARTER, ["M01"]).pull_started
    # Once the pull has started it may have read the data: a new update queues its own pull.
    store.set_emergency(first.emergency_id, pull_id="", status="pulling")
    again = send_emergency_update(pan, QUARTER, ["M01"], "imported after the pull began")
    assert again.pull_started and again.emergency_id != first.emergency_id
    assert len(started) == 3
    # An update left waiting longer than the window lost its pull (a restart): not joined.
    for clock in st_live.clocks.values():
        clock.advance(COALESCE_WINDOW + dt.timedelta(seconds=1))
    later = send_emergency_update(pan, QUARTER, ["M01"], "the next morning")
    assert later.pull_started and later.emergency_id != again.emergency_id
    assert len(started) == 4


def test_emergency_updates_go_to_the_secretariat_only(st_live: LiveFederation) -> None:
    with st_live.client("PAN", "CRI") as client, pytest.raises(PeerError) as refused:
        client.call(
            EMERGENCY,
            secretariat_pb2.EmergencyUpdateRequest(period=QUARTER),
            secretariat_pb2.EmergencyUpdateResponse,
        )
    assert refused.value.status_name == "PERMISSION_DENIED"
    assert "not offered" in refused.value.message


def test_a_member_without_agreement_is_missing_not_an_error(
    live_federation_factory: Callable[..., LiveFederation],
) -> None:
    live = live_federation_factory(("PAN", "CRI", "HND"))
    prepare(live, ("PAN", "CRI"))
    load_member(live.runtimes["HND"])  # data, but no agreement with the ST
    for member in ("PAN", "CRI", "HND"):
        live.serve(member)
    report = office(live.runtimes["CRM"]).collect(QUARTER, matrices=["M01"])
    assert report.pull is not None and report.pull.missing == ["HND"]
    assert report.pull.members["HND"].failed["M01"].startswith("PERMISSION_DENIED")

"""``enlace st …`` and ``enlace status`` against a live federation (real gRPC, real homes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from st_support import QUARTER, prepare
from typer.testing import CliRunner

from node.cli.main import app

MEMBERS = ("PAN", "CRI", "HND")
LiveFederation = Any  # tests/integration/conftest.py


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


@pytest.fixture
def homes(live_federation_factory: Callable[..., LiveFederation]) -> tuple[Any, dict[str, str]]:
    live = live_federation_factory(MEMBERS)
    prepare(live, MEMBERS)
    for member in MEMBERS:
        live.serve(member)
    return live, {c: str(h.root) for c, h in live.federation.homes.items()}


def test_pull_partial_retry_status_and_report(
    homes: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    live, home = homes
    live.servers.pop("HND").stop(grace=0)
    pulled = run("st", "pull", "--home", home["CRM"], "--period", QUARTER, "--matrix", "M01",
                 "--json")  # fmt: skip
    assert pulled["status"] == "partial" and pulled["pull"]["missing"] == ["HND"]
    text = run("st", "status", "--home", home["CRM"], "--period", QUARTER)
    assert "PARTIAL" in text
    live.serve("HND")
    retried = run("st", "pull", "--home", home["CRM"], "--retry", "--json")
    assert [r["status"] for r in retried["retried"]] == ["complete"]
    status = run("st", "status", "--home", home["CRM"], "--period", QUARTER, "--json")
    assert {m["country"]: m["state"] for m in status["members"]} == dict.fromkeys(
        MEMBERS, "current"
    )
    assert status["pulls"][0]["status"] == "complete"
    report = run("st", "report", "--home", home["CRM"], "--period", QUARTER, "--matrix", "M01",
                 "--out", str(tmp_path), "--consular", "--json")  # fmt: skip
    assert {Path(p).name for p in report["files"]} >= {
        "regional-M01-2024Q2.csv",
        "regional-M01-2024Q2.xlsx",
        "regional-M01-2024Q2.sdmx.csv",
    }
    assert all(Path(p).exists() for p in report["files"] + report["consular"])
    # A period never pulled: refused with the command that pulls it, no empty tables written.
    never = CliRunner().invoke(app, ["st", "report", "--home", home["CRM"], "--period",
                                     "2019Q1", "--out", str(tmp_path)])  # fmt: skip
    assert never.exit_code == 1
    assert (
        "no pull of 2019Q1 is stored" in never.output and "st pull --period 2019Q1" in never.output
    )
    assert not (tmp_path / "2019Q1").exists()


def test_calendar_edit_and_notifications(homes: tuple[Any, dict[str, str]]) -> None:
    _live, home = homes
    rows = run("st", "calendar", "--home", home["CRM"], "--cron", "monthly-brief",
               "0 9 11 * *", "--pause", "consular-directory", "--json")  # fmt: skip
    by_id = {r["id"]: r for r in rows}
    assert by_id["monthly-brief"]["trigger"] == "cron 0 9 11 * *"
    assert by_id["consular-directory"]["paused"] is True
    listed = run("st", "calendar", "--home", home["CRM"])
    assert "monthly-brief" in listed and "paused" in listed
    run("st", "calendar", "--home", home["PAN"], code=1)  # not the secretariat

    subject = "Matrices regionales 2024Q2 publicadas"
    # A notice travels by node only: asking for e-mail is refused, not silently ignored.
    refused = CliRunner().invoke(app, ["st", "notify", "--home", home["CRM"], "--member", "PAN",
                                       "--channel", "email", "--subject", subject])  # fmt: skip
    assert refused.exit_code == 1
    assert "--channel: a notice to one member travels by node only" in refused.output
    sent = run("st", "notify", "--home", home["CRM"], "--member", "PAN", "--kind",
               "publication", "--subject", subject, "--json")  # fmt: skip
    assert sent[0]["status"] == "sent"
    pan = run("status", "--home", home["PAN"], "--json")
    (note,) = pan["notifications"]
    assert note["from"] == "CRM" and note["kind"] == "publication"
    assert pan["directory"]["state"] == "valid" and pan["data_as_of"]
    assert "Matrices regionales" in run("status", "--home", home["PAN"])
    after = run("status", "--home", home["PAN"], "--ack", note["id"], "--json")
    assert after["notifications"] == []
    run("status", "--home", home["PAN"], "--ack", note["id"], code=1)  # already acknowledged

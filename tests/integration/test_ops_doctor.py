"""``enlace doctor``'s checks against a live federation: each finding, and its fix."""

from __future__ import annotations

import datetime as dt

from node.clock import ManualClock
from node.ops.doctor import FAIL, OK, WARN, open_for_checks, run_checks, summary
from node.ops.rotation import rotate_signing_key
from node.store import database


def by_name(checks):  # type: ignore[no-untyped-def]
    return {c.name: c for c in checks}


def doctor_for(live, country: str, clock: ManualClock | None = None):  # type: ignore[no-untyped-def]
    runtime = open_for_checks(live.federation.homes[country], clock or live.clocks[country])
    try:
        return by_name(run_checks(runtime, timeout=2.0))
    finally:
        runtime.close()


def test_a_healthy_node_and_a_peer_that_is_down(live) -> None:  # type: ignore[no-untyped-def]
    checks = doctor_for(live, "CRI")  # PAN serves; HND and the ST do not
    for name in ("database", "migrations", "directory", "signing-key", "tls-certificate"):
        assert checks[name].status == OK, checks[name]
    assert checks["peer-credentials"].status == OK
    assert any(name.startswith("disk ") and c.status in (OK, WARN) for name, c in checks.items())
    assert checks["peer PAN"].status == OK and "reachable in" in checks["peer PAN"].detail
    assert checks["peer HND"].status == FAIL and "unreachable" in checks["peer HND"].detail
    assert "ask its operator" in checks["peer HND"].fix
    assert summary(list(checks.values()))["status"] == FAIL


def test_clock_skew_is_measured_and_refusal_named(live) -> None:  # type: ignore[no-untyped-def]
    now = live.clocks["PAN"].now()
    drifting = ManualClock(now + dt.timedelta(seconds=45))  # a quarter of the window: warn
    check = doctor_for(live, "CRI", drifting)["peer PAN"]
    assert check.status == WARN and "clock skew -45" in check.detail and "NTP" in check.fix
    far = ManualClock(now + dt.timedelta(seconds=600))  # PAN refuses the signed ping
    check = doctor_for(live, "CRI", far)["peer PAN"]
    assert check.status == FAIL and "refused our clock" in check.detail and "NTP" in check.fix


def test_expiring_directory_and_unpublished_key(live) -> None:  # type: ignore[no-untyped-def]
    home = live.federation.homes["CRI"]
    rotate_signing_key(home, live.clocks["CRI"].now())
    later = ManualClock(live.clocks["CRI"].now() + dt.timedelta(days=80))
    checks = doctor_for(live, "CRI", later)
    assert checks["directory"].status == WARN and "expires in" in checks["directory"].detail
    assert checks["signing-rotation"].status == WARN
    assert "member.json" in checks["signing-rotation"].fix
    beyond = ManualClock(live.clocks["CRI"].now() + dt.timedelta(days=100))
    checks = doctor_for(live, "CRI", beyond)
    assert checks["directory"].status == FAIL and "grace period ended" in checks["directory"].detail
    assert "peer PAN" not in checks  # no peer is probed on an unusable directory


def test_pending_migrations_are_reported_not_applied(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runtime = live.runtimes["HND"]
    url = runtime.store.engine.url.render_as_string(hide_password=False)
    runtime.close()
    engine = database.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    finally:
        engine.dispose()
    check = doctor_for(live, "HND")["migrations"]
    assert check.status == FAIL and "revision 0001" in check.detail and "enlace serve" in check.fix
    engine = database.make_engine(url)
    try:
        assert database.current_revision(engine) == "0001"  # doctor only looked
    finally:
        engine.dispose()


def test_a_peer_answering_a_malformed_time_is_its_failure(live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A signed Ping whose ``server_time`` is not the protocol's form (a buggy or hostile peer)
    is that peer's FAIL, quoted without control characters, not a crash of the whole doctor.
    The peer's answer is stood in for here: its signature is checked elsewhere (hostile tests),
    what is tested is what the doctor makes of a verified answer."""
    from enlace.v1 import node_pb2
    from node.client import PeerClient, PeerReply

    def call(self, method, request, response_type, **kwargs):  # type: ignore[no-untyped-def]
        answer = node_pb2.PingResponse(server_time="yesterday\x1b[2J")
        return PeerReply(answer, None, "0" * 64, 1.0)  # type: ignore[arg-type]

    monkeypatch.setattr(PeerClient, "call", call)
    checks = doctor_for(live, "CRI")
    check = checks["peer PAN"]
    assert check.status == FAIL and "not RFC 3339 UTC" in check.detail
    assert "\x1b" not in check.detail and "does not follow the protocol" in check.fix
    assert checks["database"].status == OK  # the other checks ran: the doctor did not stop


def test_a_database_gone_is_a_failed_check_in_its_own_words(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL down: the database check fails with what the driver said and what to do, the
    URL without its password, and the other checks still run."""
    import socket

    from typer.testing import CliRunner

    from node.cli.main import app
    from node.home import NodeHome

    home = tmp_path / "pan"
    assert CliRunner().invoke(app, ["init", "--home", str(home), "--country", "PAN"]).exit_code == 0
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ENLACE_DATABASE_URL", f"postgresql://enlace:pw-77@127.0.0.1:{port}/x")
    runtime = open_for_checks(NodeHome(home), ManualClock(dt.datetime.now(dt.UTC)))
    try:
        checks = by_name(run_checks(runtime, peers=False))
    finally:
        runtime.close()
    check = checks["database"]
    assert check.status == FAIL, check
    assert "cannot be used" in check.detail and "refused" in check.detail.lower(), check
    assert "PostgreSQL is unreachable" in check.fix
    assert "SELECT" not in check.detail and "pw-77" not in check.detail
    assert checks["directory"].detail and any(n.startswith("disk ") for n in checks)  # went on


def test_a_damaged_database_file_is_one_failed_check_among_the_others(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On SQLite the store opens the file at once: a damaged one used to stop the doctor at its
    first line. It is the database check's FAIL, with the way back, and the disk is checked."""
    import json

    from typer.testing import CliRunner

    from node.cli.main import app

    home = tmp_path / "pan"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--home", str(home), "--country", "PAN"]).exit_code == 0
    assert runner.invoke(app, ["followup", "list", "--home", str(home)]).exit_code == 0
    with (home / "enlace.db").open("r+b") as file:  # the header stays, the schema goes
        file.seek(0)
        file.write(b"not a database at all" * 100)
    result = runner.invoke(app, ["doctor", "--home", str(home), "--no-peers", "--json"])
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["database"]["status"] == FAIL
    assert "enlace.db cannot be used" in checks["database"]["detail"]
    assert "restore" in checks["database"]["fix"]
    assert any(name.startswith("disk ") for name in checks)  # the doctor went on
    assert "disclosure" not in checks  # nothing to read agreements from

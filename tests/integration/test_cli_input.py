"""What an operator types wrong gets one line naming the option or file and how to fix it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from enlace.v1 import node_pb2
from node.cli.main import app

PING = "/enlace.v1.NodeService/Ping"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_audit_since_honours_the_offset_it_is_given(live) -> None:  # type: ignore[no-untyped-def]
    with live.client("CRI", "PAN") as client:
        client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    home = str(live.federation.homes["PAN"].root)
    code, out = run("audit", "show", "--home", home, "--json")
    assert code == 0, out
    last = json.loads(out)[-1]
    at = dt.datetime.fromisoformat(last["at"])
    for written in (
        at.astimezone(dt.UTC).isoformat(),
        at.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(),  # the same moment
        at.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(),
        at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(),  # no offset: UTC
    ):
        code, out = run("audit", "show", "--home", home, "--since", written, "--json")
        assert code == 0, out
        assert [r["seq"] for r in json.loads(out)] == [last["seq"]], written
    code, out = run("audit", "show", "--home", home, "--since", "yesterday")
    assert code == 1
    assert "--since: 'yesterday' is not a date or a date-time" in out


def test_a_missing_file_is_named_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    code, out = run("policy", "install", str(tmp_path / "nope.yaml"), "--home", str(home))
    assert code == 1
    assert f"{tmp_path / 'nope.yaml'}: No such file or directory" in out
    assert "check the path" in out


def test_a_country_that_is_not_a_member_is_refused_with_the_close_codes(tmp_path: Path) -> None:
    code, out = run("init", "--home", str(tmp_path / "pna"), "--country", "PNA")
    assert code == 1
    assert "'PNA' is not a member of the CRM" in out and "did you mean PAN" in out
    assert not (tmp_path / "pna").exists()
    # The independent helper of regional-only sums is not a member: a code of its own is fine.
    code, out = run(
        "init", "--home", str(tmp_path / "qhp"), "--country", "QHP", "--roles", "helper"
    )
    assert code == 0, out
    draft = str(tmp_path / "draft.yaml")
    code, out = run("policy", "new", "--id", "PAN-CRC-1", "--parties", "PAN,CRC", "--out", draft)
    assert code == 1 and "'CRC' is not a member of the CRM" in out and "CRI" in out
    code, out = run("policy", "new", "--id", "X-1", "--parties", "PAN,CRI,HND", "--out", draft)
    assert code == 1 and "names 3 parties; an agreement has two" in out
    code, out = run(
        "policy", "new", "--id", "X-1", "--parties", "pan,cri", "--valid-from", "2026-13-01",
        "--out", draft,
    )  # fmt: skip
    assert code == 1 and "--valid-from: '2026-13-01' is not a date" in out
    assert not Path(draft).exists()
    code, out = run("policy", "new", "--id", "X-1", "--parties", "pan,cri", "--out", draft)
    assert code == 0, out
    assert yaml.safe_load(Path(draft).read_text())["parties"] == ["PAN", "CRI"]


def test_an_agreement_file_that_does_not_parse_is_named(tmp_path: Path) -> None:
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("format: enlace-agreement/1\nid: [oops\n")
    code, out = run("policy", "install", str(broken), "--home", str(home))
    assert code == 1
    assert f"{broken}: $: not a valid YAML/JSON document at line 3, column 1" in out
    dated = tmp_path / "dated.yaml"
    assert run("policy", "new", "--id", "D-1", "--parties", "PAN,CRI", "--out", str(dated))[0] == 0
    text = dated.read_text()
    dated.write_text(text.replace(text.split("valid_until: ")[1].split("\n")[0], "'2027-12-01'"))
    code, out = run("policy", "verify", str(dated), "--home", str(home))
    assert code == 1
    assert f"{dated}: $.valid_until: '2027-12-01' is not valid here" in out
    assert "e.g. 2027-12-01T00:00:00Z" in out


def test_a_file_that_is_not_utf8_or_not_json_is_named(tmp_path: Path) -> None:
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("format: enlace-agreement/1\ntitle: Panamá\n".encode("latin-1"))
    for command in ("install", "verify"):
        code, out = run("policy", command, str(latin), "--home", str(home))
        assert code == 1
        assert f"{latin}: not UTF-8 (line 2" in out and "save the file as UTF-8" in out


def test_evidence_that_is_not_json_is_named(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    directory = live.federation.homes["PAN"].root / "directory.json"
    not_json = tmp_path / "evidence.yaml"
    not_json.write_text("entries: [1, 2]\n")
    code, out = run("audit", "check-evidence", str(not_json), "--directory", str(directory))
    assert code == 1
    assert f"{not_json}: not JSON (line 1, column 1" in out


def test_rotate_signing_key_prints_its_key_dates_as_json(tmp_path: Path) -> None:
    """operations.md shows ``old_keys_until {"aa69…": "…"}``: JSON, not a Python dict."""
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    code, out = run("rotate-signing-key", "--home", str(home))
    assert code == 0, out
    (line,) = [line for line in out.splitlines() if "old_keys_until" in line]
    dates = json.loads(line.split("old_keys_until", 1)[1])
    assert len(dates) == 1 and all(v.endswith("Z") for v in dates.values())
    assert oct((home / "keys").stat().st_mode & 0o777) == "0o700"

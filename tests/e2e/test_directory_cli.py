"""The directory workflow through the CLI: keys, members, signatures, verification, publishing."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner, Result

from crypto.signing import SigningKey
from node.cli.directory_cmd import app as directory_app
from node.trust import MemberDescriptor, parse_directory_json

root = typer.Typer()
root.add_typer(directory_app, name="directory")
runner = CliRunner()


def enlace(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(root, ["directory", *map(str, args)], env=env)


def err(result: Result) -> str:
    """stderr with rich's soft wrapping undone (it wraps at 80 columns off a terminal)."""
    return " ".join(result.stderr.split())


def ok_json(*args: str | Path) -> Any:
    result = enlace(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_member(folder: Path, country: str, roles: tuple[str, ...]) -> tuple[Path, SigningKey]:
    now = datetime.now(UTC)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"enlace-{country.lower()}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(tls_key, hashes.SHA256())
    )
    signing = SigningKey.generate()
    member = MemberDescriptor.build(
        country=country,
        name=f"Nodo {country}",
        endpoint="127.0.0.1:7001",
        roles=roles,
        signing_public_keys=[signing.public_key],
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=365),
        x25519_public_key=x25519.X25519PrivateKey.generate().public_key().public_bytes_raw(),
        tls_certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
    )
    path = folder / f"member-{country}.json"
    path.write_text(member.to_json())
    return path, signing


@pytest.fixture
def keys(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        path = tmp_path / f"dirkey{i}"
        info = ok_json("keygen", "--out", path, "--holder", f"holder {i}")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert json.loads(Path(info["public_file"]).read_text())["key_id"] == info["key_id"]
        paths.append(path)
    return paths


def test_full_workflow(tmp_path: Path, keys: list[Path]) -> None:
    k0, k1, k2 = keys
    again = enlace("keygen", "--out", k0)
    assert again.exit_code == 1 and "already exists" in err(again)

    refused = enlace("new", "--out", tmp_path / "x.json", "--threshold", "2", "--key-pub", k0)
    assert refused.exit_code == 1 and "private key" in err(refused)

    k2_hex = json.loads(Path(f"{k2}.pub").read_text())["public_key"]
    dir1 = tmp_path / "directory-v1.json"
    created = ok_json(
        "new", "--out", dir1, "--threshold", "2", "--key-pub", f"{k0}.pub",
        "--key-pub", f"{k1}.pub", "--key-pub", k2_hex, "--expires-in-days", "30",
        "--version", "1",
    )  # fmt: skip
    assert created["version"] == 1

    pan, _ = write_member(tmp_path, "PAN", ("member",))
    crm, _ = write_member(tmp_path, "CRM", ("secretariat",))
    assert enlace("add-member", dir1, "--member", pan).exit_code == 0
    assert enlace("add-member", dir1, "--member", crm).exit_code == 0

    unsigned = enlace("verify", dir1)
    assert unsigned.exit_code == 1
    assert "0 valid signature(s) of 2 required" in err(unsigned)
    assert err(unsigned).count("error:") == 1

    assert ok_json("sign", dir1, "--key", k0)["valid"] != []
    assert enlace("verify", dir1).exit_code == 1
    enlace("sign", dir1, "--key", k2)
    report = ok_json("verify", dir1)
    assert report["valid"] is True
    assert report["members"] == ["CRM", "PAN"]
    assert len(report["signatures"]["valid"]) == 2 and report["signatures"]["threshold"] == 2
    assert report["freshness"] == "valid"

    shown = ok_json("show", dir1)
    pan_member = MemberDescriptor.from_json(pan.read_text())
    row = next(m for m in shown["members"] if m["country"] == "PAN")
    assert row["tls_fingerprint"] == pan_member.tls_fingerprint
    assert row["signing_keys"][0]["key_id"] == pan_member.signing_keys[0].key_id
    assert "PAN" in enlace("show", dir1).stdout

    # Adding a member after signing clears the signatures, and says so.
    scratch = tmp_path / "scratch.json"
    scratch.write_bytes(dir1.read_bytes())
    gtm, _ = write_member(tmp_path, "GTM", ("member",))
    changed = enlace("add-member", scratch, "--member", gtm)
    assert "2 signature(s) cleared" in changed.stdout
    assert parse_directory_json(scratch.read_bytes()).signatures == ()

    home = tmp_path / "home"
    home.mkdir()
    wrong_pin = enlace("publish", dir1, "--home", home, "--expect-hash", "ab" * 32)
    assert wrong_pin.exit_code == 1 and not (home / "directory.json").exists()
    installed = ok_json("publish", dir1, "--home", home, "--expect-hash", report["hash"])
    assert installed == {
        "version": 1,
        "hash": report["hash"],
        "installed": True,
        "path": str(home / "directory.json"),
    }
    assert ok_json("publish", dir1, "--home", home)["installed"] is False

    # Version 2: rotate key 0 out, carried members; signed by the old and the new threshold.
    k3 = tmp_path / "dirkey3"
    ok_json("keygen", "--out", k3)
    dir2 = tmp_path / "directory-v2.json"
    ok_json(
        "new", "--out", dir2, "--previous", dir1, "--key-pub", f"{k1}.pub",
        "--key-pub", f"{k2}.pub", "--key-pub", f"{k3}.pub",
    )  # fmt: skip
    signed_by_retired = enlace("sign", dir2, "--key", k0)
    assert "not listed in v2" in err(signed_by_retired)
    enlace("sign", dir2, "--key", k3)
    only_one_old = enlace("verify", dir2, "--previous", dir1)
    assert only_one_old.exit_code == 1 and "trusted v1" in err(only_one_old)
    enlace("sign", dir2, "--key", k1)
    report2 = ok_json("verify", dir2, "--previous", dir1)
    assert report2["version"] == 2 and report2["members"] == ["CRM", "PAN"]
    assert sorted(report2["previous"]["valid"]) == sorted(
        json.loads(Path(f"{k}.pub").read_text())["key_id"] for k in (k0, k1)
    )

    published = enlace("publish", dir2, env={"ENLACE_HOME": str(home)})
    assert published.exit_code == 0, published.output
    assert parse_directory_json((home / "directory.json").read_bytes()).version == 2

    rollback = enlace("publish", dir1, "--home", home, "--json")
    assert rollback.exit_code == 1
    assert json.loads(rollback.stdout)["status"] == "FAILED_PRECONDITION"
    assert parse_directory_json((home / "directory.json").read_bytes()).version == 2


def test_bad_inputs_give_one_line_errors(tmp_path: Path, keys: list[Path]) -> None:
    k0 = keys[0]
    os.chmod(k0, 0o644)
    dir1 = tmp_path / "d.json"
    enlace("new", "--out", dir1, "--threshold", "1", "--key-pub", f"{k0}.pub")
    loose = enlace("sign", dir1, "--key", k0)
    assert loose.exit_code == 1 and "chmod 600" in err(loose)
    (tmp_path / "junk.json").write_text("{not json")
    junk = enlace("verify", tmp_path / "junk.json")
    assert junk.exit_code == 1 and "not JSON" in err(junk)
    missing = enlace("show", tmp_path / "absent.json")
    assert missing.exit_code == 1 and "cannot read" in err(missing)
    too_high = enlace("new", "--out", tmp_path / "e.json", "--threshold", "3", "--key-pub",
                      f"{k0}.pub")  # fmt: skip
    assert too_high.exit_code == 1 and "threshold" in err(too_high)

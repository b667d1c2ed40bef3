"""The scripts the deployment runs, run here for real: without Docker or Kubernetes.

* deploy/compose/bootstrap.py builds the compose federation's homes and signed directory;
* the chart's prepare-home.sh (rendered from the ConfigMap) assembles a home from a Secret's
  files and installs the directory pinned to its hash;
* deploy/docker-entrypoint.sh turns a password file into PGPASSWORD;
* deploy/compose/postgres-init/10-enlace-databases.sh creates one role and database per node
  on a real PostgreSQL server, storing exactly the password from the secret file.

The bootstrap runs once per module (about 4 s on a quiet machine: four homes, three directory
keys, a signed directory), and its homes feed the prepare-home and probe tests. The probe test
starts a real `enlace serve` and is marked slow (about 8 s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from deploy_support import (
    BOOTSTRAP,
    ENTRYPOINT,
    PG_INIT,
    by_kind,
    probe_command_in_dockerfile,
    render,
)
from sqlalchemy import Engine, make_url, text

from node.config import load_config
from node.home import NodeHome
from node.trust.directory import verify_root
from node.trust.freshness import read_directory

COUNTRIES = ("PAN", "CRI", "HND", "CRM")


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_bootstrap", BOOTSTRAP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_bootstrap(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BOOTSTRAP), "--root", str(root), "--countries", "pan,CRI,HND"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("federation")
    result = run_bootstrap(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "federation ready" in result.stdout
    return root


# --- compose bootstrap -----------------------------------------------------------------------


def test_bootstrap_makes_four_homes_sharing_one_signed_directory(federation: Path) -> None:
    directory = read_directory(federation / "directory-v1.json")
    verify_root(directory, datetime.now(UTC), expected_hash=directory.hash)
    assert directory.threshold == 2 and len(directory.directory_keys) == 3
    assert sorted(m.country for m in directory.members) == sorted(COUNTRIES)
    for country in COUNTRIES:
        home = federation / country.lower()
        config = load_config(home, environ={})
        assert config.endpoint == f"{country.lower()}:7001"
        assert config.roles == (("secretariat",) if country == "CRM" else ("member",))
        assert read_directory(home / "directory.json").hash == directory.hash
        for name in ("signing.key", "x25519.key", "tls.key"):
            assert stat.S_IMODE((home / "keys" / name).stat().st_mode) == 0o600
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        listed = next(m for m in directory.members if m.country == country)
        assert listed.tls_certificate == (home / "tls.crt").read_text(encoding="utf-8")
    for key in (federation / "directory-keys").glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_bootstrap_run_again_changes_nothing(federation: Path) -> None:
    before = snapshot(federation)
    result = run_bootstrap(federation)
    assert result.returncode == 0, result.stderr
    assert snapshot(federation) == before


def test_bootstrap_stops_on_a_half_made_home(tmp_path: Path) -> None:
    bootstrap = load_bootstrap()
    (tmp_path / "pan" / "keys").mkdir(parents=True)
    with pytest.raises(bootstrap.BootstrapError, match="interrupted"):
        bootstrap.init_node(tmp_path, "PAN", 7001)
    assert not (tmp_path / "pan" / "node.toml").exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("PAN", "at least two"), ("PAN,CRM", "always added"), ("PAN,PANAMA", "not an ISO")],
)
def test_bootstrap_refuses_bad_country_lists(value: str, problem: str) -> None:
    bootstrap = load_bootstrap()
    with pytest.raises(bootstrap.BootstrapError, match=problem):
        bootstrap.parse_countries(value)
    assert bootstrap.parse_countries(" pan, cri,PAN ") == ["PAN", "CRI"]


# --- Helm init container ---------------------------------------------------------------------


def result_env(tmp_path: Path, home: Path, expect_hash: str) -> dict[str, str]:
    """The init container's environment, with this checkout's `enlace` first on PATH."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ENLACE_HOME": str(home),
        "PREPARE_KEYS_DIR": str(tmp_path / "secret"),
        "PREPARE_ETC_DIR": str(tmp_path / "etc"),
        "ENLACE_DIRECTORY_HASH": expect_hash,
    }


def prepare_home(
    tmp_path: Path, in_ci: bool, source: Path, *, expect_hash: str, drop: str = ""
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Lay out the pod's mounts under tmp_path and run the rendered prepare-home.sh."""
    config_map = by_kind(render(in_ci), "ConfigMap")["data"]
    keys, etc, home = tmp_path / "secret", tmp_path / "etc", tmp_path / "home"
    for directory in (keys, etc / "directory", home):
        directory.mkdir(parents=True)
    for name in ("signing.key", "x25519.key", "tls.key"):
        if name != drop:
            shutil.copy(source / "keys" / name, keys / name)
    shutil.copy(source / "tls.crt", keys / "tls.crt")
    for path in keys.iterdir():
        path.chmod(0o440)  # as a Secret volume with fsGroup shows them
    (etc / "node.toml").write_text(config_map["node.toml"], encoding="utf-8")
    shutil.copy(source.parent / "directory-v1.json", etc / "directory" / "directory.json")
    script = tmp_path / "prepare-home.sh"
    script.write_text(config_map["prepare-home.sh"], encoding="utf-8")
    result = subprocess.run(
        ["sh", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=result_env(tmp_path, home, expect_hash),
        check=False,
    )
    return result, home


def test_init_container_assembles_a_home_the_node_accepts(
    tmp_path: Path, in_ci: bool, federation: Path
) -> None:
    pinned = read_directory(federation / "directory-v1.json").hash
    result, home = prepare_home(tmp_path, in_ci, federation / "pan", expect_hash=pinned)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "node home ready" in result.stdout
    for key in home.joinpath("keys").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    node = NodeHome(home)
    original = NodeHome(federation / "pan")
    assert node.signing_key().public_key == original.signing_key().public_key
    assert node.keys.load_tls() == original.keys.load_tls()
    assert read_directory(node.directory_path).hash == pinned
    assert node.config().listen == "0.0.0.0:7001"

    # A restart seeds nothing over what the node changed in place (rotation, first-use
    # secrets), and takes away group bits a volume ownership change may have added.
    rotated = home / "keys" / "signing.key"
    rotated.write_text("00" * 32 + "\n")
    (home / "keys" / "retired").mkdir()
    (home / "keys" / "oprf-master.key").write_text("11" * 32 + "\n")
    for path in (home / "keys").rglob("*.key"):
        path.chmod(0o660)
    again = subprocess.run(  # the same script, second start
        ["sh", str(tmp_path / "prepare-home.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env=result_env(tmp_path, home, pinned),
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert rotated.read_text() == "00" * 32 + "\n"
    for path in (home / "keys").rglob("*.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((home / "keys" / "retired").stat().st_mode) & 0o700 == 0o700


def test_init_container_refuses_a_missing_key_or_an_unpinned_directory(
    tmp_path: Path, in_ci: bool, federation: Path
) -> None:
    pinned = read_directory(federation / "directory-v1.json").hash
    missing, _ = prepare_home(
        tmp_path / "a", in_ci, federation / "cri", expect_hash=pinned, drop="x25519.key"
    )
    assert missing.returncode == 1
    assert "x25519.key is missing from Secret enlace-test-crm-enlace-keys" in missing.stderr
    unpinned, home = prepare_home(tmp_path / "b", in_ci, federation / "cri", expect_hash="")
    assert unpinned.returncode == 1
    assert "set directory.expectHash" in unpinned.stderr
    assert not (home / "directory.json").exists()


# --- image entrypoint ------------------------------------------------------------------------


def run_entrypoint(tmp_path: Path, password_file: str | None) -> subprocess.CompletedProcess[str]:
    """The entrypoint execs `enlace`; a stand-in on PATH prints what it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "enlace"
    stand_in.write_text(
        '#!/bin/sh\necho "args=$*"\necho "pg=${PGPASSWORD-unset}"\n'
        'echo "file=${ENLACE_DATABASE_PASSWORD_FILE-unset}"\n'
    )
    stand_in.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}
    if password_file is not None:
        env["ENLACE_DATABASE_PASSWORD_FILE"] = password_file
    return subprocess.run(
        [str(ENTRYPOINT), "serve", "--home", "/var/lib/enlace"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_entrypoint_reads_the_password_file_into_pgpassword(tmp_path: Path) -> None:
    secret = tmp_path / "db_pan"
    secret.write_text("c0ffee42\n")
    result = run_entrypoint(tmp_path, str(secret))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "args=serve --home /var/lib/enlace",
        "pg=c0ffee42",
        "file=unset",
    ]
    plain = run_entrypoint(tmp_path, None)
    assert "pg=unset" in plain.stdout.splitlines()


def test_entrypoint_stops_on_a_missing_or_empty_password_file(tmp_path: Path) -> None:
    missing = run_entrypoint(tmp_path, str(tmp_path / "absent"))
    assert missing.returncode == 78 and "cannot read" in missing.stderr
    empty = tmp_path / "empty"
    empty.write_text("")
    result = run_entrypoint(tmp_path, str(empty))
    assert result.returncode == 78 and "is empty" in result.stderr
    assert "args=" not in missing.stdout + result.stdout


# --- PostgreSQL first-start script -----------------------------------------------------------


def scram_matches(verifier: str, password: str) -> bool:
    """Check a PostgreSQL SCRAM-SHA-256 verifier against a password (RFC 5802/7677)."""
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, _server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


@pytest.mark.postgres
def test_postgres_init_creates_one_role_and_database_per_node(
    tmp_path: Path, postgres_url: str, postgres_admin_engine: Engine
) -> None:
    if shutil.which("psql") is None:
        pytest.fail("psql is needed (Debian postgresql-client; CI installs postgresql)")
    nodes = [f"t{secrets.token_hex(4)}{suffix}" for suffix in ("a", "b")]
    passwords = {nodes[0]: "plain0123", nodes[1]: "it's; DROP ROLE postgres; --"}
    for name, password in passwords.items():
        (tmp_path / f"db_{name}").write_text(password + "\n")
    url = make_url(postgres_url)
    env = {
        **os.environ,
        "ENLACE_NODES": " ".join(nodes),
        "ENLACE_SECRETS_DIR": str(tmp_path),
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGUSER": url.username or "postgres",
        "PGDATABASE": url.database or "postgres",
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    try:
        result = subprocess.run(
            ["sh", str(PG_INIT)], capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert result.returncode == 0, result.stderr
        with postgres_admin_engine.connect() as connection:
            for name, password in passwords.items():
                role = f"enlace_{name}"
                row = connection.execute(
                    text(
                        "SELECT r.rolcanlogin, r.rolsuper, r.rolpassword, d.datacl::text, "
                        "pg_get_userbyid(d.datdba) FROM pg_authid r, pg_database d "
                        "WHERE r.rolname = :role AND d.datname = :role"
                    ),
                    {"role": role},
                ).one()
                can_login, is_super, verifier, acl, owner = row
                assert can_login and not is_super and owner == role
                assert scram_matches(verifier, password), "the stored password differs"
                assert not any(entry.startswith("=") for entry in acl.strip("{}").split(","))
        again = subprocess.run(
            ["sh", str(PG_INIT)], capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert again.returncode != 0, "a second run must not silently reuse roles"
    finally:
        with postgres_admin_engine.connect() as connection:
            for name in nodes:
                connection.execute(text(f'DROP DATABASE IF EXISTS "enlace_{name}"'))
                connection.execute(text(f'DROP ROLE IF EXISTS "enlace_{name}"'))


def test_postgres_init_refuses_an_unsafe_node_name(tmp_path: Path) -> None:
    (tmp_path / "db_pan").write_text("c0ffee42\n")
    env = {"PATH": "/nonexistent", "ENLACE_NODES": "pan x;y", "ENLACE_SECRETS_DIR": str(tmp_path)}
    result = subprocess.run(
        ["/bin/sh", str(PG_INIT)], capture_output=True, text=True, timeout=30, env=env, check=False
    )
    assert result.returncode == 1
    assert "invalid node name 'x;y'" in result.stderr


# --- the health probe against a running node -------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, f"enlace serve exited with {process.returncode}"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("enlace serve did not listen in time")


@pytest.mark.slow
def test_probe_command_answers_serving_then_fails_once_the_node_stops(
    tmp_path: Path, federation: Path
) -> None:
    """The probe of the image, compose and chart: entrypoint + `enlace health` over mTLS."""
    home = tmp_path / "hnd"
    shutil.copytree(federation / "hnd", home)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ENLACE_LISTEN": f"127.0.0.1:{port}",
    }
    env.pop("ENLACE_DATABASE_URL", None)
    probe = [str(ENTRYPOINT), *probe_command_in_dockerfile()[1:]]
    probe[probe.index("--home") + 1] = str(home)
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "node.cli.main", "serve", "--home", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_port(port, server, time.monotonic() + 60)
        serving = subprocess.run(
            probe, capture_output=True, text=True, timeout=60, env=env, check=False
        )
        assert serving.returncode == 0, serving.stdout + serving.stderr
        assert "SERVING" in serving.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    stopped = subprocess.run(
        probe, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert stopped.returncode == 1
    assert "unreachable" in stopped.stdout

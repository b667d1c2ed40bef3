"""Checks of the test environment itself: the PostgreSQL server, the shared data, the fixtures.

Why: a CI run that silently lost its PostgreSQL server or its shared test vectors would still be
green while testing much less. These tests fail loudly in that case, and they pin down the
promises of ``tests/conftest.py`` (private databases, no silent skips in CI) by running small
inner test sessions with ``pytester`` against the real conftest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, inspect, make_url, text
from sqlalchemy.pool import NullPool

CONFTEST = Path(__file__).with_name("conftest.py")
INNER_INI = """
[pytest]
markers =
    postgres: needs a PostgreSQL server
"""


def test_ci_exports_the_postgres_url(in_ci: bool) -> None:
    if not in_ci:
        pytest.skip("only CI must provide a PostgreSQL server")
    url = os.environ.get("ENLACE_TEST_POSTGRES_URL", "").strip()
    assert url, "CI is set but ENLACE_TEST_POSTGRES_URL is not: .ci/run must export it"
    assert make_url(url).host == "127.0.0.1", "CI's throwaway server listens on 127.0.0.1 only"


@pytest.mark.postgres
def test_postgres_server_answers(postgres_url: str) -> None:
    parsed = make_url(postgres_url)
    assert parsed.get_backend_name() == "postgresql"
    engine = create_engine(postgres_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            database = connection.execute(text("SELECT current_database()")).scalar_one()
            assert database == parsed.database
    finally:
        engine.dispose()


def test_shared_dir_holds_valid_ed25519_vectors(shared_dir: Path) -> None:
    path = shared_dir / "data" / "vectors" / "rfc8032_ed25519_vectors_1-3.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    assert len(vectors) >= 3
    for vector in vectors:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["SECRET_KEY"]))
        signature = key.sign(bytes.fromhex(vector["MESSAGE"]))
        assert signature.hex() == vector["SIGNATURE"], vector["name"]
        assert len(bytes.fromhex(vector["PUBLIC_KEY"])) == 32


def test_shared_dir_holds_the_oprf_vectors(shared_dir: Path) -> None:
    path = shared_dir / "data" / "vectors" / "rfc9497_ristretto255_sha512_oprf.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["suite"] == "ristretto255-SHA512"
    assert len(bytes.fromhex(document["skSm"])) == 32
    assert document["vectors"], "no OPRF test vectors"
    for vector in document["vectors"]:
        for field in ("Blind", "BlindedElement", "EvaluationElement"):
            assert len(bytes.fromhex(vector[field])) % 32 == 0, (vector["name"], field)
        assert len(bytes.fromhex(vector["Output"])) % 64 == 0, vector["name"]


def test_each_database_url_is_private(
    database_url_factory: Callable[[], str], database_backend: str
) -> None:
    first, second = database_url_factory(), database_url_factory()
    assert first != second
    engines: list[Engine] = [create_engine(first), create_engine(second)]
    try:
        with engines[0].begin() as connection:
            connection.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO probe (id) VALUES (7)"))
        with engines[0].connect() as connection:
            assert connection.execute(text("SELECT id FROM probe")).scalar_one() == 7
        assert inspect(engines[0]).get_table_names() == ["probe"]
        assert inspect(engines[1]).get_table_names() == []
        if database_backend == "postgres":
            with engines[0].connect() as connection:
                schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            assert schema.startswith("t_")
            assert schema in first
    finally:
        for engine in engines:
            engine.dispose()


def _inner_session(pytester: pytest.Pytester, test_source: str) -> pytest.RunResult:
    pytester.makeini(INNER_INI)
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_inner=test_source)
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-rs")


USES_DATABASE = """
def test_uses_database(database_url):
    assert database_url
"""


def test_postgres_params_skip_with_a_reason_outside_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ENLACE_TEST_POSTGRES_URL", raising=False)
    result = _inner_session(pytester, USES_DATABASE)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*ENLACE_TEST_POSTGRES_URL is not set*start_postgres.sh*"])


def test_postgres_params_fail_in_ci_without_a_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("ENLACE_TEST_POSTGRES_URL", raising=False)
    result = _inner_session(pytester, USES_DATABASE)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*CI is set but ENLACE_TEST_POSTGRES_URL is not*"])


def test_a_skipped_postgres_test_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    source = """
import pytest

@pytest.mark.postgres
def test_gives_up():
    pytest.skip("no server today")

def test_unmarked_may_skip():
    pytest.skip("not about PostgreSQL")
"""
    result = _inner_session(pytester, source)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*postgres-marked test skipped while CI is set*no server today*"])


@pytest.mark.postgres
def test_test_schemas_are_dropped_even_with_an_open_transaction(
    pytester: pytest.Pytester, postgres_admin_engine: Engine, tmp_path: Path
) -> None:
    record = tmp_path / "schemas.txt"
    source = f"""
import pytest
from sqlalchemy import create_engine, text

@pytest.fixture
def held():
    # Set up before database_url_factory, so torn down after it: the transactions below are
    # still open while the schemas are dropped.
    connections = []
    yield connections
    for engine, connection in connections:
        connection.invalidate()
        engine.dispose()

@pytest.mark.parametrize("database_backend", ["postgres"], indirect=True)
def test_leaves_a_transaction_open(held, database_url_factory):
    for url in [database_url_factory(), database_url_factory()]:
        engine = create_engine(url)
        connection = engine.connect()
        held.append((engine, connection))
        connection.execute(text("CREATE TABLE held (id INTEGER)"))
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        with open({str(record)!r}, "a") as out:
            out.write(schema + "\\n")
"""
    result = _inner_session(pytester, source)
    result.assert_outcomes(passed=1)
    schemas = record.read_text().split()
    assert len(schemas) == 2
    assert all(schema.startswith("t_") for schema in schemas)
    with postgres_admin_engine.connect() as connection:
        left = connection.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names)"),
            {"names": schemas},
        ).all()
    assert left == []

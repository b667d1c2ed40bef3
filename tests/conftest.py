"""Fixtures shared by the whole suite: databases on both backends, shared data, a fixed clock.

Why: the design promises that one test suite runs unchanged on SQLite and PostgreSQL, and that
CI proves it. Tests ask for ``database_url`` (or ``database_url_factory`` when one test needs
several node databases) and are collected once per backend.

Invariants:

* Every database a test gets is private to it: a fresh SQLite file under ``tmp_path``, or a
  fresh PostgreSQL schema ``t_<random>`` reached through the URL's ``search_path``. The schema is
  dropped afterwards, and the drop is verified.
* PostgreSQL parameters carry ``pytest.mark.postgres``. Without ``ENLACE_TEST_POSTGRES_URL`` they
  are skipped on a developer machine, with the command that starts a server; when ``CI`` is set
  they fail instead, and any other skip of a ``postgres``-marked test is turned into a failure,
  so CI never passes by silently not testing PostgreSQL.
* ``fixed_now`` is the one instant tests use for "now"; domain code receives it as a parameter.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

pytest_plugins = ["pytester"]

POSTGRES_URL_VARIABLE = "ENLACE_TEST_POSTGRES_URL"
SHARED_DIR_VARIABLE = "ENLACE_SHARED_DIR"
REPO_ROOT = Path(__file__).resolve().parents[1]
START_HINT = 'eval "$(scripts/start_postgres.sh)"  (stop with scripts/stop_postgres.sh)'

DatabaseUrlFactory = Callable[[], str]


def running_in_ci() -> bool:
    """True when the ``CI`` variable is set to anything but an explicit no."""
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _configured_postgres_url() -> str | None:
    """The configured URL, with the psycopg 3 driver when it names none (psycopg2 is absent)."""
    value = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not value:
        return None
    url = make_url(value)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = _configured_postgres_url()
    if url is not None:
        postgres = f"PostgreSQL at {_redacted(url)}"
    elif running_in_ci():
        postgres = f"PostgreSQL MISSING: {POSTGRES_URL_VARIABLE} is not set (fails in CI)"
    else:
        postgres = f"PostgreSQL skipped: {POSTGRES_URL_VARIABLE} is not set"
    return [f"databases: SQLite (tmp files); {postgres}"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a ``postgres`` test that skips is a failure: the suite promised to run it."""
    report = yield
    if (
        report.skipped
        and running_in_ci()
        and item.get_closest_marker("postgres") is not None
        and not hasattr(report, "wasxfail")
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"postgres-marked test skipped while CI is set ({reason}); "
            f"CI must run every PostgreSQL test against {POSTGRES_URL_VARIABLE}"
        )
    return report


@pytest.fixture(scope="session")
def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set), where nothing may be skipped for lack of a server."""
    return running_in_ci()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server URL PostgreSQL tests use (a whole database; prefer ``database_url``)."""
    url = _configured_postgres_url()
    if url is None:
        if running_in_ci():
            pytest.fail(
                f"CI is set but {POSTGRES_URL_VARIABLE} is not: .ci/run starts PostgreSQL "
                f"with scripts/start_postgres.sh and exports it; run {START_HINT}",
                pytrace=False,
            )
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set; to run PostgreSQL tests: {START_HINT}")
    return url


@pytest.fixture(scope="session")
def postgres_admin_engine(postgres_url: str) -> Iterator[Engine]:
    """An autocommit engine on ``postgres_url`` for creating and dropping test schemas."""
    engine = create_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        pytest.fail(
            f"cannot reach PostgreSQL at {_redacted(postgres_url)} ({POSTGRES_URL_VARIABLE}): "
            f"{exc.__class__.__name__}: {exc}",
            pytrace=False,
        )
    yield engine
    engine.dispose()


def _schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with connections confined to ``schema`` and tagged with its name."""
    url = make_url(base_url)
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    search_path = f"-csearch_path={schema}"
    return url.update_query_dict(
        {
            "options": f"{options} {search_path}".strip(),
            "application_name": f"enlace-test-{schema}",
        }
    ).render_as_string(hide_password=False)


def _drop_schema(engine: Engine, schema: str) -> None:
    """Drop ``schema``, ending any session the test left open on it first."""
    with engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": f"enlace-test-{schema}"},
        )
        connection.execute(text("SET lock_timeout = '20s'"))
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        left = connection.execute(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :schema"),
            {"schema": schema},
        ).scalar_one()
    if left:
        pytest.fail(f"test schema {schema} survived DROP SCHEMA", pytrace=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_backend(request: pytest.FixtureRequest) -> str:
    """The backend this test instance runs on: ``"sqlite"`` or ``"postgres"``."""
    backend: str = request.param
    if backend == "postgres":
        request.getfixturevalue("postgres_admin_engine")
    return backend


@pytest.fixture
def database_url_factory(
    database_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DatabaseUrlFactory]:
    """Make as many private, empty databases as the test needs (e.g. one per node)."""
    schemas: list[str] = []
    sqlite_files = itertools.count()
    engine: Engine | None = None
    if database_backend == "postgres":
        engine = request.getfixturevalue("postgres_admin_engine")

    def make() -> str:
        if engine is None:
            return f"sqlite+pysqlite:///{tmp_path / f'enlace-{next(sqlite_files)}.db'}"
        schema = f"t_{secrets.token_hex(6)}"
        with engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return _schema_url(engine.url.render_as_string(hide_password=False), schema)

    yield make
    if engine is not None:
        for schema in schemas:
            _drop_schema(engine, schema)


@pytest.fixture
def database_url(database_url_factory: DatabaseUrlFactory) -> str:
    """A private, empty database for this test, on each backend in turn."""
    return database_url_factory()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared data (test vectors, datasets): $ENLACE_SHARED_DIR or ../shared."""
    configured = os.environ.get(SHARED_DIR_VARIABLE, "").strip()
    path = Path(configured) if configured else REPO_ROOT.parent / "shared"
    if not path.is_dir():
        source = SHARED_DIR_VARIABLE if configured else "the default <repo>/../shared"
        pytest.fail(
            f"shared directory {path} (from {source}) does not exist; point "
            f"{SHARED_DIR_VARIABLE} at the project's shared/ folder",
            pytrace=False,
        )
    return path.resolve()


@pytest.fixture(scope="session")
def fixed_now() -> datetime:
    """The instant every test treats as "now": 2026-11-28T12:00:00Z (aware, UTC)."""
    return datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)

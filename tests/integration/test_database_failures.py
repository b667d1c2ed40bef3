"""A database that fails reaches the operator as one line naming it and the next step.

A damaged SQLite file, an unreachable PostgreSQL server or a statement the database refuses
used to surface as a driver traceback with the SQL and its parameters in it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from typer.testing import CliRunner

from node.cli.main import app
from node.errors import StoreError
from node.store import open_store
from node.store.database import make_engine
from node.store.failures import database_error, redacted_url


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    # A traceback would be an exception other than the command's own exit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _home_with_database(tmp_path: Path) -> Path:
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    code, out = run("followup", "list", "--home", str(home), "--json")  # creates the database
    assert code == 0, out
    assert (home / "enlace.db").stat().st_size > 8 * 4096
    return home


def _damage(database: Path) -> None:
    with database.open("r+b") as file:  # keep the header, wreck the schema's pages
        file.seek(4096)
        file.write(b"\xff" * 4096 * 6)


def test_a_damaged_sqlite_file_is_named_with_the_way_back(tmp_path: Path) -> None:
    home = _home_with_database(tmp_path)
    _damage(home / "enlace.db")
    for command in (["audit", "verify"], ["followup", "list"], ["status"]):
        code, out = run(*command, "--home", str(home))
        assert code == 1, (command, out)
        assert f"the node's database {home / 'enlace.db'} cannot be used" in out, out
        assert "malformed" in out or "not a database" in out, out
        assert "enlace restore ARCHIVE --home NEW_HOME" in out, out
        assert "Traceback" not in out
    code, out = run("audit", "verify", "--home", str(home), "--json")
    assert code == 1
    error = json.loads(out)
    assert error["status"] == "INTERNAL"
    assert str(home / "enlace.db") in error["error"] and "restore" in error["hint"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_postgresql_is_said_so_without_its_password(tmp_path: Path) -> None:
    home = tmp_path / "pan"
    assert run("init", "--home", str(home), "--country", "PAN")[0] == 0
    url = f"postgresql://enlace:s3cret-word@127.0.0.1:{_closed_port()}/enlace"
    code, out = run("followup", "list", "--home", str(home), env={"ENLACE_DATABASE_URL": url})
    assert code == 1, out
    assert "PostgreSQL is unreachable" in out, out
    assert "enlace:***@127.0.0.1" in out, out
    assert "s3cret-word" not in out


def test_the_message_carries_the_database_words_but_never_the_statement_or_values(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SQLAlchemyError) as caught, engine.connect() as conn:
        conn.execute(text("INSERT INTO travel_documents VALUES (:number)"), {"number": "P7731"})
    assert "P7731" not in str(caught.value)  # the engine hides parameters even in its own text
    error = database_error(caught.value, "x.db")
    assert (
        error.message == "the node's database x.db cannot be used: no such table: travel_documents"
    )
    assert "INSERT" not in str(error) and "P7731" not in str(error)
    assert "schema" in error.hint
    engine.dispose()


@pytest.mark.parametrize(
    ("said", "advice"),
    [
        ("database disk image is malformed", "restore the latest backup"),
        ("file is not a database", "restore the latest backup"),
        ("database is locked", "write lock"),
        ("database or disk is full", "disk is full"),
        ("attempt to write a readonly database", "permissions"),
        (
            'connection failed: connection to server at "10.0.0.5" failed: Connection refused',
            "PostgreSQL is unreachable",
        ),
        ('FATAL:  password authentication failed for user "enlace"', "credentials"),
        ("something new", "the node's log has the details"),
    ],
)
def test_each_kind_of_failure_gets_its_own_advice(said: str, advice: str) -> None:
    import sqlite3

    error = database_error(sqlite3.OperationalError(said))
    assert isinstance(error, StoreError)
    assert error.message == f"the node's database cannot be used: {said}"
    assert advice in error.hint


def test_open_store_names_the_database_it_could_not_open(tmp_path: Path) -> None:
    database = tmp_path / "enlace.db"
    database.write_bytes(b"this is not SQLite" * 1000)
    with pytest.raises(StoreError, match=f"database {database} cannot be used") as caught:
        open_store(f"sqlite+pysqlite:///{database}")
    assert "restore" in caught.value.hint


def test_a_url_is_shown_without_its_password() -> None:
    assert redacted_url("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert redacted_url("::not a url::") == "the configured database URL"


def test_a_parallel_import_part_never_carries_values_into_its_failure(tmp_path: Path) -> None:
    """A helper process converting part of a file reports a crash to the importing process as
    text, which reaches the screen: the database's words, not the statement's values."""
    import sqlite3

    from node.ingest.parallel import _part_engine
    from node.store.failures import reported_failure

    stored = tmp_path / "enlace.db"
    sqlite3.connect(stored).close()
    engine = _part_engine(str(tmp_path / "part.db"), str(stored))
    with pytest.raises(SQLAlchemyError) as caught, engine.connect() as conn:
        conn.execute(text("INSERT INTO nowhere VALUES (:name)"), {"name": "GARCIA LOPEZ P1234567"})
    engine.dispose()
    assert "P1234567" not in str(caught.value)
    failure = reported_failure(caught.value)
    assert failure is not None and failure.message.endswith("no such table: nowhere")

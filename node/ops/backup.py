"""Backups of a whole node — home files, keys and database — and restoring them elsewhere.

Why one archive: a node is its keys (identity), its directory (trust), its configuration and
its database (audit chain, agreements, quotas, records); a restore that brings back only the
database cannot sign, and one that brings back only the keys has lost the audit trail. The
archive is a ``.tar.gz`` holding ``manifest.json``, ``home/…`` and the database:

* SQLite: ``database.sqlite``, taken with SQLite's online backup API
  (:meth:`sqlite3.Connection.backup`) — consistent while the node serves;
* PostgreSQL: ``database.pgdump``, ``pg_dump --format=custom`` of the node's schema, restored
  with ``pg_restore`` into an empty database.

Invariants:
* The manifest names every member with its SHA-256; :func:`restore_node` refuses an archive
  whose content does not match, a member outside the expected names, and a target home that
  already holds anything (a restore never overwrites a node) — except, for a backup made
  without keys, the node's own ``keys/``, checked against its published keys first.
* A restore checks all it can before writing, then writes and verifies in a staging folder
  and moves the home in last; a failure removes what it wrote (files and database), so the
  target is as it was and the restore can simply be run again.
* The archive is written to a temporary file and renamed, with mode 0600 (it holds private
  keys unless ``include_keys=False``); key files come back with mode 0600.
* A restore ends by opening the node (migrations forward, if the backup is older) and
  verifying the whole audit chain and its checkpoints against the restored directory; the
  chain must contain the head recorded in the manifest (read just before the dump, so a node
  serving during the backup may have added entries after it, never fewer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import URL

from crypto.keys import private_directory
from node.audit import verify_chain_with_checkpoints
from node.clock import Clock
from node.errors import AuditIntegrityError, ConfigError, StoreError
from node.home import NodeHome
from node.ops.restore_checks import (
    KEYS,
    check_provided_keys,
    check_target,
    keys_excluded,
    restored_settings,
)
from node.runtime import open_runtime
from node.store import database
from node.trust.member import format_time

FORMAT = "enlace-backup/1"
SQLITE_MEMBER = "database.sqlite"
PG_MEMBER = "database.pgdump"
# Home files worth keeping; the database files themselves travel as a consistent copy.
_SKIP = {"enlace.db", "enlace.db-wal", "enlace.db-shm", "serve.log"}


@dataclass(frozen=True)
class BackupManifest:
    format: str
    country: str
    created_at: str
    backend: str
    schema: str
    revision: str
    audit_seq: int
    audit_head: str
    files: dict[str, str]  # archive member -> sha256

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    country: str
    audit_entries: int
    audit_head: str
    checkpoints: int
    revision: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not on PATH",
            hint="install the PostgreSQL client (apt install postgresql-client)",
        )
    return found


def _dump_sqlite(path: str, target: Path) -> None:
    source = sqlite3.connect(path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # page by page, consistent with concurrent writers
    finally:
        copy.close()
        source.close()


def _home_files(home: NodeHome) -> list[Path]:
    files = []
    for path in sorted(home.root.rglob("*")):
        relative = path.relative_to(home.root)
        if path.is_file() and relative.name not in _SKIP and not relative.name.startswith("."):
            files.append(relative)
    return files


def backup_node(
    home: NodeHome, out: Path, now: dt.datetime, *, include_keys: bool = True
) -> BackupManifest:
    """Write a backup archive of ``home`` and its database to ``out`` (never overwritten)."""
    if out.exists():
        raise ConfigError(f"{out} already exists; refusing to overwrite a backup")
    if not out.parent.is_dir():  # a mistyped mount point must not put the keys on another disk
        raise ConfigError(
            f"directory {out.parent} does not exist; refusing to create it for a backup",
            hint="check the path (is the backup volume mounted?) or create the directory first",
        )
    config = home.config()
    url = make_url(home.database_url(config))
    engine = database.make_engine(url.render_as_string(hide_password=False))
    members: dict[str, bytes] = {}
    try:
        schema = ""
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                schema = str(conn.execute(text("SELECT current_schema()")).scalar() or "")
        revision = database.current_revision(engine) or ""
        with engine.connect() as conn:
            row = conn.execute(text("SELECT seq, entry_hash FROM audit_head WHERE id = 1")).first()
    finally:
        engine.dispose()
    seq, head = (int(row[0]), str(row[1])) if row else (0, "")
    with tempfile.TemporaryDirectory(prefix="enlace-backup-") as scratch:
        dump = Path(scratch) / "db"
        if url.get_backend_name() == "sqlite":
            _dump_sqlite(str(url.database), dump)
            name = SQLITE_MEMBER
        else:
            libpq, env = _libpq(url)
            command = [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}"]
            if schema and schema != "public":
                command.append(f"--schema={schema}")
            result = subprocess.run(  # noqa: S603 - fixed tool, our own arguments
                [*command, libpq], env=env, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise StoreError(f"pg_dump failed: {result.stderr.strip()}")
            name = PG_MEMBER
        members[name] = dump.read_bytes()
    for relative in _home_files(home):
        if not include_keys and relative.parts[0] == "keys":
            continue
        members[f"home/{relative.as_posix()}"] = (home.root / relative).read_bytes()
    manifest = BackupManifest(
        format=FORMAT,
        country=config.country,
        created_at=format_time(now),
        backend=url.get_backend_name(),
        schema=schema,
        revision=revision,
        audit_seq=seq,
        audit_head=head,
        files={n: _sha256(d) for n, d in sorted(members.items())},
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for member, data in [("manifest.json", manifest.to_json()), *sorted(members.items())]:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                info.mode = 0o600 if "/keys/" in member else 0o644
                info.mtime = int(now.timestamp())
                archive.addfile(info, io.BytesIO(data))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def read_archive(path: Path) -> tuple[BackupManifest, dict[str, bytes]]:
    """The manifest and every member, checked against the manifest's hashes."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            contents: dict[str, bytes] = {}
            for info in archive.getmembers():
                if not info.isfile():
                    raise ConfigError(f"{path}: unexpected entry {info.name!r} in the archive")
                handle = archive.extractfile(info)
                assert handle is not None
                contents[info.name] = handle.read()
    except (tarfile.TarError, OSError) as exc:
        raise ConfigError(f"{path} is not a readable backup: {exc}") from None
    try:
        manifest = BackupManifest(**json.loads(contents.pop("manifest.json")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} has no valid manifest.json ({exc})") from None
    if manifest.format != FORMAT:
        raise ConfigError(f"{path}: unsupported backup format {manifest.format!r}")
    if set(contents) != set(manifest.files):
        raise ConfigError(f"{path}: members differ from the manifest; the archive was altered")
    for name, data in contents.items():
        if _sha256(data) != manifest.files[name]:
            raise ConfigError(f"{path}: {name} does not match its hash; the archive was altered")
        parts = Path(name).parts
        if name.startswith("/") or ".." in parts or (parts[0] != "home" and len(parts) != 1):
            raise ConfigError(f"{path}: refusing member path {name!r}")
    return manifest, contents


def _postgres_tables(target_url: str, schema: str) -> list[str]:
    engine = database.make_engine(target_url)
    try:
        return list(inspect(engine).get_table_names(schema=schema or None))
    finally:
        engine.dispose()


def _check_postgres_target(target_url: str, manifest: BackupManifest) -> None:
    """The database must be empty where the dump goes, and pg_restore at hand."""
    _tool("pg_restore")
    if _postgres_tables(target_url, manifest.schema):
        raise ConfigError(
            f"the target database already has tables in schema {manifest.schema!r}",
            hint="restore into a new, empty database",
        )


def _restore_postgres(dump: bytes, target_url: str) -> None:
    libpq, env = _libpq(make_url(target_url))
    with tempfile.NamedTemporaryFile(suffix=".pgdump") as handle:
        handle.write(dump)
        handle.flush()
        result = subprocess.run(  # noqa: S603 - fixed tool, our own arguments
            [
                _tool("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={libpq}",
                handle.name,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise StoreError(f"pg_restore failed: {result.stderr.strip()}")


def _undo_postgres(target_url: str, schema: str) -> None:
    """Empty the target again after a failed restore: everything in it came from the dump."""
    engine = database.make_engine(target_url)
    try:
        with engine.begin() as conn:
            if schema and schema != "public":
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                return
            for table in inspect(conn).get_table_names(schema=schema or None):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    finally:
        engine.dispose()


def _write_home(root: Path, contents: dict[str, bytes], settings: dict[str, Any]) -> None:
    for name, data in sorted(contents.items()):
        if not name.startswith("home/"):
            continue
        target = root.joinpath(*Path(name).parts[1:])
        private = target.parent.name == "keys" or target.parent.parent.name == "keys"
        if private:
            private_directory(target.parent)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        fd = os.open(target, flags, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    (root / "node.toml").write_text(tomli_w.dumps(settings), encoding="utf-8")


def _check_backend(manifest: BackupManifest, database_url: str) -> None:
    if manifest.backend == "sqlite":
        if database_url and not database_url.startswith("sqlite"):
            raise ConfigError("a SQLite backup restores into SQLite; omit --database-url")
    elif not database_url:
        raise ConfigError(
            "a PostgreSQL backup needs --database-url (an empty database to restore into)"
        )


def _sqlite_file(database_url: str) -> Path | None:
    """Where an explicit SQLite --database-url puts the database (None: in the home)."""
    if not database_url:
        return None
    path = Path(make_url(database_url).database or "")
    if not path.name or path.exists():
        raise ConfigError(
            f"the SQLite database {path} already exists; refusing to overwrite it",
            hint="name a new file in --database-url, or omit it to restore into the home",
        )
    return path


def _move_into(staging: Path, root: Path, skip: str) -> None:
    """Move the verified home into ``root`` (renames on one file system), or put it back."""
    if not root.exists():
        os.rename(staging, root)
        return
    moved: list[Path] = []
    try:
        for entry in sorted(staging.iterdir()):
            if entry.name != skip:
                os.rename(entry, root / entry.name)
                moved.append(root / entry.name)
    except BaseException:
        for path in moved:
            os.rename(path, staging / path.name)
        raise
    shutil.rmtree(staging)


def restore_node(
    archive: Path, root: Path, *, database_url: str = "", clock: Clock | None = None
) -> RestoreReport:
    """Recreate a node home at ``root`` from ``archive`` and verify its audit log.

    Every check that needs no writing comes first (see :mod:`node.ops.restore_checks`); the
    home is then written and verified in a staging folder next to ``root`` and moved in only
    once the audit log verifies. On any failure the staging folder, a SQLite file it created
    and what it restored into PostgreSQL are removed: ``root`` stays as it was, and the same
    command can be run again.
    """
    manifest, contents = read_archive(archive)
    without_keys = keys_excluded(manifest.files)
    check_target(root, without_keys, archive)
    _check_backend(manifest, database_url)
    settings = restored_settings(contents, database_url)
    if without_keys:
        check_provided_keys(root / KEYS, contents)
    sqlite_file = _sqlite_file(database_url) if manifest.backend == "sqlite" else None
    if manifest.backend != "sqlite":
        _check_postgres_target(database_url, manifest)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.restoring-", dir=root.parent))
    restored_postgres = False
    try:
        _write_home(staging, contents, settings)
        if without_keys:  # verified with the operator's keys, never copied
            os.symlink((root / KEYS).resolve(), staging / KEYS)
        if manifest.backend == "sqlite":
            target = sqlite_file or staging / "enlace.db"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(contents[SQLITE_MEMBER])
        else:
            restored_postgres = True
            _restore_postgres(contents[PG_MEMBER], database_url)
        report = verify_restored(NodeHome(staging), manifest, clock)
        _move_into(staging, root, KEYS if without_keys else "")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if sqlite_file is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)
        if restored_postgres:
            _undo_postgres(database_url, manifest.schema)
        raise
    os.chmod(root, 0o700)
    return dataclasses.replace(report, home=root)


def verify_restored(
    home: NodeHome, manifest: BackupManifest, clock: Clock | None = None
) -> RestoreReport:
    """Open the restored node and verify the audit chain and checkpoints end to end."""
    runtime = open_runtime(home, clock)
    try:
        directory = runtime.directory.current(runtime.clock.now())
        checkpoints = runtime.store.checkpoints()
        chain = verify_chain_with_checkpoints(
            runtime.store.iter_audit(), checkpoints, directory.signing_key, node=manifest.country
        )
        # The head was read before the dump, so the dump holds at least that entry.
        recorded = runtime.store.audit_entry(manifest.audit_seq) if manifest.audit_seq else None
        if manifest.audit_seq and (recorded is None or recorded.entry_hash != manifest.audit_head):
            raise AuditIntegrityError(
                f"restored chain ends at entry {chain.last_seq} without the head the backup "
                f"recorded (entry {manifest.audit_seq}, {manifest.audit_head[:16]}…)",
                position=chain.last_seq + 1,
                hint="the database in the archive is incomplete; use another backup",
            )
        revision = database.current_revision(runtime.store.engine) or ""
    finally:
        runtime.close()
    return RestoreReport(
        home.root, manifest.country, chain.count, chain.head_hash, len(checkpoints), revision
    )

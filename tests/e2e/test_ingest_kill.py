"""A crash in the middle of an import leaves the store as it was (DESIGN §2, non-negotiable 4).

``enlace ingest`` runs as a real process on a ~200,000-row file, read in two parts (the second
by a helper process), and is killed with SIGKILL once it has visibly written batches inside
its transaction; the store must then hold exactly what it held before, pass SQLite's integrity
check, and accept the same import again, and the orphaned helper must remove its part
database.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sql_select
from sqlalchemy import text

from node.ingest.pipeline import ingest
from node.records.datasets import ENCOUNTERS
from node.store import open_store
from node.store.records_schema import DATASET_TABLES, encounter_codes, imports

REPO = Path(__file__).resolve().parents[2]
ROWS = 200_000
NATIONALITIES = ("HTI", "CUB", "IND", "NPL", "BGD", "CHN", "CMR", "COD", "AGO", "SEN", "GIN")


def write_encounters(path: Path, start: int, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(ENCOUNTERS.columns) + "\n")
        for i in range(start, start + count):
            nationality = NATIONALITIES[i % len(NATIONALITIES)]
            document = f"P{i:08d},{nationality}" if i % 3 == 0 else ","
            handle.write(
                f"PANE{i:09d},PANP{i // 2:08d},encounter,2023-{i % 12 + 1:02d}-{i % 28 + 1:02d},"
                f",{nationality},declared,{'FM'[i % 2]},{1970 + i % 40},Y25T34,"
                f"{'food;health' if i % 4 == 0 else ''},,{document},Apellido{i % 997},Nombre\n"
            )


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    store = open_store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            tables = [*DATASET_TABLES.values(), encounter_codes, imports]
            return {t.name: sorted(map(tuple, conn.execute(sql_select(t)))) for t in tables}
    finally:
        store.close()


#: A progress line of ``enlace ingest`` off a terminal: "big.csv: 12,000 rows read, …".
PROGRESS = re.compile(r"\S+: ([\d,]+) rows read, [\d,]+ rows/s \(.*\)")


def rows_read(line: str) -> int:
    match = PROGRESS.fullmatch(line)
    return int(match.group(1).replace(",", "")) if match else 0


def wait_for_progress(process: subprocess.Popen[bytes], timeout: float) -> str:
    """The first progress line (``FILE: N rows read, …``) with N > 0: batches are written."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    pending = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"ingest ended early ({process.returncode}): {pending!r}")
        ready, _, _ = select.select([process.stderr], [], [], 0.1)
        if ready:
            pending += os.read(process.stderr.fileno(), 4096)
            for line in pending.decode("utf-8", "replace").splitlines():
                if rows_read(line) > 0:
                    return line
    raise AssertionError(f"no progress within {timeout} s: {pending!r}")


@pytest.mark.slow
def test_sigkill_mid_import_leaves_the_store_as_before(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "node.toml").write_text(
        'country = "PAN"\nname = "Panamá"\nendpoint = "127.0.0.1:7001"\n', encoding="utf-8"
    )
    url = f"sqlite+pysqlite:///{home / 'enlace.db'}"
    seed = tmp_path / "seed.csv"
    write_encounters(seed, 10_000_000, 50)
    store = open_store(url)
    ingest(store, "encounters", [seed], now=datetime.now(UTC))
    store.close()
    before = snapshot(url)
    big = tmp_path / "big.csv"
    write_encounters(big, 0, ROWS)

    command = [sys.executable, "-m", "node.cli.main", "ingest", "encounters", str(big)]
    command += ["--home", str(home)]
    scratch = tmp_path / "scratch"  # where the import's helper keeps its part database
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "TMPDIR": str(scratch)}
    process = subprocess.Popen(
        [*command, "--workers", "2"],  # the file is read in two parts, one by a helper
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = wait_for_progress(process, timeout=120)
        time.sleep(0.3)  # a few more batches into the transaction
        assert process.poll() is None, "the import finished before it could be killed"
        assert any(scratch.iterdir()), "the file was not read in parts"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert rows_read(line) > 0

    assert snapshot(url) == before
    deadline = time.monotonic() + 30  # the orphaned helper notices and removes its part
    while any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(scratch.iterdir()) == []
    store = open_store(url)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    store.close()

    rerun = subprocess.run(
        [*command, "--json"], cwd=REPO, env=env, capture_output=True, check=False
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    store = open_store(url)
    try:
        assert store.records.counts()["encounters"] == ROWS + 50
        assert [i.rows_added for i in store.records.imports()] == [ROWS, 50]
    finally:
        store.close()

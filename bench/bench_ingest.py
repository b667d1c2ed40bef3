"""What validation, normalisation and idempotency cost: ``enlace ingest`` against a bare insert.

Why: a directorate loads a year of records (Mexico 2023: ~780,000 events) in one import, and
DESIGN §2 wants that import validated and all-or-nothing. The targets of the issue are
≥ 50,000 validated rows/s, within 3× of a bare ``sqlite3.executemany`` of the same rows, and
a peak resident memory below 300 MB whatever the file size. This benchmark measures, in one
run, on the same CSV file:

* ``bare``    Python's ``csv`` reader and ``sqlite3.executemany`` in batches of 5,000 into a
  plain table of 16 text columns, one transaction, the node's SQLite settings (WAL,
  ``synchronous=NORMAL``): the floor any importer in Python sits on;
* ``ingest``  :func:`node.ingest.pipeline.ingest` into a fresh node store: UTF-8 proof and
  SHA-256 of the file, every cell validated and normalised, content hashes, key lookups for
  idempotency, ``encounters`` with its indexes and ``encounter_codes``, one transaction —
  as ``enlace ingest`` runs it, with a helper process per further core converting the later
  parts of the file (:mod:`node.ingest.parallel`);
* ``ingest_1`` the same in one process (``--workers 1``), for comparison.

Each runs in a child process of its own, so ``ru_maxrss`` is that run's peak memory (for
``ingest``, its own peak plus its helper's, which run side by side, and CPU seconds include the
helper's); the three alternate ``--repeat`` times, and the figures are medians: seconds and
CPU seconds of each, and the ratio to bare of each round (a round's runs see about the same
machine load, so the ratio moves much less than the seconds on a shared machine). ``--csv``
imports a given encounters file instead (``enlace generate`` output, say) and ``--rows`` is
then ignored.

    python bench/bench_ingest.py [--rows N] [--csv FILE] [--repeat R] [--json] [--keep DIR]

Figures only: nothing is asserted here, and tests never time anything.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import REPO_ROOT, machine, print_json

BATCH = 5000
NATIONALITIES = ("HTI", "CUB", "IND", "NPL", "BGD", "CHN", "CMR", "COD", "AGO", "SEN", "GIN")
EVENTS = ("irregular_entry", "encounter", "detention", "deportation", "stranded")
AGE_GROUPS = ("Y0T4", "Y5T9", "Y18T24", "Y25T34", "Y35T44", "Y45T54", "_U")
SURNAMES = ("Jean-Baptiste", "Pierre", "González", "Kumar", "Thapa", "Rahman", "Diallo",
            "Ndiaye", "Mbala", "Chen", "Noori", "Pérez García", "Joseph", "Camara")  # fmt: skip
GIVEN = ("Marie Nadège", "Ravi", "Fatou", "Mamadou", "Wei", "Ahmad", "Jean", "", "Aminata")


def write_encounters(path: Path, rows: int) -> None:
    """A realistic-looking encounters file: repeating codes and names, unique ids, 1/3 with a
    passport number, partial birth dates, care and vulnerability flags."""
    from node.records.datasets import ENCOUNTERS

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ENCOUNTERS.columns)
        for i in range(rows):
            nat = NATIONALITIES[i % 11]
            birth = (f"{1960 + i % 50}", f"{1960 + i % 50}-{i % 12 + 1:02d}-{i % 28 + 1:02d}")[
                i % 2
            ]
            writer.writerow(
                (f"PANE{i:010d}", f"PANP{i // 2:09d}", EVENTS[i % 5],
                 f"{2019 + i % 5}-{i % 12 + 1:02d}-{i % 28 + 1:02d}", "", nat,
                 ("declared", "documented", "presumed", "unknown")[i % 4], "FMXU"[i % 4], birth,
                 AGE_GROUPS[i % 7], ("food;health", "", "shelter", "none")[i % 4],
                 ("", "", "pregnant", "unaccompanied_minor")[i % 4],
                 f"{nat[:2]}{(i * 7919) % 10**7:07d}" if i % 3 == 0 else "",
                 nat if i % 3 == 0 else "", SURNAMES[i % 14], GIVEN[i % 9])
            )  # fmt: skip


def run_bare(source: Path, database: Path) -> dict[str, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    columns = ", ".join(f"c{i} TEXT" for i in range(16))
    conn.execute(f"CREATE TABLE encounters_bare ({columns})")
    sql = f"INSERT INTO encounters_bare VALUES ({', '.join('?' * 16)})"
    rows = 0
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.execute("BEGIN")
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) == BATCH:
                conn.executemany(sql, batch)
                rows += len(batch)
                batch = []
        conn.executemany(sql, batch)
        rows += len(batch)
        conn.execute("COMMIT")
    conn.close()
    return {"rows": rows, "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}


def _cpu_with_children() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_ingest(source: Path, database: Path, workers: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    from node.ingest.pipeline import ingest
    from node.store import open_store

    store = open_store(f"sqlite+pysqlite:///{database}")
    start, cpu = time.perf_counter(), _cpu_with_children()
    report = ingest(store, "encounters", [source], now=datetime.now(UTC), workers=workers)
    seconds, cpu = time.perf_counter() - start, _cpu_with_children() - cpu
    store.close()
    return {"rows": report.total("added"), "seconds": seconds, "cpu": cpu}


def child(kind: str, source: Path, database: Path) -> None:
    if kind == "bare":
        result = run_bare(source, database)
    else:
        result = run_ingest(source, database, workers=1 if kind == "ingest_1" else 0)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # The helper runs beside this process: the two peaks added bound the import's footprint.
    result["peak_rss_mb"] = own + helpers
    result["helper_peak_rss_mb"] = helpers
    sys.stdout.write(json.dumps(result) + "\n")


def measure(kind: str, source: Path, folder: Path) -> dict[str, Any]:
    database = folder / f"{kind}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(source), str(database)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = round(result["rows"] / result["seconds"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--csv", type=Path, help="an encounters CSV to import instead")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="folder for the CSV and databases (kept)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        source = args.csv or folder / "encounters.csv"
        if args.csv is None:
            write_encounters(source, args.rows)
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "ingest": [], "ingest_1": []}
        for _ in range(max(1, args.repeat)):
            for kind, results in runs.items():
                results.append(measure(kind, source, folder))
        size_mb = source.stat().st_size / 1e6
    rounds = list(zip(runs["bare"], runs["ingest"], runs["ingest_1"], strict=True))
    summary = {kind: _median_run(results) for kind, results in runs.items()}
    result = {
        "benchmark": "ingest",
        "rows": summary["ingest"]["rows"],
        "csv": str(args.csv) if args.csv else "write_encounters",
        "csv_mb": round(size_mb, 1),
        "repeat": len(rounds),
        **summary,
        "ratio": round(statistics.median(i["seconds"] / b["seconds"] for b, i, _ in rounds), 2),
        "cpu_ratio": round(statistics.median(i["cpu"] / b["cpu"] for b, i, _ in rounds), 2),
        "ratio_one_process": round(
            statistics.median(o["seconds"] / b["seconds"] for b, _, o in rounds), 2
        ),
        "runs": runs,
        "targets": {"rows_per_s": 50_000, "ratio": 3.0, "peak_rss_mb": 300},
        "machine": machine(),
    }
    if args.json:
        print_json(result)
        return
    print(f"{result['rows']:,} encounters, {size_mb:.0f} MB of CSV, median of {len(rounds)} rounds")
    for kind in ("bare", "ingest", "ingest_1"):
        r = summary[kind]
        print(f"  {kind:8} {r['seconds']:7.2f} s  {r['rows_per_s']:>10,.0f} rows/s  "
              f"cpu {r['cpu']:6.2f} s  peak RSS {r['peak_rss_mb']:6.1f} MB")  # fmt: skip
    print(f"  ingest / bare = {result['ratio']:.2f}x wall, {result['cpu_ratio']:.2f}x CPU   "
          "(targets: >= 50,000 rows/s, <= 3x, < 300 MB)")  # fmt: skip
    print(f"  ingest_1 / bare = {result['ratio_one_process']:.2f}x wall (one process, --workers 1)")


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median seconds, rows/s and CPU seconds of a kind's runs, and its largest peak RSS."""
    seconds = statistics.median(r["seconds"] for r in results)
    return {
        "rows": results[0]["rows"],
        "seconds": round(seconds, 3),
        "rows_per_s": round(results[0]["rows"] / seconds, 1),
        "cpu": round(statistics.median(r["cpu"] for r in results), 3),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
    }


if __name__ == "__main__":
    main()

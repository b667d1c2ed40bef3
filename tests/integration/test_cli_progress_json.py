"""Long commands say how far they are on stderr with ``--json`` too; ``--quiet`` (``-q``) or
``ENLACE_PROGRESS=0`` silences them.

Why: ``--json`` is how a cron job or a script reads a command's output, and a batch, a
screening or an import that printed nothing for minutes could not be told from a hung one.
stdout holds only the JSON document, whatever stderr says. The CLI runner's streams are not
terminals, as under cron: the progress comes as plain lines
("matching: 12 of 12 elements (100%, 0 s)").
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bio_support import biometric_agreement, generated, load, strangers
from bio_support import install as install_bio
from match_support import read_csv, serving_holder
from typer.testing import CliRunner

from node.manifests.paxlst_writer import write_paxlst
from node.manifests.sample import sample_manifest

#: "<name>: <count> … (<share>%, <time>)" or, before a total is known, "(<time>)".
LINE = r"[\d,]+( of [\d,]+)?{what} \((\d+%, )?\d+ (min \d+ )?s\)"


def run(args: list[str], env: dict[str, str] | None = None) -> Any:
    """``enlace ARGS`` as a script runs it (no terminal); it must end by exiting."""
    from node.cli.main import app

    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def progress_lines(stderr: str, pattern: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.fullmatch(pattern, line)]


def check(args: list[str], pattern: str, codes: tuple[int, ...] = (0,)) -> Any:
    """With ``--json``: stdout is one JSON document and stderr has the progress lines, the
    last at 100%; with ``--quiet``, ``-q`` or ``ENLACE_PROGRESS=0``: none. The JSON shown."""
    shown = run([*args, "--json"])
    assert shown.exit_code in codes, shown.output
    document = json.loads(shown.stdout)
    lines = progress_lines(shown.stderr, pattern)
    assert lines, shown.stderr
    assert "(100%" in lines[-1], lines
    assert not progress_lines(shown.stdout, pattern)
    for quiet in (
        run([*args, "--json", "--quiet"]),
        run([*args, "--json", "-q"]),
        run([*args, "--json"], env={"ENLACE_PROGRESS": "0"}),
    ):
        assert quiet.exit_code in codes, quiet.output
        json.loads(quiet.stdout)
        assert not progress_lines(quiet.stderr, pattern), quiet.stderr
    return document


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """PAN holds 300 generated records and serves them to CRI under an agreement."""
    return serving_holder(live_federation_factory(), tmp_path_factory.getbasetemp(), 300, 23)


def test_match_batch_and_screen_manifest(fed: Any, tmp_path: Path) -> None:
    home = str(fed.federation.homes["CRI"].root)
    documents = read_csv(fed.files / "travel_documents.csv")[:6]
    queries = tmp_path / "queries.csv"
    with queries.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "document_number", "issuing_state"])
        writer.writerows([f"q{n}", d["document_number"], d["issuing_state"]]
                         for n, d in enumerate(documents))  # fmt: skip
    batch = ["match", "batch", str(queries), "--home", home, "--peer", "PAN"]
    summary = check(batch, "matching: " + LINE.format(what=" elements"))
    assert summary["queries"] == 6

    now = fed.clocks["PAN"].now()
    manifest, _ = sample_manifest(
        {"PAN": fed.files}, travellers=8, seed=3, departure=now + dt.timedelta(hours=2)
    )
    flight = tmp_path / "flight.edi"
    flight.write_text(write_paxlst(manifest, recipient="CRI", prepared_at=now), encoding="utf-8")
    screen = ["screen", "manifest", str(flight), "--home", home, "--out", str(tmp_path / "rep")]
    screening = check(screen, "screening: " + LINE.format(what=" elements"), codes=(0, 3))
    assert screening["manifest_id"]


@pytest.mark.slow
def test_match_biometric_batch(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    live = live_federation_factory(("PAN", "CRI"))
    now = live.clocks["PAN"].now()
    load(live.runtimes["PAN"], generated(tmp_path_factory.getbasetemp(), "PAN"), now)
    install_bio(live.runtimes, biometric_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    np.save(tmp_path / "batch.npy", strangers(3, seed=9))
    cri = str(live.federation.homes["CRI"].root)
    args = ["match", "biometric", "--home", cri, "--batch", str(tmp_path / "batch.npy")]
    report = check(args, "probing: " + LINE.format(what=" probes"))
    assert len(report["probes"]) == 3


def test_ingest(tmp_path: Path) -> None:
    from test_ingest import encounter, write_csv

    home = tmp_path / "home"
    home.mkdir()
    (home / "node.toml").write_text(
        'country = "PAN"\nname = "Panamá"\nendpoint = "127.0.0.1:7001"\n', encoding="utf-8"
    )
    path = write_csv(tmp_path / "e.csv", [encounter(i) for i in range(4)])
    # --dry-run: the same file can be read again and again, nothing is written.
    args = ["ingest", "encounters", str(path), "--home", str(home), "--dry-run"]
    report = check(args, r"e\.csv: [\d,]+ rows read, [\d,]+ rows/s \(\d+%, \d+ s\)")
    assert report["totals"]["rows_read"] == 4


def test_generate(tmp_path: Path) -> None:
    line = "PAN encounters: " + LINE.format(what="")
    args = ["generate", "--country", "PAN", "--encounters", "40", "--seed", "1"]
    summary = check([*args, "--out", str(tmp_path / "out")], line)
    assert summary


def test_ingest_json_says_which_match_filters_it_brought_up_to_date(
    fed: Any, tmp_path: Path
) -> None:
    """With matching on at PAN, an import updates the filters it feeds; ``--json`` says so in
    the document (the lines a terminal gets are not printed with ``--json``)."""
    from match_support import synthetic

    more = synthetic(tmp_path, "PAN", 20, 99)  # the same record ids, other people: --replace
    home = str(fed.federation.homes["PAN"].root)
    args = ["ingest", "encounters", str(more / "encounters.csv"), "--home", home, "--replace"]
    shown = run([*args, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    filters = {f["dataset"]: f for f in document["match_filters"]}
    assert "identities" in filters, document["match_filters"]
    assert filters["identities"]["version"] >= 2
    assert filters["identities"]["records_keyed"] > 0
    assert "match filter identities" not in shown.stderr

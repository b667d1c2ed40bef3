"""``enlace match biometric`` and ``enlace biometric`` against a live holder, as an officer and
an operator use them (the CLI opens the node homes; PAN serves over mutual TLS)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bio_support import (
    biometric_agreement,
    generated,
    install,
    load,
    read_rows,
    recapture,
    strangers,
    template_row,
    vectors,
    write_templates,
)
from typer.testing import CliRunner

from node.cli.main import app


def _run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_an_officer_probes_one_template_then_a_batch_and_the_operator_rotates(
    live_federation_factory: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    files = generated(tmp_path_factory.getbasetemp(), "PAN")
    load(live.runtimes["PAN"], files, now)
    install(live.runtimes, biometric_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    cri, pan = (str(live.federation.homes[c].root) for c in ("CRI", "PAN"))
    rows = read_rows(files / "biometric_templates.csv")
    faces = recapture(vectors(rows[:2]), seed=8)
    one = write_templates(tmp_path / "probe.csv", [template_row("CRIB1", "CRIP1", faces[0])])
    single = _run("match", "biometric", "--home", cri, "--template", str(one), "--json")
    (probe,) = single["probes"]
    by_peer = {r["peer"]: r for r in probe["results"]}
    assert probe["label"] == "CRIB1"
    assert by_peer["PAN"]["result"] in ("strong", "probable")
    assert by_peer["HND"]["result"] == "not granted"
    followed = _run(
        "biometric", "followup", "--home", cri, "--peer", "PAN", "--json",
        "--reference", by_peer["PAN"]["hit_reference"], "--case", "CRI-77",
    )  # fmt: skip
    assert followed["status"] == "released" and followed["released"]["nationality"]
    np.save(tmp_path / "batch.npy", np.concatenate([faces, strangers(1, seed=9)]))
    out = tmp_path / "results.csv"
    batch = _run(
        "match", "biometric", "--home", cri, "--batch", str(tmp_path / "batch.npy"),
        "--peer", "PAN", "--out", str(out), "--json",
    )  # fmt: skip
    assert batch["hits"] == 2 and batch["results_file"] == str(out)
    with out.open(encoding="utf-8", newline="") as handle:
        written = [(r["label"], r["result"]) for r in csv.DictReader(handle)]
    assert [w[0] for w in written] == ["batch#1", "batch#2", "batch#3"]
    assert written[2][1] == "no hit" and all(w[1] != "no hit" for w in written[:2])
    status = _run("biometric", "status", "--home", pan, "--json")
    assert status["epoch"] == 1 and status["granted_peers"] == ["CRI"]
    assert [(g["peer"], g["codes"]) for g in status["galleries"]] == [("CRI", len(rows))]
    rotated = _run("biometric", "rotate-epoch", "--home", pan, "--json")
    assert [(r["peer"], r["epoch"], r["codes"]) for r in rotated] == [("CRI", 2, len(rows))]
    again = _run("match", "biometric", "--home", cri, "--template", str(one), "--json")
    pan_again = next(r for r in again["probes"][0]["results"] if r["peer"] == "PAN")
    assert pan_again["epoch"] == 2 and pan_again["result"] in ("strong", "probable")
    refused = CliRunner().invoke(app, ["match", "biometric", "--home", cri, "--json"])
    assert refused.exit_code == 1
    assert "exactly one of --template FILE and --batch FILE" in refused.stdout


def test_a_batch_whose_results_cannot_be_written_is_refused_before_probing(
    live_federation_factory: Callable[..., Any], tmp_path: Path
) -> None:
    live = live_federation_factory()
    cri = str(live.federation.homes["CRI"].root)
    np.save(tmp_path / "batch.npy", strangers(2, seed=4))
    out = tmp_path / "missing" / "results.csv"
    args = ["match", "biometric", "--home", cri, "--batch", str(tmp_path / "batch.npy")]
    refused = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "--out" in refused.output and "does not exist" in refused.output
    as_dir = CliRunner().invoke(app, [*args, "--out", str(tmp_path), "--json"])
    assert as_dir.exit_code == 1 and "is a directory" in as_dir.stdout

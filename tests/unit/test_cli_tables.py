"""What the CLI prints: peer text is never markup, ids are never cut, reasons are whole.

Why: text in tables and messages comes from peers (refusals, revocation reasons) and files; a
stray ``[/b]`` crashed commands and ``[dimension]`` vanished. Operators copy ids out of tables
into the next command, so a truncated id is a dead end. Everything is printed through the
CLI's own consoles (``node.cli.common``), at a fixed width, and read back from stdout/stderr.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import typer
from rich.table import Table

from node.biometrics.client import BiometricReport, ProbeOutcome
from node.cli import biometric_cmd, common, screen_cmd
from node.cli.node_cmd import peers_table
from node.errors import PeerError
from node.manifests.model import Manifest, Rejected
from node.manifests.screen import Screening

HOSTILE = "Nota [/b] DGME sobre [dimension] y [bold red]"


@pytest.fixture
def width(monkeypatch: pytest.MonkeyPatch) -> object:
    """Both consoles at ``width`` columns (80 unless a test sets another)."""

    def set_width(columns: int) -> None:
        monkeypatch.setattr(common.console, "_width", columns)
        monkeypatch.setattr(common.err_console, "_width", columns)

    set_width(80)
    return set_width


def _column(out: str, index: int) -> str:
    """The characters of one column of a rendered table, in order, without any whitespace
    (so a cell wrapped or folded over several lines reads as it was given)."""
    cells = [line.split("│")[index + 1] for line in out.splitlines() if line.startswith("│")]
    return "".join("".join(cells).split())


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _peer_row(error: str) -> dict[str, object]:
    return {
        "country": "PAN",
        "endpoint": "127.0.0.1:7001",
        "reachable": False,
        "error": error,
        "latency_ms": None,
        "directory_version": None,
        "certificate_expires": dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    }


def test_peer_text_in_a_table_is_printed_literally(width, capsys) -> None:  # type: ignore[no-untyped-def]
    width(200)
    common.console.print(peers_table([_peer_row(HOSTILE)]))
    assert HOSTILE in capsys.readouterr().out


def test_an_error_carrying_markup_is_one_literal_line(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(typer.Exit), common.cli_errors():
        raise PeerError(f"PAN refused: {HOSTILE}", peer="PAN", status_name="UNAVAILABLE")
    assert f"error: PAN refused: {HOSTILE}" in capsys.readouterr().err


def test_the_peers_table_shows_the_whole_error_and_its_hint(width, capsys) -> None:  # type: ignore[no-untyped-def]
    error = (
        "PAN did not answer at 127.0.0.1:7001 within 3.0 s (UNAVAILABLE: connection refused) "
        "— check that PAN's node is running and its endpoint in the directory is right"
    )
    for columns in (80, 250):
        width(columns)
        common.console.print(peers_table([_peer_row(error)]))
        out = capsys.readouterr().out
        assert _column(out, 2) == "no"  # the sentence is below the table, not cut in a column
        below = out.split("└")[1].split("\n", 1)[1]
        assert _squeezed(f"PAN: {error}") in _squeezed(below)
    # As PeerClient words it, the error already starts with the peer: named once, not twice.
    common.console.print(peers_table([_peer_row(f"PAN: UNAVAILABLE — {error}")]))
    below = capsys.readouterr().out.split("└")[1]
    assert _squeezed(f"PAN: UNAVAILABLE — {error}") in _squeezed(below)
    assert "PAN:PAN:" not in _squeezed(below)


def test_the_peers_table_at_80_columns_breaks_no_word(width, capsys) -> None:  # type: ignore[no-untyped-def]
    rows = [
        _peer_row("") | {"country": c, "endpoint": f"{c.lower()}.enlace.example.gob:7443"}
        for c in ("GTM", "HND", "PAN")
    ]
    for row in rows:
        row |= {"reachable": True, "latency_ms": 3.2, "directory_version": 7}
    common.console.print(peers_table(rows))
    out = capsys.readouterr().out
    headers = {w for line in out.splitlines() if line.startswith("┃") for w in line[1:].split()}
    assert headers - {"┃"} == {
        "country",
        "endpoint",
        "reachable",
        "latency",
        "ms",
        "cert",
        "expires",
    }
    cells = [c.strip() for line in out.splitlines() if line.startswith("│ GTM")
             for c in line.split("│")[1:-1]]  # fmt: skip
    assert cells == ["GTM", "gtm.enlace.example.gob:7443", "yes", "3.2", "2027-01-01"]
    assert "directory: v7" in out  # the one version, said once below the table


def test_not_screened_reasons_are_whole_with_their_position(width, capsys) -> None:  # type: ignore[no-untyped-def]
    reasons = (
        "line 17, column birth_date: '31/02/1990' is not a date (use YYYY-MM-DD, YYYY-MM or YYYY)",
        "line 17, column document_number: empty — a traveller needs a document or a birth date",
    )
    manifest = Manifest(
        format="csv",
        sha256="0" * 64,
        reference="BUS-0042",
        rejected=[Rejected(position=16, location="line 17", name="PÉREZ, ANA", reasons=reasons)],
    )
    screening = Screening(manifest, "identity_verification", [], [], 0, 0.0)
    common.console.print(screen_cmd._table(screening))
    result = _column(capsys.readouterr().out, 4)
    assert result == _squeezed("NOT SCREENED: " + "; ".join(reasons))


def test_a_hit_reference_is_shown_whole_at_80_columns(width, capsys) -> None:  # type: ignore[no-untyped-def]
    reference = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"  # 40 hex digits, single-use
    report = BiometricReport(
        ["probe-0001"],
        [
            ProbeOutcome(
                0, "PAN", "strong", reference=reference, agreement="PAN-CRI-2027-01", epoch=3
            ),
            ProbeOutcome(0, "HND", "error", code="UNAVAILABLE", detail=HOSTILE),
        ],
        0.5,
    )
    common.console.print(biometric_cmd._table(report, "biometric probe probe-0001"))
    out = capsys.readouterr().out
    assert reference in out.split()  # on one line, uncut
    assert _squeezed(f"UNAVAILABLE: {HOSTILE}") in _column(out, 2)
    assert "probe: probe-0001" in out.splitlines()  # the one probe, below the table


def test_id_columns_stay_whole_and_fold_rather_than_cut_when_nothing_fits(width, capsys) -> None:  # type: ignore[no-untyped-def]
    fingerprint = "sha256:" + "2383d46edd8bf493" * 4
    table = Table()
    common.text_column(table, "country")
    common.id_column(table, "fingerprint")
    table.add_row("PAN", fingerprint)
    common.console.print(table)
    assert fingerprint in capsys.readouterr().out.split()  # the other column gave way
    width(40)  # the id alone does not fit: it folds, every character kept
    common.console.print(table)
    assert _column(capsys.readouterr().out, 1) == fingerprint


def test_cli_code_styles_with_text_objects_and_column_helpers_only() -> None:
    """The invariants hold by construction: no markup tags in strings, no Console other than
    the two in common.py, and every table column added through id_column / text_column."""
    root = Path(common.__file__).parent
    sources = [*root.glob("*.py"), *(root.parent / "demo").glob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\[/\]|\[(bold|green|red|yellow|dim)[ \]]", text), path
        if path.name != "common.py":
            assert "Console(" not in text, path
            assert ".add_column(" not in text, path
        for column in re.findall(r"TextColumn\((.*?)\)", text, flags=re.S):
            assert "markup=False" in column, path


def test_at_40_columns_no_peer_value_vanishes(width, capsys) -> None:  # type: ignore[no-untyped-def]
    """Too narrow even for the columns that give way: the others follow, listed by country
    below the table, rather than squeezed to nothing beside the endpoint."""
    width(40)
    row = _peer_row("PAN: UNAVAILABLE") | {
        "endpoint": "pan.enlace.example.gob:7443",
        "latency_ms": None,
        "directory_version": 7,
    }
    gtm = row | {"country": "GTM", "reachable": True, "endpoint": "gtm.enlace.example.gob:7443"}
    common.console.print(peers_table([row, gtm]))
    out = capsys.readouterr().out
    for value in (
        "gtm.enlace.example.gob:7443",
        "country GTM: yes",
        "country PAN: no",
        "2027-01-01",
    ):
        assert value in out, out

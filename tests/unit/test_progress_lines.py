"""Long commands report progress off a terminal too: plain lines on stderr, never on stdout.

Why: rich draws its bar only on a terminal. Run from cron or ``ssh host enlace match rebuild``
(no TTY), a rebuild of a large holder printed nothing for a minute and looked hung. The one
``progress_bar`` of the CLI (every command with a bar uses it) now writes a line
per task every tenth of its total or every few seconds, and at its end; on a terminal the bar
is unchanged.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from node.cli import common
from node.cli.progress import LINE_SECONDS, CommandProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr in an operator's shell does."""

    def isatty(self) -> bool:
        return True


def _stderr(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> io.StringIO:
    """Stand in for the CLI's stderr console: a terminal or not."""
    stream = Terminal() if terminal else io.StringIO()
    console = Console(file=stream, force_terminal=terminal, width=80, markup=False)
    monkeypatch.setattr(common, "err_console", console)
    return stream


def _bar(*args: object, **kwargs: object) -> CommandProgress:
    bar = common.progress_bar(*args, **kwargs)  # type: ignore[arg-type]
    assert isinstance(bar, CommandProgress)
    return bar


def test_off_a_terminal_a_line_every_tenth_and_at_the_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = _stderr(monkeypatch, terminal=False)
    bar = _bar(unit="records evaluated")
    assert bar.plain
    clock = bar.clock = Clock()
    with bar:
        task = bar.add_task("travel_documents", total=1_000_000)
        for done in range(0, 1_000_001, 25_000):
            clock.now += 0.5
            bar.update(task, completed=done, total=1_000_000)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "travel_documents: 0 of 1,000,000 records evaluated (0%, 0 s)"
    assert lines[2] == "travel_documents: 200,000 of 1,000,000 records evaluated (20%, 4 s)"
    assert lines[-1] == "travel_documents: 1,000,000 of 1,000,000 records evaluated (100%, 20 s)"
    assert len(lines) == 11  # 0 %, then one per tenth; stopping adds nothing already said
    assert all(re.fullmatch(r"travel_documents: [\d,]+ of 1,000,000 .*\)", x) for x in lines)
    assert "\x1b" not in stream.getvalue()  # plain text, no cursor movement or colour
    assert capsys.readouterr().out == ""  # stdout is left to tables and --json


def test_a_total_not_known_yet_gets_a_line_every_few_seconds_and_the_last_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = _stderr(monkeypatch, terminal=False)
    bar = _bar("matching")
    clock = bar.clock = Clock()
    with bar:
        task = bar.add_task("elements", total=None)
        for done in range(0, 50):
            clock.now += 1.0
            bar.update(task, completed=done)
    lines = stream.getvalue().splitlines()
    # The first report, one per LINE_SECONDS while it moves, and where it stopped.
    assert lines[0] == "matching: 0 elements (1 s)"
    assert lines[1] == f"matching: {int(LINE_SECONDS)} elements ({int(LINE_SECONDS) + 1} s)"
    assert lines[-1] == "matching: 49 elements (50 s)"
    assert len(lines) == 6


def test_a_status_gets_its_own_line_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _stderr(monkeypatch, terminal=False)
    with _bar(unit="records evaluated") as bar:
        task = bar.add_task("identities", total=100)
        bar.update(task, completed=0, total=100)
        bar.update(task, completed=100, total=100, status="writing, publishing")
        bar.update(task, completed=100, total=100, status="writing, publishing")
        empty = bar.add_task("document_alerts", total=0)
        bar.update(empty, completed=0, total=0, status="writing, publishing")
    assert stream.getvalue().splitlines() == [
        "identities: 0 of 100 records evaluated (0%, 0 s)",
        "identities: 100 of 100 records evaluated (100%, 0 s)",
        "identities: writing, publishing",
        "document_alerts: 0 of 0 records evaluated (100%, 0 s)",
        "document_alerts: writing, publishing",
    ]


def test_on_a_terminal_the_rich_bar_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _stderr(monkeypatch, terminal=True)
    bar = _bar(unit="records evaluated")
    assert not bar.plain
    with bar:
        task = bar.add_task("travel_documents", total=1000)
        bar.update(task, completed=500, total=1000, refresh=True)
    drawn = stream.getvalue()
    assert "500/1000" in drawn and "━" in drawn
    assert "records evaluated" not in drawn


@pytest.mark.parametrize("terminal", [False, True])
def test_a_disabled_progress_says_nothing(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    stream = _stderr(monkeypatch, terminal=terminal)
    with _bar("matching", disable=True) as bar:
        task = bar.add_task("elements", total=10)
        for done in range(11):
            bar.update(task, completed=done)
    assert stream.getvalue() == ""


def test_a_detail_replaces_the_count_and_its_change_is_movement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``enlace ingest``: the bar is the file's bytes, the count its rows; an XLSX file tells
    no byte position until its end, yet its rows get a line every few seconds."""
    stream = _stderr(monkeypatch, terminal=False)
    bar = _bar()
    clock = bar.clock = Clock()
    with bar:
        task = bar.add_task("people.xlsx", total=4_000, started=clock.now - 2)
        for rows in (1_000, 2_000):
            bar.update(task, completed=0, detail=f"{rows:,} rows read")
            clock.now += LINE_SECONDS
        bar.update(task, completed=4_000, detail="3,000 rows read")
    assert stream.getvalue().splitlines() == [
        "people.xlsx: 1,000 rows read (0%, 2 s)",
        "people.xlsx: 2,000 rows read (0%, 12 s)",
        "people.xlsx: 3,000 rows read (100%, 22 s)",
    ]
    shown = Terminal()
    console = Console(file=shown, force_terminal=True, width=80, markup=False)
    monkeypatch.setattr(common, "err_console", console)
    live = _bar()
    with live:
        live.add_task("people.xlsx", total=4_000, detail="[b]3,000 rows read")
        live.refresh()
    assert "[b]3,000 rows read" in shown.getvalue()  # literal, never markup


def test_on_an_80_column_terminal_a_task_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file name, the bar, ingest's detail and the time fit 80 columns: the detail does not
    wrap onto a line of its own under every bar."""
    stream = _stderr(monkeypatch, terminal=True)
    console = common.err_console
    bar = _bar()
    task = bar.add_task("encounters-2026-q3.csv", total=1000)
    bar.update(task, completed=300, detail="120,000 rows read, 41,000 rows/s")
    long = bar.add_task("registro-de-encuentros-migratorios-2026-tercer-trimestre.csv", total=9)
    bar.update(long, completed=3, detail="120,000 rows read, 41,000 rows/s")
    console.print(bar.get_renderable())
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert len(lines) == 2, lines  # one per task
    assert all("120,000 rows read, 41,000 rows/s" in line for line in lines)
    assert "encounters-2026-q3.csv" in lines[0]
    assert "registro-de-encuentros-…" in lines[1]  # a long name gives way, not the detail


def test_off_a_terminal_advance_and_track_report_too(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _stderr(monkeypatch, terminal=False)
    bar = _bar(unit="rows")
    clock = bar.clock = Clock()
    with bar:
        task = bar.add_task("encounters.csv", total=10)
        for _ in range(10):
            clock.now += 1.0
            bar.advance(task)
        for _ in bar.track(range(4), description="matrices.csv"):
            clock.now += 1.0
    lines = stream.getvalue().splitlines()
    assert lines[0] == "encounters.csv: 1 of 10 rows (10%, 1 s)"
    assert "encounters.csv: 10 of 10 rows (100%, 10 s)" in lines
    assert any(line.startswith("matrices.csv: 4 of 4 rows (100%") for line in lines)


@pytest.mark.parametrize(
    "environ", [{"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}, {"TERM": "dumb", "FORCE_COLOR": "1"}]
)
def test_forced_colour_off_a_terminal_still_gets_plain_lines(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    """CI and some cron setups set FORCE_COLOR (or TTY_COMPATIBLE) to keep colour: rich then
    takes any file for a terminal, and a bar redrawn there is a wall of escape sequences."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()  # a log file, a cron mail: not a TTY
    monkeypatch.setattr(common, "err_console", Console(file=stream, width=80, markup=False))
    assert common.err_console.is_terminal  # what rich believes
    clock = Clock()
    with common.progress_bar("matching", unit="elements") as bar:
        bar.clock = clock
        task = bar.add_task("matching", total=10)
        clock.now += 1
        bar.update(task, completed=10)
    text = stream.getvalue()
    assert "\x1b" not in text and "matching: 10 of 10 elements (100%" in text, repr(text)

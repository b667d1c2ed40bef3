"""The CLI's consoles print a peer's words, never the terminal commands hidden in them.

Why: refusal reasons, released values and names in answers come from other nodes, and a
terminal obeys control characters: ``ESC [2J`` clears the screen, a carriage return rewrites
the line, ``ESC ]8;;`` plants a hyperlink. Answers are checked where they are taken; the
consoles are the last line, for every table, error and line the CLI prints.
"""

from __future__ import annotations

import io

from rich.table import Table
from rich.text import Text

from node.cli import common
from node.cli.common import SafeConsole

HOSTILE = "PAN\x1b[2J\x1b]8;;http://x\x07link\x1b]8;;\x07\rforged\x00\x9b31m\x7f"


def _printed(terminal: bool, *renderables: object, style: str = "") -> str:
    stream = io.StringIO()
    console = SafeConsole(file=stream, force_terminal=terminal, markup=False, width=100)
    for renderable in renderables:
        console.print(renderable, style=style)
    return stream.getvalue()


def _table() -> Table:
    table = Table()
    table.add_column("reason")
    table.add_row(HOSTILE)
    return table


def test_no_control_character_of_a_peers_text_reaches_the_terminal() -> None:
    out = _printed(False, HOSTILE, Text(HOSTILE), _table(), "tab\there\nnext line")
    for control in ("\x1b", "\x07", "\r", "\x00", "\x9b", "\x7f"):
        assert control not in out, repr(out)
    assert "PAN\ufffd[2J" in out and "forged" in out  # shown, made harmless
    assert "tab     here\nnext line" in out  # tabs (expanded) and line breaks are text


def test_the_consoles_own_styling_still_reaches_the_terminal() -> None:
    out = _printed(True, HOSTILE, style="red")
    assert "\x1b[31m" in out  # rich's colour
    assert "\x1b[2J" not in out and "\x1b]8;;" not in out  # not the peer's commands


def test_a_progress_bar_still_draws_on_a_safe_console(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    monkeypatch.setattr(
        common, "err_console", SafeConsole(file=stream, force_terminal=True, width=80)
    )
    with common.progress_bar() as bar:
        task = bar.add_task("encounters.csv", total=10)
        bar.update(task, completed=5, refresh=True)
    assert "━" in stream.getvalue()


def test_the_cli_prints_through_safe_consoles() -> None:
    assert isinstance(common.console, SafeConsole)
    assert isinstance(common.err_console, SafeConsole)

"""Shared CLI plumbing: the ``--home``/``--json`` options, output and error reporting.

Commands stay thin: they parse options, call the domain API, and print either a rich table
or JSON. Every error becomes one line on stderr and a non-zero exit code.

Invariants of what is printed:

* No text is ever parsed as rich markup. Much of it comes from peers (revocation reasons,
  refusals, dimension values) or from files, and a stray ``[/b]`` would crash the command
  (or ``[dimension]`` vanish). Both consoles are created with ``markup=False``; styling is
  applied with :class:`rich.text.Text` objects (:func:`styled`, :func:`error_line`,
  :func:`warning_line`) and ``style=`` arguments, never with ``[tags]`` in strings.
* Identifiers an operator copies (ids, references, hashes, fingerprints, key ids) are never
  truncated in tables: add their columns with :func:`id_column`. Every other column is added
  with :func:`text_column`, which folds long text instead of cutting it.
* Tables are :class:`FittedTable`: on a narrow terminal no word is broken in the middle. Each
  text column is at least as wide as its longest word; the columns an operator can do without
  (``text_column(..., drop=n)``) are left out first, and said below the table.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType, RenderResult
from rich.measure import Measurement
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

from crypto.errors import CryptoError
from node.cli.files import file_error
from node.errors import EnlaceError, InvalidArgumentError, from_policy
from node.peer_checks import CONTROL_IN_TEXT
from policies.errors import PolicyError

if TYPE_CHECKING:
    from node.cli.progress import CommandProgress
    from node.runtime import NodeRuntime


class SafeConsole(Console):
    """A console that prints text, never terminal commands hidden in it.

    Peers' words reach the operator's terminal (refusal reasons, released values, names in
    answers), and a terminal obeys the control characters in what it is sent: an ESC sequence
    can clear the screen, rewrite earlier lines or plant a hyperlink. Answers are checked where
    they are taken (``node.peer_checks``); this is the last line: each control character in a
    segment of text (not line feeds or tabs) is printed as U+FFFD. rich's own styling and
    cursor control (control segments) pass unchanged.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment
            if segment.control or not CONTROL_IN_TEXT.search(segment.text)
            else Segment(CONTROL_IN_TEXT.sub("\ufffd", segment.text), segment.style)
            for segment in buffer
        )


console = SafeConsole(markup=False)
err_console = SafeConsole(stderr=True, markup=False)

HomeOption = Annotated[
    Path,
    typer.Option("--home", envvar="ENLACE_HOME", help="Node home directory.", show_default=True),
]
JsonOption = Annotated[
    bool, typer.Option("--json", envvar="ENLACE_JSON", help="Print machine-readable JSON.")
]
#: Progress of a long command on stderr, with ``--json`` too (stdout keeps only the JSON);
#: ``--quiet``/``-q``, or ``ENLACE_PROGRESS=0`` as the default of every command, silences it.
ProgressOption = Annotated[
    bool,
    typer.Option(
        "--progress/--quiet",
        " /-q",
        envvar="ENLACE_PROGRESS",
        help="Show progress on stderr (also with --json); --quiet or ENLACE_PROGRESS=0: none.",
    ),
]

T = TypeVar("T")


def styled(text: object, style: str) -> Text:
    """``text`` (taken literally, never as markup) in ``style``."""
    return Text(str(text), style=style)


def error_line(message: object) -> Text:
    """``error: <message>``, the label in bold red, the message literal."""
    return Text.assemble(("error:", "bold red"), " ", str(message))


def warning_line(label: str, message: object) -> Text:
    """``<label> <message>``, the label in yellow, the message literal."""
    return Text.assemble((label, "yellow"), " ", str(message))


class _IdColumn(Column):
    """A column of identifiers: it does not give way when the table is squeezed (other
    columns wrap first), and if the terminal is too narrow even for it, its cells fold onto
    the next line instead of being cut."""

    @property
    def cells(self) -> Iterable[RenderableType]:
        for cell in self._cells:
            if isinstance(cell, str):
                yield Text(cell, no_wrap=False, overflow="fold")
            elif isinstance(cell, Text):
                folded = cell.copy()
                folded.no_wrap, folded.overflow = False, "fold"
                yield folded
            else:
                yield cell


def id_column(table: Table, header: str, *, justify: JustifyMethod = "left") -> None:
    """Add a column of identifiers (ids, references, hashes, fingerprints, key ids): shown
    whole, on one line, because operators copy them into other commands or read them out.

    The other columns wrap to make room, so use it for values that fit beside them (up to
    40 characters or so); a 64-digit hash in a wide table is better in a :func:`text_column`
    (whole, folded) or on a line of its own below the table.
    """
    table.columns.append(
        _IdColumn(
            header=header,
            justify=justify,
            no_wrap=True,
            overflow="fold",
            highlight=table.highlight,
            _index=len(table.columns),
        )
    )


@dataclass
class _PlainColumn(Column):
    """A column of text, with what :class:`FittedTable` needs to lay it out when narrow."""

    drop: int = 0
    longest_word: int = 24


def text_column(
    table: Table,
    header: str,
    *,
    justify: JustifyMethod = "left",
    drop: int = 0,
    longest_word: int = 24,
) -> None:
    """Add a column of text that wraps at spaces and folds only a word too long for any
    terminal (never ends in an ellipsis).

    In a :class:`FittedTable` the column is never narrower than its longest word (up to
    ``longest_word`` characters: a longer one, a path or a hash in a message, may fold). A
    column with ``drop`` > 0 is one an operator can do without: when the terminal is too narrow
    for every column, such columns are left out (highest ``drop`` first) and said below the
    table; one whose value is the same on every row is shown below the table instead.
    """
    table.columns.append(
        _PlainColumn(
            header=header,
            justify=justify,
            overflow="fold",
            highlight=table.highlight,
            _index=len(table.columns),
            drop=drop,
            longest_word=longest_word,
        )
    )


def _plain(cell: RenderableType) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class FittedTable(Table):
    """A :class:`rich.table.Table` that fits the terminal without breaking a word in the
    middle ("approv|ed", "2027-0|3-14").

    rich narrows the widest columns first, down to a few characters, whatever they hold. When
    every column does not fit at its natural width, this table instead gives each text column
    at least its longest word, and the rest of the width in proportion to what each would use;
    :func:`id_column` columns keep their whole width. If even that does not fit, the columns
    added with ``drop`` are taken out (highest first): one whose value is the same on every row
    is printed below the table as ``header: value``; the others are named below the table, with
    their values keyed by ``key`` (the header of a column naming the rows) if the table has
    one, else with ``hidden_hint`` (where to see them). In a table with a ``key``, on a terminal
    too narrow even then (40 columns), the other text columns follow, rightmost first, so no
    value is squeezed out of sight.
    """

    def __init__(
        self,
        *args: Any,
        key: str | None = None,
        hidden_hint: str = "see --json, or widen the terminal",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.key, self.hidden_hint = key, hidden_hint

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.width is not None or not self.columns:
            yield from super().__rich_console__(console, options)
            return
        table, notes = self._fitted(console, options)
        yield from Table.__rich_console__(table, console, options)
        yield from notes

    def _content_width(self, columns: list[Column]) -> int:
        """The width of everything but cell content, for a table of ``columns``."""
        trial = copy.copy(self)
        trial.columns = columns
        return trial._extra_width + sum(trial._get_padding_width(i) for i in range(len(columns)))

    def _fitted(self, console: Console, options: ConsoleOptions) -> tuple[Table, list[Text]]:
        wide = options.update_width(10_000)
        low: dict[int, int] = {}
        high: dict[int, int] = {}
        for column in self.columns:
            cells = [column.header, *column.cells]
            measures = [Measurement.get(console, wide, c) for c in cells]
            high[id(column)] = max(m.maximum for m in measures)
            if isinstance(column, _IdColumn):
                low[id(column)] = high[id(column)]
            else:
                words = [cell_len(w) for c in cells for w in _plain(c).split()] or [1]
                cap = column.longest_word if isinstance(column, _PlainColumn) else 24
                low[id(column)] = min(max(words), cap)

        def room(columns: list[Column]) -> int:
            return options.max_width - self._content_width(columns)

        kept = list(self.columns)
        if sum(high[id(c)] for c in kept) <= room(kept):
            return self, []
        shared: list[Column] = []

        def same(column: Column) -> bool:
            return len(self.rows) > 0 and len({_plain(x) for x in column.cells}) == 1

        # A value shared by every row is said once below the table (nothing is lost), so those
        # columns go first; then the others, highest ``drop`` first.
        optional = sorted(
            (c for c in kept if isinstance(c, _PlainColumn) and c.drop > 0),
            key=lambda c: (not same(c), -c.drop, -c._index),
        )
        droppable: list[Column] = list(optional)
        # On a very narrow terminal (40 columns) even that may not fit: then the other text
        # columns give way too, rightmost first, but never the key naming the rows, so every
        # value is still said (below the table, by row) rather than squeezed to nothing.
        last_resort = [
            c
            for c in reversed(kept)
            if not isinstance(c, _IdColumn)
            and c not in droppable
            and _plain(c.header) != self.key
            and self.key is not None
        ]
        droppable += last_resort
        hidden: list[Column] = []
        while droppable and sum(low[id(c)] for c in kept) > room(kept):
            column = droppable.pop(0)
            kept.remove(column)
            (shared if same(column) else hidden).append(column)
        shared.sort(key=lambda c: c._index)
        hidden.sort(key=lambda c: c._index)
        notes = [Text(f"{_plain(c.header)}: {_plain(next(iter(c.cells)))}") for c in shared]
        if hidden:
            notes.extend(self._hidden(hidden, options.max_width))
        table = copy.copy(self)
        table.columns = []
        for index, original in enumerate(kept):
            column = copy.copy(original)
            column._index = index
            table.columns.append(column)
        spare = room(table.columns) - sum(low[id(c)] for c in kept)
        if spare >= 0:
            # The columns that need least are made whole first: as many cells as possible on
            # one line; what is left goes to the next one.
            widths = {id(c): low[id(c)] for c in kept}
            for column in sorted(kept, key=lambda c: high[id(c)] - low[id(c)]):
                given = min(spare, high[id(column)] - low[id(column)])
                widths[id(column)] += given
                spare -= given
            for original, column in zip(kept, table.columns, strict=True):
                column.width = widths[id(original)]
        return table, notes

    def _hidden(self, columns: list[Column], width: int) -> list[Text]:
        """Lines below the table for the columns left out."""
        key = next((c for c in self.columns if _plain(c.header) == self.key), None)
        if key is None:
            names = ", ".join(_plain(c.header) for c in columns)
            return [Text(f"not shown at {width} columns: {names} ({self.hidden_hint})")]
        name = _plain(key.header)
        keys = [f"{name}{'' if name == '#' else ' '}{_plain(k)}" for k in key.cells]
        lines: list[Text] = []
        for column in columns:
            lines.append(Text(f"{_plain(column.header)}:"))
            lines.extend(
                Text(f"  {k}: {_plain(v)}") for k, v in zip(keys, column.cells, strict=False)
            )
        return lines


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (dates and paths rendered as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


@contextmanager
def cli_errors(as_json: bool = False) -> Iterator[None]:
    """Turn domain errors, files that cannot be opened and a failing database into one line
    on stderr (or a JSON object) and exit code 1. A database failure's traceback goes to the
    log at DEBUG (``ENLACE_LOG_LEVEL=DEBUG``), never its SQL or parameters to the screen."""
    try:
        try:
            yield
        except (PolicyError, CryptoError) as exc:
            raise from_policy(exc) from exc
        except OSError as exc:
            if exc.filename is None:  # not a file the user named: a fault, with its traceback
                raise
            raise file_error(exc) from exc
        except Exception as exc:
            if "node.store" not in sys.modules:  # no database was opened: not one failing
                raise
            from node.store.failures import reported_failure

            failure = reported_failure(exc)
            if failure is None:
                raise
            raise failure from exc
    except EnlaceError as exc:
        if as_json:
            print_json({"error": exc.message, "hint": exc.hint, "status": exc.status_name})
        else:
            err_console.print(error_line(exc), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def parse_moment(text: str, option: str) -> dt.datetime:
    """An ISO 8601 date or date-time as a UTC instant: a given offset is honoured (converted),
    a moment without one is taken as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgumentError(
            f"{text!r} is not a date or a date-time",
            field=option,
            hint="write 2026-11-28, 2026-11-28T13:20:00Z or 2026-11-28T08:20:00-05:00",
        ) from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def member_country(code: str, option: str, *, secretariat: bool = True) -> str:
    """``code`` (any case) if it names a member of the CRM (or, if ``secretariat``, the
    Secretariat's ``CRM``); otherwise refuse, with the close codes."""
    from node.records.codelists import REGIONAL_MEMBERS, suggest_codes
    from node.trust.member import SECRETARIAT_COUNTRY

    allowed = [*REGIONAL_MEMBERS, *([SECRETARIAT_COUNTRY] if secretariat else [])]
    wanted = code.strip().upper()
    if wanted in allowed:
        return wanted
    close = suggest_codes(wanted, allowed)
    raise InvalidArgumentError(
        f"{code!r} is not a member of the CRM",
        field=option,
        hint=(f"did you mean {', '.join(close)}? " if close else "")
        + f"members: {', '.join(allowed)}",
    )


#: A task's name (longer ones end in "…"), its bar, a detail such as "120,000 rows read,
#: 41,000 rows/s" and the time fit one line of an 80-column terminal; the detail never wraps.
NAME_WIDTH, BAR_WIDTH = 24, 12


def progress_bar(label: str = "", *, disable: bool = False, unit: str = "") -> CommandProgress:
    """The CLI's progress on stderr (stdout stays for tables and JSON). On a terminal, a bar:
    ``label`` (or each task's description, when empty; never parsed as markup), bar,
    done/total, time elapsed; it disappears when done. Off a terminal (cron, ssh without a
    TTY, a pipe), a plain line per task every tenth of its total or every few seconds, and at
    its end: "travel_documents: 200,000 of 1,000,000 records evaluated (20%, 11 s)", where
    ``unit`` names what is counted when there is no ``label`` (see
    :class:`node.cli.progress.CommandProgress`). A task with a ``detail`` field shows it
    instead of done/total ("12,000 rows read, 4,100 rows/s"). ``disable``: nothing, on a
    terminal or not (commands pass ``not progress``, from :data:`ProgressOption`)."""
    from node.cli.progress import CommandProgress, CountColumn

    return CommandProgress(
        TextColumn(
            label or "{task.description}",
            markup=False,
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=NAME_WIDTH),
        ),
        BarColumn(bar_width=BAR_WIDTH),
        CountColumn(table_column=Column(no_wrap=True)),
        TimeElapsedColumn(),
        console=err_console,
        label=label,
        unit=unit,
        disable=disable,
    )


@contextmanager
def node_runtime(home: Path) -> Iterator[NodeRuntime]:
    """The runtime of the node at ``home``, closed on the way out."""
    from node.home import NodeHome
    from node.runtime import open_runtime

    runtime = open_runtime(NodeHome(home))
    try:
        yield runtime
    finally:
        runtime.close()


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator form of :func:`cli_errors` for commands whose JSON flag is named ``as_json``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with cli_errors(bool(kwargs.get("as_json", False))):
            return fn(*args, **kwargs)

    return wrapper

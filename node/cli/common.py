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
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console, JustifyMethod, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from crypto.errors import CryptoError
from node.errors import EnlaceError, InvalidArgumentError, from_policy
from policies.errors import PolicyError

if TYPE_CHECKING:
    from node.runtime import NodeRuntime

console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

HomeOption = Annotated[
    Path,
    typer.Option("--home", envvar="ENLACE_HOME", help="Node home directory.", show_default=True),
]
JsonOption = Annotated[
    bool, typer.Option("--json", envvar="ENLACE_JSON", help="Print machine-readable JSON.")
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


def text_column(table: Table, header: str, *, justify: JustifyMethod = "left") -> None:
    """Add a column of text that wraps and folds (never ends in an ellipsis)."""
    table.add_column(header, justify=justify, overflow="fold")


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (dates and paths rendered as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


def _file_error(exc: OSError) -> InvalidArgumentError:
    """A file the user named cannot be read or written: say which, and why, in one line."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        hint = "check the path (relative paths start from the current directory)"
    elif isinstance(exc, (IsADirectoryError, NotADirectoryError)):
        hint = "give the path of a file"
    elif isinstance(exc, PermissionError):
        hint = "check the file's permissions, or run as the node's user"
    else:
        hint = "check the path and the disk"
    return InvalidArgumentError(f"{exc.filename}: {reason}", hint=hint)


@contextmanager
def cli_errors(as_json: bool = False) -> Iterator[None]:
    """Turn domain errors, and files that cannot be opened, into one line on stderr (or a JSON
    object) and exit code 1."""
    try:
        try:
            yield
        except (PolicyError, CryptoError) as exc:
            raise from_policy(exc) from exc
        except OSError as exc:
            if exc.filename is None:  # not a file the user named: a fault, with its traceback
                raise
            raise _file_error(exc) from exc
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


def progress_bar(label: str = "", *, disable: bool = False, unit: str = "") -> Progress:
    """The CLI's progress on stderr (stdout stays for tables and JSON). On a terminal, a bar:
    ``label`` (or each task's description, when empty; never parsed as markup), bar,
    done/total, time elapsed; it disappears when done. Off a terminal (cron, ssh without a
    TTY, a pipe), a plain line per task every tenth of its total or every few seconds, and at
    its end: "travel_documents: 200,000 of 1,000,000 records evaluated (20%, 11 s)", where
    ``unit`` names what is counted when there is no ``label`` (see
    :class:`node.cli.progress.CommandProgress`). ``disable``: nothing, on a terminal or not."""
    from node.cli.progress import CommandProgress

    return CommandProgress(
        TextColumn(label or "{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        label=label,
        unit=unit,
        disable=disable,
    )


def read_text_file(path: Path) -> str:
    """A UTF-8 text file the user named; one that is not UTF-8 is an error naming the byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidArgumentError(
            f"{path}: not UTF-8 (line {line}, byte {exc.start})",
            hint="save the file as UTF-8 (in most editors: Save as, encoding UTF-8)",
        ) from None


def read_json_file(path: Path) -> Any:
    """A JSON file the user named; one that does not parse is an error naming line and column."""
    try:
        return json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint="give the file the command expects (see its --help)",
        ) from None


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


def check_writable(paths: tuple[Path, ...], option: str) -> None:
    """Refuse output files that cannot be written, before any work is done.

    Why: a screening or a biometric search costs quota at the peers and its hit references are
    single-use; finding out afterwards that the report cannot be written would lose them.
    """
    for path in paths:
        parent = path.parent
        fix = f"give {option} a path in an existing, writable directory"
        if path.is_dir():
            raise InvalidArgumentError(f"{path} is a directory", field=option, hint=fix)
        if not parent.is_dir():
            raise InvalidArgumentError(f"directory {parent} does not exist", field=option, hint=fix)
        target = path if path.exists() else parent
        too_long = len(path.name.encode()) > os.pathconf(parent, "PC_NAME_MAX")
        if too_long or not os.access(target, os.W_OK):
            raise InvalidArgumentError(f"{path} cannot be written", field=option, hint=fix)

"""Shared CLI plumbing: the ``--home``/``--json`` options, output and error reporting.

Commands stay thin: they parse options, call the domain API, and print either a rich table
or JSON. Every error becomes one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from crypto.errors import CryptoError
from node.errors import EnlaceError, InvalidArgumentError, from_policy
from policies.errors import PolicyError

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path,
    typer.Option("--home", envvar="ENLACE_HOME", help="Node home directory.", show_default=True),
]
JsonOption = Annotated[
    bool, typer.Option("--json", envvar="ENLACE_JSON", help="Print machine-readable JSON.")
]

T = TypeVar("T")


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (dates and paths rendered as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False))
    sys.stdout.write("\n")


@contextmanager
def cli_errors(as_json: bool = False) -> Iterator[None]:
    """Turn domain errors into one line on stderr (or a JSON object) and exit code 1."""
    try:
        try:
            yield
        except (PolicyError, CryptoError) as exc:
            raise from_policy(exc) from exc
    except EnlaceError as exc:
        if as_json:
            print_json({"error": exc.message, "hint": exc.hint, "status": exc.status_name})
        else:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


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

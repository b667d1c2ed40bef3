"""Files the operator names on the command line: read whole, checked, or refused in one line.

Why: an error about a file must say which file and what to do (the path, the line and
column of a JSON mistake, the byte that is not UTF-8), and an output file that cannot be
written must be refused before any work is done, not after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from node.errors import InvalidArgumentError


def file_error(exc: OSError) -> InvalidArgumentError:
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

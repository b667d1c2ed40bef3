"""Running ``enlace`` in-process as a user would, for the CLI tests."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner


def enlace(*args: str) -> Any:
    """The command's result; it must end by exiting (any code), never by a traceback."""
    from node.cli.main import app

    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result

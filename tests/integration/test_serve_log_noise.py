"""A served node's log holds its own lines; other libraries' INFO chatter only at DEBUG.

Why: at ``ENLACE_LOG_LEVEL=INFO`` (what the systemd unit and the compose file set) an
operator's first screen of ``enlace serve`` was alembic's "Context impl SQLiteImpl." and
faiss's "Loading faiss with AVX2 support." — lines that say nothing about the node. They are
left out below DEBUG in one place (``node.ops.logging_json.install``), and kept at DEBUG.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest

from node.demo.federation import create_federation
from node.demo.processes import NodeProcess
from node.ops.logging_json import ThirdPartyFilter, own_logger

THIRD_PARTY = ("alembic", "faiss", "apscheduler")


@pytest.fixture(scope="module")
def pan(tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fed = create_federation(tmp_path_factory.mktemp("noise"), ("PAN", "CRI"), now)
    return NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))


def _served_log(node: NodeProcess, env: dict[str, str] | None) -> list[str]:
    """The log lines of one start of ``enlace serve``, up to a clean stop; ``env`` None:
    without ``ENLACE_LOG_LEVEL``, so that ``log_level`` of ``node.toml`` decides."""
    log_path = node.home.root / "serve.log"
    log_path.unlink(missing_ok=True)
    if env is None:
        plain = {k: v for k, v in os.environ.items() if k != "ENLACE_LOG_LEVEL"}
        with log_path.open("ab") as log:
            node.process = subprocess.Popen(
                [sys.executable, "-m", "node.cli.main", "serve", "--home", str(node.home.root)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=plain,
                start_new_session=True,
            )
    else:
        node.start(env)
    try:
        node.wait_ready(time.monotonic() + 60)
    finally:
        code = node.stop()
    assert code == 0, log_path.read_text()
    return log_path.read_text(encoding="utf-8").splitlines()


def _logger_of(line: str, as_json: bool) -> str:
    if as_json:
        return str(json.loads(line)["logger"]) if line.startswith("{") else ""
    parts = line.split(" ", 4)  # "2026-11-29 14:14:21,675 INFO alembic.runtime.migration: …"
    return parts[3].rstrip(":") if len(parts) > 3 and parts[2].isupper() else ""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_at_info_the_start_up_log_holds_only_the_nodes_lines(pan: NodeProcess, fmt: str) -> None:
    lines = _served_log(pan, {"ENLACE_LOG_LEVEL": "INFO", "ENLACE_LOG_FORMAT": fmt})
    loggers = [_logger_of(line, fmt == "json") for line in lines]
    assert "node.server" in loggers, lines  # "PAN listening on …": the node's own INFO
    said = " ".join(lines)  # a clean stop says so, with the final checkpoint
    assert "stopping: calls in progress get up to 5 s to finish" in said, lines
    assert "stopped; final checkpoint signed over audit entry" in said, lines
    chatter = [line for line in lines if any(lib in line for lib in THIRD_PARTY)]
    assert not chatter, "\n".join(chatter)
    assert all(own_logger(name) for name in loggers if name), lines


def test_at_debug_the_libraries_lines_are_still_there(pan: NodeProcess) -> None:
    lines = _served_log(pan, {"ENLACE_LOG_LEVEL": "DEBUG", "ENLACE_LOG_FORMAT": "text"})
    loggers = {_logger_of(line, False) for line in lines}
    assert "alembic.runtime.migration" in loggers, lines
    assert "faiss.loader" in loggers, lines
    assert any(name.startswith("apscheduler.") for name in loggers), lines  # "Scheduler started"
    assert any("Context impl SQLiteImpl" in line for line in lines)
    assert "node.server" in loggers


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_the_level_of_node_toml_holds_from_start_up(pan: NodeProcess, level: str) -> None:
    config = pan.home.root / "node.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        re.sub(r'(?m)^log_level = ".*"$', f'log_level = "{level}"', text), encoding="utf-8"
    )
    try:
        lines = _served_log(pan, None)
    finally:
        config.write_text(text, encoding="utf-8")
    loggers = {_logger_of(line, False) for line in lines}
    assert "node.server" in loggers, lines
    # The database is opened (and migrated) at the configured level, not before it is set.
    assert ("alembic.runtime.migration" in loggers) == (level == "DEBUG"), lines


def _passes(name: str, level: int, root_level: int) -> bool:
    root = logging.getLogger()
    before = root.level
    root.setLevel(root_level)
    try:
        record = logging.LogRecord(name, level, __file__, 1, "message", None, None)
        return ThirdPartyFilter().filter(record)
    finally:
        root.setLevel(before)


def test_the_filter_follows_the_root_level_and_spares_the_nodes_loggers() -> None:
    info, debug, warning = logging.INFO, logging.DEBUG, logging.WARNING
    assert not _passes("alembic.runtime.migration", info, info)
    assert not _passes("faiss.loader", info, info)
    assert _passes("faiss.loader", warning, info)  # a library's warning is always shown
    assert _passes("alembic.runtime.migration", info, debug)
    assert _passes("faiss.loader", debug, debug)
    for own in ("node", "node.server", "node.access", "policies", "crypto.oprf", "enlace.x"):
        assert _passes(own, info, info), own
    assert not _passes("nodeish", info, info)  # a prefix of a name is not the node's


def test_install_filters_every_root_handler_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.ops import logging_json

    root = logging.getLogger()
    handler = logging.StreamHandler()
    monkeypatch.setattr(root, "handlers", [handler])
    assert logging_json.install({}) is False
    assert logging_json.install({"ENLACE_LOG_FORMAT": "json"}) is True
    assert sum(isinstance(f, ThirdPartyFilter) for f in handler.filters) == 1
    assert isinstance(handler.formatter, logging_json.JsonFormatter)

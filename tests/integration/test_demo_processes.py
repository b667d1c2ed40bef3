"""A demo directory whose nodes still run is never rebuilt; ``enlace demo --stop`` stops them.

Why: re-running ``enlace demo`` after ``--keep-running`` deleted the homes under the running
nodes and left their ``serve`` processes orphaned. Here a node is a stand-in process whose
command line is ``… serve --home HOME`` (what the demo's pid check looks for), recorded in
``HOME/serve.pid`` as the demo records its nodes; no federation is needed. The real
federation is exercised in ``tests/e2e/test_demo_cli.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import demo_cmd
from node.demo.processes import running_nodes, serves_home, stop_running
from node.demo.run import MARKER, PID_FILE, prepare_root, stop_demo
from node.errors import ConfigError


def _demo_root(tmp_path: Path) -> Path:
    root = tmp_path / "demo-home"
    (root / "pan").mkdir(parents=True)
    (root / MARKER).write_text("created by enlace demo\n")
    return root


def _stand_in(home: Path) -> subprocess.Popen[bytes]:
    """A process that looks like ``enlace serve --home HOME`` and sleeps (bounded)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "serve", "--home", str(home)],
        start_new_session=True,
    )


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    root = _demo_root(tmp_path)
    process = _stand_in(root / "pan")
    (root / "pan" / PID_FILE).write_text(f"{process.pid}\n")
    try:
        yield root, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _wait_exit(process: subprocess.Popen[bytes]) -> int:
    return process.wait(timeout=10)


def test_a_rerun_is_refused_while_a_recorded_node_runs(
    node: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    root, process = node
    with pytest.raises(ConfigError) as refused:
        prepare_root(root)
    assert f"PAN (pid {process.pid}" in refused.value.message
    assert f"enlace demo --stop --dir {root}" in refused.value.hint
    assert process.poll() is None, "the running node was disturbed"
    assert (root / "pan").is_dir(), "the home was deleted under its node"


def test_the_stop_command_stops_the_nodes_and_then_a_rerun_proceeds(
    node: tuple[Path, subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, process = node
    demo_cmd.demo(directory=root, keep_running=False, stop_nodes=True, as_json=True)
    (stopped,) = json.loads(capsys.readouterr().out)["stopped"]
    assert stopped["pid"] == process.pid and stopped["outcome"] == "stopped"
    assert _wait_exit(process) != 0  # SIGTERM
    assert not (root / "pan" / PID_FILE).exists()
    assert stop_demo(root) == []
    prepare_root(root)  # nothing runs any more: the directory is rebuilt
    assert not (root / "pan").exists() and (root / MARKER).exists()


def test_stale_pid_files_and_reused_pids_are_neither_refused_nor_signalled(
    tmp_path: Path,
) -> None:
    root = _demo_root(tmp_path)
    (root / "cri").mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=10)
    (root / "pan" / PID_FILE).write_text(f"{finished.pid}\n")  # that process is gone
    (root / "cri" / PID_FILE).write_text(f"{os.getpid()}\n")  # alive, but not a node
    assert not serves_home(finished.pid, root / "pan")
    assert not serves_home(os.getpid(), root / "cri")
    assert stop_demo(root) == []
    prepare_root(root)
    assert not (root / "pan").exists()


def test_a_hung_node_is_killed_after_the_bounded_wait(tmp_path: Path) -> None:
    root = _demo_root(tmp_path)
    home = root / "pan"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "open(__import__('sys').argv[-1] + '/ready', 'w').close(); time.sleep(120)",
            "serve",
            "--home",
            str(home),
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not (home / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (home / PID_FILE).write_text(f"{process.pid}\n")
        outcome = stop_running(running_nodes(root, PID_FILE), timeout=0.5)
        assert outcome == {"PAN": "killed"}
        assert _wait_exit(process) == -9
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)

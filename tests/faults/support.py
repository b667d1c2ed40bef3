"""Plumbing of the fault tests: child processes, their acknowledgements, SIGKILL, the CLI.

Invariants: every child is started in its own session from this repository's interpreter,
killed with SIGKILL at most once per round and always reaped; reading its output is bounded
by a deadline, so a test never waits on a child forever.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **extra}


def start(argv: list[str], **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=REPO,
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


class Output:
    """A child's standard output as complete lines, read with deadlines (never blocking)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.pending = b""

    def read_for(self, seconds: float) -> list[str]:
        """The lines printed during ``seconds`` (fewer if the child closes its output)."""
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + seconds
        lines: list[str] = []
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                break
            lines += self._split(chunk)
        return lines

    def kill(self) -> list[str]:
        """SIGKILL the child; the complete lines it had printed but were not read yet."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        stdout = self.process.stdout
        assert stdout is not None
        return self._split(stdout.read() or b"")

    def _split(self, chunk: bytes) -> list[str]:
        *done, self.pending = (self.pending + chunk).split(b"\n")
        return [line.decode() for line in done if line]


def cli(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``enlace ARGS`` with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args],
        cwd=REPO,
        env=child_env(**env),
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def cli_json(*args: str, **env: str) -> Any:
    done = cli(*args, "--json", timeout=300, **env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)

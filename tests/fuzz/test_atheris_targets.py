"""The coverage-guided targets of ``atheris_targets.py`` start, fuzz and end clean.

Why: the deep runs (minutes per target, docs/assurance.md) are offline; this keeps each target
runnable — it imports its parser under instrumentation and survives a few thousand mutated
inputs — so a renamed parser or error class is caught in CI, not on the day of the deep run.
Slow (a process per target); skips when atheris is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from fuzz.atheris_targets import TARGETS
from fuzz.harness import fuzz_examples

HERE = "tests/fuzz/atheris_targets.py"
RUNS = 3000


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
@pytest.mark.parametrize("name", TARGETS)
def test_atheris_targets_run_clean(name: str) -> None:
    runs = max(RUNS, fuzz_examples(0))
    done = subprocess.run(
        [sys.executable, HERE, name, f"-atheris_runs={runs}", "-seed=7"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    log = done.stderr.decode(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert f"Done {runs} in" in log, log[-1000:]


def test_an_unknown_target_is_refused_with_the_list() -> None:
    done = subprocess.run(
        [sys.executable, HERE, "nothing"], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "atheris is not installed" in message or all(t in message for t in TARGETS)

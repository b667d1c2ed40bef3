"""What ``enlace demo`` prints: in the order it happens, with every reason whole.

Why: the newcomer's first command printed the step-4 ping table after step 9 (narration on
stderr, tables on stdout), and cut refusals mid-word. Here the demo itself is replaced by a
script that narrates and shows its tables through the same hooks, and the CLI's output is read
back from stdout/stderr at a fixed width of 80 columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.biometrics.client import ProbeOutcome
from node.cli import common, demo_cmd
from node.demo.biometrics import outcome_line
from node.demo.run import DemoResult

LONG_REFUSAL = (
    "Agreement 'MEX-CRI-STATS' (version 1) does not let Costa Rica (CRI) ask Mexico (MEX) "
    "for biometric matching ('biometric'); granted services: 'stats'."
)


@pytest.fixture(autouse=True)
def columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "_width", 80)
    monkeypatch.setattr(common.err_console, "_width", 80)


def _scripted_demo(
    root: Path,
    countries: tuple[str, ...],
    *,
    keep_running: bool = False,
    say: Callable[[str], None] = print,
    on_pings: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """A stand-in for :func:`node.demo.run.run_demo`: narrates steps 4 and 5 around the ping
    matrix, through the hooks the real demo uses."""
    result = DemoResult(root, ["PAN", "CRI"])
    say("4. Every node pings every other node (signed, pinned, audited both sides)")
    result.pings = [
        {"from": "PAN", "to": "CRI", "ok": True, "ms": 5.0},
        {"from": "CRI", "to": "PAN", "ok": True, "ms": 6.0},
    ]
    if on_pings is not None:
        on_pings(result)
    say("5. Agreements: allowed, denied, a countersigned copy fetched, a matrix pulled")
    say(outcome_line(ProbeOutcome(probe=0, peer="MEX", status="not granted", detail=LONG_REFUSAL)))
    result.exit_codes = {"PAN": 0, "CRI": 0}
    return result


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **options: Any) -> None:
    monkeypatch.setattr(demo_cmd, "run_demo", _scripted_demo)
    demo_cmd.demo(
        directory=tmp_path / "demo-home",
        countries="PAN,CRI",
        keep_running=False,
        stop_nodes=False,
        **{"as_json": False, **options},
    )


def test_step_four_narration_its_ping_table_and_step_five_print_in_that_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, tmp_path)
    captured = capsys.readouterr()
    out = captured.out
    step4 = out.index("4. Every node pings every other node")
    table = out.index("Signed Ping latency (ms)")
    step5 = out.index("5. Agreements:")
    assert step4 < table < step5
    assert captured.err == ""


def test_json_mode_prints_one_json_document_and_no_narration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, tmp_path, as_json=True)
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["all_reachable"] is True
    assert "Every node pings" not in captured.out + captured.err


def test_a_long_refusal_is_narrated_whole_and_wrapped_between_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(monkeypatch, tmp_path)
    out = capsys.readouterr().out
    narrated = out[out.index("     MEX  not granted") : out.index("All nodes reachable")]
    lines = [line.rstrip() for line in narrated.splitlines() if line.strip()]
    assert " ".join(" ".join(lines).split()) == " ".join(f"MEX not granted {LONG_REFUSAL}".split())
    words = set(LONG_REFUSAL.split())
    for line in lines[:-1]:
        assert line.split()[-1] in words | {"granted"}, f"{line!r} ends mid-word"
    assert all(len(line) <= 80 for line in lines)


def test_outcome_line_keeps_the_whole_reason() -> None:
    outcome = ProbeOutcome(probe=0, peer="MEX", status="not granted", detail=LONG_REFUSAL)
    assert outcome_line(outcome).endswith(LONG_REFUSAL)
    hit = ProbeOutcome(probe=0, peer="PAN", status="strong", agreement="PAN-CRI-BIO")
    assert outcome_line(hit).split() == ["PAN", "STRONG", "PAN-CRI-BIO"]

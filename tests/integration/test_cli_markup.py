"""A peer's text cannot crash our CLI, and the ids it lists can be copied back into it.

Why: an agreement revoked with the reason "Nota [/b] DGME" and installed here made
``enlace policy list`` and ``policy explain`` crash with a rich MarkupError, and
``enlace followup list`` cut follow-up ids that ``followup show`` then refused. These tests
drive the real commands on real node homes, at a narrow terminal (80 columns).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.cli import common
from node.cli.main import app
from node.demo.agreements import sign_and_install, stats_grant
from node.store.followup_store import FollowUpRecord
from node.trust.freshness import DIRECTORY_FILE
from policies.agreement import Agreement

REASON = "Nota [/b] DGME: sobre [dimension] y [bold red]"


@pytest.fixture(autouse=True)
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "_width", 80)
    monkeypatch.setattr(common.err_console, "_width", 80)


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _home(live, country: str) -> str:  # type: ignore[no-untyped-def]
    return str(live.federation.homes[country].root)


def test_a_revocation_reason_with_markup_is_shown_literally(
    live_federation_factory: Callable[..., object], tmp_path: Path
) -> None:
    live = live_federation_factory(("PAN", "CRI"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    agreement = Agreement(
        id="PAN-CRI-2099-01",
        version=1,
        parties=("PAN", "CRI"),
        title="Intercambio [b]PAN–CRI[/b]",
        valid_from=now - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=365),
        grants=(stats_grant("PAN", "CRI"), stats_grant("CRI", "PAN")),
    )
    sign_and_install(agreement, live.runtimes, now)  # type: ignore[attr-defined]
    runner = CliRunner()
    revocation = tmp_path / "revocation.yaml"
    revoked = runner.invoke(
        app,
        ["policy", "revoke", agreement.id, "--home", _home(live, "PAN"),
         "--reason", REASON, "--out", str(revocation)],
    )  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    installed = runner.invoke(
        app, ["policy", "install", str(revocation), "--home", _home(live, "CRI")]
    )
    assert installed.exit_code == 0, installed.output

    listed = runner.invoke(app, ["policy", "list", "--home", _home(live, "CRI")])
    assert listed.exception is None or isinstance(listed.exception, SystemExit), listed.exception
    assert listed.exit_code == 0, listed.output
    assert agreement.id in listed.output.split()  # the id column is never cut
    assert _squeezed(REASON) in _squeezed(listed.output.replace("│", ""))

    explained = runner.invoke(
        app,
        ["policy", "explain", "--home", _home(live, "CRI"), "--peer", "PAN",
         "--service", "stats", "--dataset", "encounters", "--purpose", "quarterly_matrices",
         "--dimensions", "nationality"],
    )  # fmt: skip
    assert isinstance(explained.exception, SystemExit), explained.exception
    assert explained.exit_code == 1  # DENIED, and said why
    assert "DENIED" in explained.output
    assert _squeezed(REASON) in _squeezed(explained.output)


def test_followup_ids_are_listed_whole_and_show_accepts_them(
    live_federation_factory: Callable[..., object],
) -> None:
    live = live_federation_factory(("PAN", "CRI"))
    runtime = live.runtimes["PAN"]  # type: ignore[attr-defined]
    ids = [uuid.uuid4().hex for _ in range(2)]
    for followup_id in ids:
        runtime.store.matching.add_followup(
            FollowUpRecord(
                followup_id=followup_id,
                direction="inbound",
                peer="CRI",
                dataset="document_alerts",
                epoch=1,
                output_sha256="ab" * 32,
                case_reference="CASO-2026-000123 [urgente]",
                purpose="identity_verification",
                agreement_id="PAN-CRI-2099-01",
                attributes=("surname", "given_names", "birth_date", "alert_type"),
                records=(),
                status="pending",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    runner = CliRunner()
    listed = runner.invoke(app, ["followup", "list", "--home", _home(live, "PAN")])
    assert listed.exit_code == 0, listed.output
    words = listed.output.split()
    for followup_id in ids:
        assert followup_id in words  # whole, on one line: copyable
        shown = runner.invoke(app, ["followup", "show", followup_id, "--home", _home(live, "PAN")])
        assert shown.exit_code == 0, shown.output
        assert "[urgente]" in shown.output
    # Asked with the wrong direction: the hint says which flag finds it.
    wrong = ["followup", "show", ids[0], "--home", _home(live, "PAN"), "--outbound"]
    missed = runner.invoke(app, wrong)
    assert missed.exit_code == 1
    assert "it is one a peer asked of this node: leave out --outbound" in missed.output
    nowhere = runner.invoke(app, ["followup", "show", "f" * 32, "--home", _home(live, "PAN")])
    assert nowhere.exit_code == 1 and "see `enlace followup list`" in nowhere.output


def test_directory_show_prints_every_tls_fingerprint_whole(
    live_federation_factory: Callable[..., object],
) -> None:
    """The operator guide has fingerprints read out over the phone: all 71 characters."""
    live = live_federation_factory(("PAN", "CRI"))
    runtime = live.runtimes["PAN"]  # type: ignore[attr-defined]
    directory = runtime.directory.current(runtime.clock.now())
    path = Path(_home(live, "PAN")) / DIRECTORY_FILE
    shown = CliRunner().invoke(app, ["directory", "show", str(path)])
    assert shown.exit_code == 0, shown.output
    words = shown.output.split()
    for member in directory.members:
        assert member.tls_fingerprint.startswith("sha256:")
        assert member.tls_fingerprint in words
        for key in member.signing_keys:
            assert key.key_id in words

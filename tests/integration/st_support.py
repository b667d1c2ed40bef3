"""Shared set-up for the Secretariat integration tests: agreements, member data, settings.

Members' records come from the synthetic generator (small files, generated once per test
session into a cache) and are imported through the real importer; every member grants the ST
statistics and its consular directory, signed by both parties, exactly as operators would.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from node.agreements import AgreementBook
from node.demo.agreements import stats_grant
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.runtime import NodeRuntime
from node.secretariat.office import Secretariat
from node.secretariat.settings import SecretariatSettings
from node.trust.authoring import new_directory, sign_directory
from node.trust.member import FocalPoint
from policies.agreement import Agreement, Grant, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

ST = "CRM"
QUARTER = "2024Q2"
# Retries without waiting; deadlines generous enough for a loaded CI machine (a node that is
# down fails at once with UNAVAILABLE; tests of deadlines set their own).
FAST = SecretariatSettings(
    node_deadline_seconds=30.0,
    call_timeout_seconds=20.0,
    attempts=2,
    backoff_seconds=0.05,
    backoff_max_seconds=0.1,
)


def st_agreement(member: str, now: dt.datetime, *, st: str = ST) -> Agreement:
    start = now - dt.timedelta(days=1)
    return Agreement(
        id=f"{member}-{st}-STATS",
        version=1,
        parties=(member, st),
        title=f"Cuadros {member} → ST",
        valid_from=start,
        valid_until=start + dt.timedelta(days=400),
        grants=(
            stats_grant(member, st),
            Grant(
                holder=member,
                requester=st,
                service="directory",
                datasets=("consular_directory",),
                purposes=("consular_directory",),
                quotas=Quotas(per_day=100, per_quarter=None),
            ),
        ),
    )


def install(runtimes: dict[str, NodeRuntime], agreement: Agreement) -> None:
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    text = dump_signed_agreement(signed)
    for party in agreement.parties:
        runtime = runtimes[party]
        AgreementBook(runtime).install_text(text, runtime.clock.now())


@cache
def member_files(country: str, encounters: int = 1500) -> Path:
    """Synthetic files of one member, generated once per test session."""
    out = Path(tempfile.mkdtemp(prefix=f"st-{country.lower()}-"))
    seed = 100 + sum(ord(c) for c in country)
    generate(country, encounters, seed, out)
    return out


def load_member(runtime: NodeRuntime, *, encounters: int = 1500) -> None:
    files = member_files(runtime.config.country, encounters)
    now = runtime.clock.now()
    ingest(runtime.store, "encounters", [files / "encounters.csv"], now=now)
    ingest(runtime.store, "consular_directory", [files / "consular_directory.csv"], now=now)


def prepare(live: object, members: Iterable[str]) -> None:
    """Data and ST agreements for ``members`` of a :class:`LiveFederation`."""
    runtimes: dict[str, NodeRuntime] = live.runtimes  # type: ignore[attr-defined]
    for member in members:
        load_member(runtimes[member])
        install(runtimes, st_agreement(member, runtimes[member].clock.now()))


def serving_members(live: Any, members: Iterable[str]) -> Any:
    """``live`` with every member's records loaded and agreements installed, each serving."""
    members = tuple(members)
    prepare(live, members)
    for member in members:
        live.serve(member)
    return live


def office(runtime: NodeRuntime, **changes: object) -> Secretariat:
    return Secretariat(runtime, dataclasses.replace(FAST, **changes), sleep=lambda _s: None)


def publish_focal_points(live: object, emails: dict[str, str]) -> None:
    """A new directory version listing focal points, adopted by every node."""
    federation = live.federation  # type: ignore[attr-defined]
    runtimes: dict[str, NodeRuntime] = live.runtimes  # type: ignore[attr-defined]
    any_runtime = next(iter(runtimes.values()))
    now = any_runtime.clock.now()
    current = any_runtime.directory.current(now)
    members = [
        dataclasses.replace(
            m, focal_points=(FocalPoint(f"Punto focal {m.country}", emails[m.country]),)
        )
        if m.country in emails
        else m
        for m in current.members
    ]
    directory = new_directory(
        version=current.version + 1,
        issued_at=now,
        expires_at=current.expires_at,
        threshold=current.threshold,
        directory_keys=current.directory_keys,
        members=members,
    )
    for key in federation.directory_keys[: current.threshold]:
        directory = sign_directory(directory, key)
    for runtime in runtimes.values():
        runtime.directory.offer(directory, now)

"""The demo's Secretariat step: a regional pull that survives a member going down.

Before the nodes start, :func:`prepare_secretariat` gives Mexico some records too (the
matching step loads Panama, Honduras and Costa Rica), imports every member's public consular
directory, has each member grant the ST its consular directory (a ``directory`` grant, signed
by both parties), and writes the ST's settings (``HOME/secretariat.toml``: short deadlines for
a loopback demo, outputs under ``DIR/secretariat``).

While the nodes run, :func:`secretariat_step`, as the operator of the ST would with
``enlace st``:

1. stops Honduras's node process;
2. pulls M01–M03 for one quarter from every member — PARTIAL, Honduras flagged missing;
3. restarts Honduras's node — the retry completes the same pull;
4. writes the regional matrices (CSV, XLSX, SDMX-CSV 2.0) and the merged consular directory;
5. shows each member's freshness, and renders the monthly brief (HTML and PDF).

Invariants: only real processes and the public client paths are used; a member down never
makes the step fail — it is the point of the step.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from node.agreements import AgreementBook
from node.demo.processes import NodeProcess
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.runtime import NodeRuntime
from node.secretariat.office import Secretariat
from node.secretariat.outputs import write_consular, write_regional
from policies.agreement import Agreement, Grant, Quotas
from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

ST = "CRM"
QUARTER = "2024Q3"
MONTH = "2024-09"
MATRICES = ("M01", "M02", "M03")
DOWN = "HND"
EXTRA_DATA = ("MEX",)
ENCOUNTERS = 1500
SETTINGS = """# Written by the demo: short deadlines for nodes on loopback.
node_deadline_seconds = 30.0
call_timeout_seconds = 15.0
attempts = 2
backoff_seconds = 0.2
backoff_max_seconds = 1.0
regional_only = []
out_dir = "{out}"
"""

Say = Callable[[str], None]


def _directory_agreement(member: str, now: dt.datetime) -> Agreement:
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    return Agreement(
        id=f"{member}-{ST}-DIRECTORY",
        version=1,
        parties=(member, ST),
        title=f"Directorio consular {member} → Secretaría Técnica (información pública)",
        valid_from=start,
        valid_until=start + dt.timedelta(days=730),
        grants=(
            Grant(
                holder=member,
                requester=ST,
                service="directory",
                datasets=("consular_directory",),
                purposes=("consular_directory",),
                quotas=Quotas(per_day=50, per_quarter=1000),
            ),
        ),
    )


def prepare_secretariat(
    runtimes: dict[str, NodeRuntime], root: Path, now: dt.datetime, say: Say
) -> dict[str, Any]:
    """Data, consular directories, directory grants and the ST's settings (nodes stopped)."""
    if ST not in runtimes:
        return {}
    members = sorted(c for c in runtimes if c != ST)
    for number, country in enumerate(c for c in EXTRA_DATA if c in runtimes):
        files = root / "data" / country.lower()
        if not (files / "encounters.csv").exists():
            generate(country, ENCOUNTERS, 300 + number, files)
            ingest(runtimes[country].store, "encounters", [files / "encounters.csv"], now=now)
    agreements = []
    for country in members:
        files = root / "data" / country.lower() / "consular_directory.csv"
        if files.exists():
            ingest(runtimes[country].store, "consular_directory", [files], now=now)
        agreement = _directory_agreement(country, now)
        signed = SignedAgreement(agreement)
        for party in agreement.parties:
            signed = sign_agreement(signed, party, runtimes[party].signing_key)
        text = dump_signed_agreement(signed)
        for party in agreement.parties:
            AgreementBook(runtimes[party]).install_text(text, now)
        agreements.append(agreement.id)
    out = root / "secretariat"
    (runtimes[ST].home.root / "secretariat.toml").write_text(
        SETTINGS.format(out=out), encoding="utf-8"
    )
    say(f"   ST: consular-directory grants from {', '.join(members)}; outputs in {out}")
    return {"agreements": agreements}


def _missing(report: dict[str, Any]) -> list[str]:
    pull = report.get("pull") or {}
    return list(pull.get("missing", []))


def secretariat_step(
    runtimes: dict[str, NodeRuntime], nodes: Sequence[NodeProcess], root: Path, say: Say
) -> dict[str, Any]:
    """Pull, lose a member, retry, publish; see the module docstring."""
    from node.secretariat.brief_collect import monthly_brief

    if ST not in runtimes:
        return {}
    office = Secretariat(runtimes[ST])
    started = time.monotonic()
    result: dict[str, Any] = {"quarter": QUARTER}
    try:
        down = next((n for n in nodes if n.country == DOWN), None)
        if down is not None:
            down.stop()
            say(f"   {DOWN}'s node is stopped")
        else:
            say(f"   (no member goes down: that part needs {DOWN} in --countries)")
        partial = office.collect(QUARTER, matrices=MATRICES).to_dict()
        result["pull"] = {
            "pull_id": partial["pull"]["pull_id"],
            "status": partial["status"],
            "missing": _missing(partial),
        }
        say(
            f"   CRM pulls {', '.join(MATRICES)} for {QUARTER} from every member: "
            f"{partial['status'].upper()} — missing {', '.join(_missing(partial)) or 'none'}"
            + (" (flagged, not an error)" if _missing(partial) else "")
        )
        if down is not None:
            down.start()
            down.wait_ready(time.monotonic() + 30)
            (retried,) = office.retry(partial["pull"]["pull_id"])
            result["retry"] = {
                "pull_id": retried.pull_id,
                "status": retried.status,
                "missing": retried.missing,
            }
            say(f"   {DOWN} is back; the retry completes the same pull: {retried.status}")
        files = write_regional(office, QUARTER, matrices=MATRICES)
        result["files"] = sorted(str(p.relative_to(root)) for p in files)
        say(f"   regional matrices written: {len(files)} files in {files[0].parent}")
        say("   (regional sums count transits, not unique persons)")
        consular = write_consular(office)
        result["consular"] = [str(p.relative_to(root)) for p in consular]
        states = office.freshness(QUARTER)
        result["freshness"] = {s.country: s.state for s in states}
        say(
            "   freshness for "
            + QUARTER
            + ": "
            + ", ".join(f"{s.country} {s.state}" for s in states)
        )
        brief = monthly_brief(office, MONTH)
        result["brief"] = {
            "html": str(brief.html.relative_to(root)) if brief.html else None,
            "pdf": str(brief.pdf.relative_to(root)) if brief.pdf else None,
            "members": {m.country: m.status for m in brief.data.members},
        }
        say(f"   monthly brief {MONTH}: {brief.pdf}")
    finally:
        office.stop()
    result["seconds"] = round(time.monotonic() - started, 2)
    return result

"""Shared set-up for the biometric integration tests: agreements, templates, recaptures.

Records come from the synthetic generator (half the persons with a face template, generated
once per test session) and are imported through the real importer; probes are fresh captures
of stored templates with the generator's noise model, or faces of nobody the holder enrolled.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from node.demo.agreements import sign_and_install
from node.ingest.pipeline import ingest
from node.runtime import NodeRuntime
from policies.agreement import Agreement, Grant, Quotas

PURPOSE = "identity_verification"
ATTRIBUTES = ("first_seen_quarter", "nationality", "nationality_basis", "encounters")
TEMPLATE_COLUMNS = ("record_id", "person_id", "modality", "capture_date", "vector")


def biometric_agreement(
    holder: str,
    requester: str,
    now: dt.datetime,
    *,
    per_day: int | None = 10_000,
    followup: bool = True,
    approval: bool = False,
    agreement_id: str = "",
) -> Agreement:
    grants = [
        Grant(
            holder=holder,
            requester=requester,
            service="biometric",
            datasets=("biometric_templates",),
            purposes=(PURPOSE,),
            quotas=Quotas(per_day=per_day, per_quarter=None),
        )
    ]
    if followup:
        grants.append(
            Grant(
                holder=holder,
                requester=requester,
                service="followup",
                datasets=("biometric_templates",),
                purposes=(PURPOSE,),
                attributes=ATTRIBUTES,
                followup_requires_approval=approval,
                quotas=Quotas(per_day=50, per_quarter=None),
            )
        )
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    return Agreement(
        id=agreement_id or f"{holder}-{requester}-BIO-TEST",
        version=1,
        parties=(holder, requester),
        title="Biometric test agreement",
        valid_from=start,
        valid_until=start + dt.timedelta(days=365),
        grants=tuple(grants),
    )


def install(runtimes: dict[str, NodeRuntime], agreement: Agreement, now: dt.datetime) -> None:
    sign_and_install(agreement, runtimes, now)


@cache
def generated(root: Path, country: str, encounters: int = 300, seed: int = 5) -> Path:
    from node.records.generate import generate

    out = root / f"bio-{country}-{encounters}-{seed}"
    if not (out / "encounters.csv").exists():
        generate(country, encounters, seed, out, templates_fraction=0.5)
    return out


def load(runtime: NodeRuntime, files: Path, now: dt.datetime) -> None:
    for dataset in ("encounters", "biometric_templates"):
        ingest(runtime.store, dataset, [files / f"{dataset}.csv"], now=now)


def pan_gallery(live_federation_factory: Any, root: Path) -> Any:
    """A live federation where PAN imported a generated gallery (``live.files``), agreed with
    CRI on biometric hit/no-hit and serves it: what the biometric service tests start from."""
    live = live_federation_factory()
    now = live.clocks["PAN"].now()
    files = generated(root, "PAN")
    load(live.runtimes["PAN"], files, now)
    install(live.runtimes, biometric_agreement("PAN", "CRI", now), now)
    live.serve("PAN")
    live.files = files
    return live


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def vectors(rows: Sequence[dict[str, str]]) -> np.ndarray:
    return np.stack([np.frombuffer(base64.b64decode(r["vector"]), dtype="<f4") for r in rows])


def recapture(templates: np.ndarray, seed: int, sigma: float = 0.5) -> np.ndarray:
    """Another capture of the same faces: the generator's noise model on top of the stored one."""
    rng = np.random.default_rng(seed)
    noisy = templates + sigma * rng.standard_normal(templates.shape) / math.sqrt(templates.shape[1])
    out: np.ndarray = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def strangers(count: int, seed: int, dim: int = 128) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim))
    out: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def write_templates(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, TEMPLATE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in TEMPLATE_COLUMNS})
    return path


def template_row(record_id: str, person_id: str, vector: np.ndarray) -> dict[str, str]:
    encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return {
        "record_id": record_id,
        "person_id": person_id,
        "modality": "face",
        "capture_date": "2024-03-01",
        "vector": encoded,
    }

"""Sample manifests built from generated member data, with the hits they must produce.

Why: a newcomer (and the tests, the demo and the benchmark) needs a realistic PAXLST or bus
manifest in which some travellers are known to peers — a document on a peer's alert list, a
document a peer has seen, a person of interest — and a ground truth to check the screening
against. Travellers are drawn from the peers' generated files (``enlace generate``); the others
are invented (document numbers with a ``Q`` prefix and states of the region, which the
generator never issues).

The expected hits are computed independently of the network: every peer's records are keyed
with :func:`node.matching.sources.record_keys` exactly as a holder keys them, and each
traveller's queries with :func:`node.matching.sources.query_keys`; a (peer, dataset) is
expected to hit when the sets intersect and the peer grants that dataset.
:func:`person_hits_by_policy` measures, against the generator's ground truth, which true hits
each birth-date policy of :mod:`node.matching.keys` finds and which it misses.

Invariants: deterministic for the same files, seed and arguments; the planted travellers come
first in ``truth`` order but are shuffled in the manifest; nothing here touches a store.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.manifests.model import Manifest, Traveller, digest
from node.manifests.screen import SCREEN_DATASETS, SCREEN_DATES, traveller_queries
from node.matching.keys import DATE_POLICIES, DatePolicy, parse_input, strongest
from node.matching.sources import (
    PERSON_DATASETS,
    SOURCES,
    person_query,
    query_keys,
    record_keys,
)
from node.records.dates import parse_partial_date
from node.records.icao import normalise_country_code, normalise_document_number

STATES = ("GTM", "SLV", "NIC", "BLZ", "DOM", "MEX", "COL", "ECU")
SURNAMES = ("QUIROS", "VALVERDE", "SOLANO", "ARAYA", "ZUNIGA", "CORDERO", "VARGAS", "MORA")
GIVEN = ("ANDREA", "LUIS", "SOFIA", "MATEO", "VALERIA", "DIEGO", "CAMILA", "JOSE")


@dataclass(frozen=True)
class Planted:
    position: int
    peer: str
    dataset: str


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _traveller(position: int, row: Mapping[str, str], rng: random.Random) -> Traveller:
    birth = parse_partial_date(row["birth_date"]) if row.get("birth_date") else None
    expiry = parse_partial_date(row["expiry_date"]) if row.get("expiry_date") else None
    return Traveller(
        position=position,
        location="",
        role="passenger",
        surname=row.get("surname", "").upper(),
        given_names=row.get("given_names", "").upper(),
        sex=row.get("sex") or rng.choice("FM"),
        birth_date=birth,
        nationality=row.get("nationality") or row.get("issuing_state", ""),
        document_type=row.get("document_type") or "P",
        document_number=row["document_number"],
        issuing_state=row["issuing_state"],
        expiry_date=expiry,
    )


def _invented(position: int, rng: random.Random, today: dt.date) -> Traveller:
    birth = today - dt.timedelta(days=rng.randrange(18 * 365, 70 * 365))
    state = rng.choice(STATES)
    return Traveller(
        position=position,
        location="",
        role="passenger",
        surname=f"{rng.choice(SURNAMES)} {rng.choice(SURNAMES)}",
        given_names=rng.choice(GIVEN),
        sex=rng.choice("FM"),
        birth_date=parse_partial_date(birth.isoformat()),
        nationality=state,
        document_type="P",
        document_number=f"Q{rng.randrange(10**7, 10**8)}",
        issuing_state=state,
        expiry_date=parse_partial_date(f"{today.year + rng.randrange(1, 9)}-06-30"),
    )


def sample_manifest(
    peers: Mapping[str, Path],
    *,
    travellers: int,
    seed: int,
    departure: dt.datetime,
    kind: str = "aircraft",
    per_peer: Mapping[str, int] | None = None,
) -> tuple[Manifest, list[Planted]]:
    """A manifest of ``travellers`` with, per peer, a few travellers taken from its files.

    ``per_peer`` says how many to plant from each dataset file (default: 2 alerts, 2 travel
    documents, 1 person of interest per peer).
    """
    rng = random.Random(seed)
    plan = dict(per_peer or {"document_alerts": 2, "travel_documents": 2,
                             "persons_of_interest": 1})  # fmt: skip
    chosen: list[tuple[Traveller, Planted | None]] = []
    for peer in sorted(peers):
        folder = peers[peer]
        documents = _rows(folder / "travel_documents.csv")
        for dataset, count in plan.items():
            rows = [r for r in _rows(folder / f"{dataset}.csv") if r.get("document_number")]
            for picked in rng.sample(rows, min(count, len(rows))):
                row = picked
                if dataset == "document_alerts" and documents:
                    donor = rng.choice(documents)  # a name and birth date for the alerted booklet
                    row = {**donor, "document_number": picked["document_number"],
                           "issuing_state": picked["issuing_state"]}  # fmt: skip
                chosen.append((_traveller(0, row, rng), Planted(0, peer, dataset)))
    while len(chosen) < travellers:
        chosen.append((_invented(0, rng, departure.date()), None))
    chosen = chosen[:travellers]
    rng.shuffle(chosen)
    manifest = Manifest(format="paxlst" if kind == "aircraft" else "csv", sha256="")
    planted: list[Planted] = []
    for position, (traveller, plant) in enumerate(chosen, start=1):
        manifest.travellers.append(Traveller(**{**traveller.__dict__, "position": position}))
        if plant is not None:
            planted.append(Planted(position, plant.peer, plant.dataset))
    if kind == "aircraft":
        manifest.sender, manifest.carrier, manifest.transport = "COPA", "CM", "CM0417"
        manifest.departure_port, manifest.arrival_port = "PTY", "SJO"
        manifest.arrival_at = departure + dt.timedelta(hours=1, minutes=25)
    else:
        manifest.sender = manifest.carrier = "TRANSPORTES DEL ISTMO"
        manifest.transport = f"BUS-{departure:%m%d}-07"
        manifest.departure_port, manifest.arrival_port = "PASO CANOAS", "SAN JOSE"
    manifest.departure_at = departure
    manifest.sha256 = digest(repr(manifest.travellers).encode())
    return manifest, sorted(planted, key=lambda p: p.position)


def _holder_row(row: Mapping[str, str]) -> dict[str, object]:
    out: dict[str, object] = dict(row)
    if row.get("document_number") and row.get("issuing_state"):
        try:
            out["document_number_norm"] = normalise_document_number(row["document_number"])
            out["issuing_state"] = normalise_country_code(row["issuing_state"])
        except ValueError:
            out["document_number_norm"] = None
    if row.get("birth_date"):
        born = parse_partial_date(row["birth_date"])
        out.update(birth_year=born.year, birth_month=born.month, birth_day=born.day)
    return out


def peer_keys(folder: Path, datasets: Sequence[str] = SCREEN_DATASETS) -> dict[str, set[bytes]]:
    """The OPRF inputs a holder would publish per dataset from the files in ``folder``."""
    keys: dict[str, set[bytes]] = {}
    for dataset in datasets:
        found: set[bytes] = set()
        for source in SOURCES[dataset]:
            for row in _rows(folder / f"{source}.csv"):
                found.update(record_keys(dataset, source, _holder_row(row)))
        keys[dataset] = found
    return keys


def expected_hits(
    manifest: Manifest,
    peers: Mapping[str, Path],
    granted: Mapping[str, Sequence[str]] | None = None,
    *,
    dates: DatePolicy = SCREEN_DATES,
) -> dict[int, set[tuple[str, str]]]:
    """``position -> {(peer, dataset)}`` every screened traveller must hit (and nothing else)
    when travellers send the birth-date keys of ``dates``."""
    held = {peer: peer_keys(folder) for peer, folder in peers.items()}
    expected: dict[int, set[tuple[str, str]]] = {}
    for traveller in manifest.travellers:
        hits: set[tuple[str, str]] = set()
        for query in traveller_queries(traveller, dates):
            for dataset, inputs in query_keys(query, SCREEN_DATASETS).items():
                for peer, keys in held.items():
                    allowed = granted is None or dataset in granted.get(peer, ())
                    if allowed and keys[dataset].intersection(inputs):
                        hits.add((peer, dataset))
        expected[traveller.position] = hits
    return expected


def write_truth(path: Path, planted: Sequence[Planted], manifest: Manifest) -> None:
    """The planted travellers: position, name, document, and where they were taken from."""
    by_position = {t.position: t for t in manifest.travellers}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("position", "name", "document", "peer", "dataset"))
        for p in planted:
            t = by_position[p.position]
            writer.writerow((p.position, t.name, f"{t.issuing_state} {t.document_number}",
                             p.peer, p.dataset))  # fmt: skip


def write_samples(
    country: str, folder: Path, *, travellers: int, seed: int, now: dt.datetime
) -> list[Path]:
    """An aircraft PAXLST and a bus CSV in ``folder/manifests``, planted from ``country``'s
    own generated files (so a peer screening them against ``country`` gets hits)."""
    from node.manifests.csv_manifest import write_csv_manifest
    from node.manifests.paxlst_writer import write_paxlst

    target = folder / "manifests"
    target.mkdir(parents=True, exist_ok=True)
    departure = now.replace(second=0, microsecond=0) + dt.timedelta(hours=2)
    written: list[Path] = []
    for kind, name in (("aircraft", "paxlst-sample.edi"), ("bus", "bus-sample.csv")):
        manifest, planted = sample_manifest(
            {country: folder}, travellers=travellers, seed=seed, departure=departure, kind=kind
        )
        text = (
            write_paxlst(manifest, recipient="XXX", prepared_at=now)
            if kind == "aircraft"
            else write_csv_manifest(manifest)
        )
        path = target / name
        path.write_text(text, encoding="utf-8")
        write_truth(path.with_name(name + ".truth.csv"), planted, manifest)
        written.append(path)
    return written


# --------------------------------------------------------------------------- date policies


@dataclass(frozen=True)
class PolicyOutcome:
    """What travellers' person keys under one birth-date policy find at one holder."""

    policy: str
    travellers: int
    keys: int
    hits: frozenset[tuple[int, str]]  # (traveller, dataset) with any key in common
    true_hits: frozenset[tuple[int, str]]  # ... with a key of a record of the same person
    strengths: Mapping[str, int]  # strongest precision of each hit -> count


def _global_ids(folder: Path) -> dict[tuple[str, str], str]:
    return {(r["dataset"], r["local_id"]): r["global_person_id"]
            for r in _rows(folder / "ground_truth.csv")}  # fmt: skip


def person_hits_by_policy(
    holder: Path, querier: Path, policies: Sequence[DatePolicy] = DATE_POLICIES
) -> dict[str, PolicyOutcome]:
    """Screen every passport holder of ``querier``'s generated files by name and full date of
    birth against ``holder``'s ``identities`` and ``persons_of_interest``, under each policy.

    A hit is *true* when a record it meets belongs to the same person (the generator's
    ``ground_truth.csv`` of both folders names people across countries); the rest are
    namesakes. This is how ``docs/manifests.md`` shows what each policy finds and misses.
    """
    people, known = _global_ids(holder), _global_ids(querier)
    index: dict[str, dict[bytes, set[str]]] = {}
    for dataset in PERSON_DATASETS:
        index[dataset] = {}
        for source in SOURCES[dataset]:
            for row in _rows(holder / f"{source}.csv"):
                who = (people.get(("encounters", row.get("person_id", "")))
                       or people.get((source, row["record_id"])) or row["record_id"])  # fmt: skip
                for key in record_keys(dataset, source, _holder_row(row)):
                    index[dataset].setdefault(key, set()).add(who)
    travellers = [r for r in _rows(querier / "travel_documents.csv")
                  if len(r["birth_date"]) == len("YYYY-MM-DD")]  # fmt: skip
    out: dict[str, PolicyOutcome] = {}
    for policy in policies:
        keys, hits, true_hits, strengths = 0, set(), set(), Counter[str]()
        for number, row in enumerate(travellers):
            who = known.get(("encounters", row["person_id"]), "")
            query = person_query(row["surname"], row["given_names"], row["birth_date"],
                                 dates=policy)  # fmt: skip
            for dataset, inputs in query_keys(query, PERSON_DATASETS).items():
                keys += len(inputs)
                met = [(parse_input(k), index[dataset][k]) for k in inputs if k in index[dataset]]
                if met:
                    hits.add((number, dataset))
                    best = strongest([m for m, _ in met])
                    strengths[best.strength if best else ""] += 1
                if any(who in persons for _, persons in met):
                    true_hits.add((number, dataset))
        out[policy] = PolicyOutcome(policy, len(travellers), keys, frozenset(hits),
                                    frozenset(true_hits), dict(strengths))  # fmt: skip
    return out

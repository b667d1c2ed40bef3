"""Screen a manifest against the federation: every traveller, every peer and dataset allowed.

Why: a flight of 300 passengers must be screened in seconds before it lands, not traveller by
traveller. Each traveller becomes a document query (checked against ``document_alerts``,
``travel_documents`` and ``persons_of_interest``) and, with a date of birth, a person query
(``identities`` and ``persons_of_interest``); :class:`~node.matching.client.MatchClient` then
sends one batched private match per peer and dataset, under each peer's agreement (our copy
decides whom to ask; the holder enforces its quota and refuses with RESOURCE_EXHAUSTED when it
is spent, which shows as an error for that peer, never as a "no hit").

The per-traveller result merges the answers of its queries per (peer, dataset): a hit wins
(the strongest one: document, then name with full date, month, year), then an error, then
"no hit", then "not granted". A duplicate traveller reuses the results of its first listing.

Cost grows with travellers x peers x elements per traveller, so a traveller sends as few
elements as find every hit (:mod:`node.matching.keys`): one name variant in most cases, and by
default (:data:`SCREEN_DATES`, ``covering``) the full date of birth and the year only — the
month key finds nothing the year key does not, it only grades a hit. ``finest`` sends the full
date alone, and then misses holder records that know only the month or year of birth
(``docs/manifests.md`` says how many on generated data). Queries that would send the same keys
(two travellers with one document, namesakes born the same day) are sent once.

Invariants:
* Nothing but blinded OPRF elements leaves the node (the matching client's invariant).
* Every query sent is the first of its keys; its answers are given to every traveller that
  built the same keys, so removing repeats changes no result.
* ``Screening.status`` is ``hit`` when any traveller hit anywhere, else ``incomplete`` when a
  peer failed, a traveller was rejected or could not be queried, or a traveller got no answer
  from anyone (every peer "not granted": nothing was sent), else ``clear``. ``clear`` means
  every traveller was looked at by at least one peer.
* A stored screening (:func:`save_screening`) has one row per traveller and one ``screened``
  event; the trail holds counts, never names or document numbers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from node.errors import InvalidArgumentError
from node.manifests.model import Manifest, Rejected, Traveller
from node.matching.client import MatchClient, Outcome, Progress
from node.matching.keys import DatePolicy
from node.matching.sources import Query, document_query, person_query, query_keys
from node.store import Store

#: The datasets screened, in report order.
SCREEN_DATASETS: tuple[str, ...] = (
    "document_alerts",
    "travel_documents",
    "persons_of_interest",
    "identities",
)
#: Birth-date keys a traveller sends (see the module docstring and :mod:`node.matching.keys`).
SCREEN_DATES: DatePolicy = "covering"
_RANK = {"hit": 0, "error": 1, "no hit": 2, "not granted": 3}
_STRENGTH = {"document": 0, "name+day": 1, "name+month": 2, "name+year": 3}
EXIT_CLEAR, EXIT_HIT, EXIT_INCOMPLETE = 0, 3, 4
#: A hit, and a follow-up of it asked with ``--case`` failed (the CLI's; never 1, "nothing
#: was screened", which a script could read as no hit).
EXIT_FOLLOW_UP_FAILED = 5


@dataclass
class TravellerResult:
    traveller: Traveller
    results: dict[tuple[str, str], Outcome] = field(default_factory=dict)

    def hits(self) -> list[Outcome]:
        return [o for o in self.results.values() if o.status == "hit"]

    @property
    def answered(self) -> bool:
        """Whether some peer actually looked (hit or no hit); "not granted" rows sent nothing."""
        return any(o.status in ("hit", "no hit") for o in self.results.values())

    def summary(self) -> str:
        hits = self.hits()
        if hits:
            return "; ".join(f"{o.peer} {o.dataset} ({o.strength})" for o in hits)
        if any(o.status == "error" for o in self.results.values()):
            return "incomplete"
        if not self.answered:
            return "NOT SCREENED: no peer is granted"
        return "no hit"

    def rows(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.results.values()]


@dataclass
class Screening:
    manifest: Manifest
    purpose: str
    travellers: list[TravellerResult]
    unqueried: list[Rejected]
    elements: int
    seconds: float

    @property
    def rejected(self) -> list[Rejected]:
        return [*self.manifest.rejected, *self.unqueried]

    def hits(self) -> list[tuple[Traveller, Outcome]]:
        return [(r.traveller, o) for r in self.travellers for o in r.hits()]

    @property
    def status(self) -> str:
        if self.hits():
            return "hit"
        errors = any(o.status == "error" for r in self.travellers for o in r.results.values())
        return "incomplete" if errors or self.rejected or self.unanswered() else "clear"

    def peer_errors(self) -> list[dict[str, Any]]:
        """Each (peer, dataset) that failed, with its reason and how many travellers it left
        unchecked there: what the operator must know to judge an ``incomplete`` screening."""
        found: dict[tuple[str, str, str], int] = {}
        for result in self.travellers:
            for outcome in result.results.values():
                if outcome.status == "error":
                    key = (outcome.peer, outcome.dataset, outcome.detail)
                    found[key] = found.get(key, 0) + 1
        return [
            {"peer": peer, "dataset": dataset, "reason": reason, "travellers": count}
            for (peer, dataset, reason), count in sorted(found.items())
        ]

    def unanswered(self) -> list[Traveller]:
        """Travellers no peer looked at (every peer and dataset "not granted")."""
        return [r.traveller for r in self.travellers if not r.answered]

    @property
    def exit_code(self) -> int:
        return {"hit": EXIT_HIT, "incomplete": EXIT_INCOMPLETE}.get(self.status, EXIT_CLEAR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest.header(),
            "purpose": self.purpose,
            "status": self.status,
            "hits": len(self.hits()),
            "travellers_hit": sum(1 for r in self.travellers if r.hits()),
            "not_answered": len(self.unanswered()),
            "peer_errors": self.peer_errors(),
            "elements": self.elements,
            "seconds": round(self.seconds, 3),
            "travellers": [
                r.traveller.to_dict() | {"summary": r.summary(), "results": r.rows()}
                for r in self.travellers
            ],
            "rejected": [r.to_dict() for r in self.rejected],
            "problems": [p.to_dict() for p in self.manifest.problems],
        }

    def csv_rows(self) -> list[dict[str, str]]:
        """One row per traveller and (peer, dataset), plus one per rejected traveller."""
        out: list[dict[str, str]] = []
        for r in self.travellers:
            t = r.traveller
            base = {"position": str(t.position), "name": t.name,
                    "birth_date": t.birth_date.iso() if t.birth_date else "",
                    "document": f"{t.issuing_state} {t.document_number}".strip()}  # fmt: skip
            for o in r.results.values():
                out.append(base | {"peer": o.peer, "dataset": o.dataset, "result": o.status,
                                   "strength": o.strength, "detail": o.detail})  # fmt: skip
        for rejected in self.rejected:
            out.append({"position": str(rejected.position), "name": rejected.name,
                        "birth_date": "", "document": "", "peer": "", "dataset": "",
                        "result": "rejected", "strength": "",
                        "detail": "; ".join(rejected.reasons)})  # fmt: skip
        return out


def traveller_queries(traveller: Traveller, dates: DatePolicy = SCREEN_DATES) -> list[Query]:
    """The document and person queries of one traveller (raises InvalidArgumentError)."""
    queries: list[Query] = []
    if traveller.has_document:
        queries.append(
            document_query(traveller.document_number, traveller.issuing_state, traveller.label)
        )
    if traveller.has_identity and traveller.birth_date is not None:
        surname = traveller.surname or traveller.given_names
        given = traveller.given_names if traveller.surname else ""
        born = traveller.birth_date.iso()
        queries.append(person_query(surname, given, born, traveller.label, dates=dates))
    return queries


def _signature(query: Query, datasets: Sequence[str]) -> tuple[object, ...]:
    """What a query sends: two queries with the same signature get the same answers."""
    keys = query_keys(query, datasets)
    return (query.kind, *((d, tuple(keys[d])) for d in sorted(keys)))


def _better(new: Outcome, old: Outcome | None) -> bool:
    if old is None:
        return True
    if _RANK[new.status] != _RANK[old.status]:
        return _RANK[new.status] < _RANK[old.status]
    return new.status == "hit" and _STRENGTH.get(new.strength, 9) < _STRENGTH.get(old.strength, 9)


def screen_manifest(
    client: MatchClient,
    manifest: Manifest,
    *,
    purpose: str,
    peers: Sequence[str] | None = None,
    datasets: Sequence[str] = SCREEN_DATASETS,
    dates: DatePolicy = SCREEN_DATES,
    progress: Progress | None = None,
) -> Screening:
    """Screen every traveller of ``manifest`` (see the module docstring)."""
    for name in datasets:
        if name not in SCREEN_DATASETS:
            raise InvalidArgumentError(
                f"{name!r} is not screened", field="dataset", hint=", ".join(SCREEN_DATASETS)
            )
    queries: list[Query] = []
    owners: list[list[int]] = []  # per query sent: the travellers (indices) it answers for
    sent: dict[tuple[object, ...], int] = {}
    unqueried: list[Rejected] = []
    screened = manifest.screened()
    for index, traveller in enumerate(screened):
        try:
            built = [(q, _signature(q, datasets)) for q in traveller_queries(traveller, dates)]
        except InvalidArgumentError as exc:
            unqueried.append(
                Rejected(traveller.position, traveller.location, traveller.name, (exc.message,))
            )
            continue
        for query, signature in built:
            number = sent.setdefault(signature, len(queries))
            if number == len(queries):
                queries.append(query)
                owners.append([])
            owners[number].append(index)
    report = client.run(queries, list(datasets), purpose=purpose, peers=peers, progress=progress)
    merged: dict[int, dict[tuple[str, str], Outcome]] = {}
    for outcome in report.outcomes:
        for owner in owners[outcome.query]:
            slot = merged.setdefault(owner, {})
            key = (outcome.peer, outcome.dataset)
            if _better(outcome, slot.get(key)):
                slot[key] = outcome
    order = {d: n for n, d in enumerate(datasets)}
    by_position: dict[int, TravellerResult] = {}
    rejected_positions = {r.position for r in unqueried}
    results: list[TravellerResult] = []
    for index, traveller in enumerate(screened):
        if traveller.position in rejected_positions:
            continue
        found = merged.get(index, {})
        ordered = dict(sorted(found.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])))
        by_position[traveller.position] = TravellerResult(traveller, ordered)
    for traveller in manifest.travellers:
        if traveller.duplicate_of is not None and traveller.duplicate_of in by_position:
            first = by_position[traveller.duplicate_of]
            by_position[traveller.position] = TravellerResult(traveller, dict(first.results))
    results = [by_position[t.position] for t in manifest.travellers if t.position in by_position]
    return Screening(manifest, purpose, results, unqueried, report.elements, report.seconds)


def save_screening(
    store: Store, screening: Screening, *, now: dt.datetime, expires_at: dt.datetime
) -> str:
    """Keep the screening until ``expires_at``; returns the manifest id."""
    m = screening.manifest
    manifest_id = f"M{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
    report = screening.to_dict()
    row = {
        "manifest_id": manifest_id,
        "format": m.format,
        "sha256": m.sha256,
        "reference": m.reference[:120],
        "carrier": m.carrier[:80],
        "transport": m.transport[:40],
        "departure_at": m.departure_at,
        "travellers": len(m.travellers),
        "rejected": len(screening.rejected),
        "hits": len(screening.hits()),
        "status": screening.status,
        "purpose": screening.purpose,
        "screened_at": now,
        "expires_at": expires_at,
        "report": {k: report[k] for k in ("manifest", "status", "hits", "elements", "seconds",
                                           "rejected", "problems")},
    }  # fmt: skip
    travellers = [
        (r.traveller.position, r.traveller.to_dict() | {"summary": r.summary()}, r.rows())
        for r in screening.travellers
    ]
    event = {"travellers": len(m.travellers), "rejected": len(screening.rejected),
             "hits": len(screening.hits()), "status": screening.status,
             "purpose": screening.purpose, "sha256": m.sha256,
             "peers": sorted({o.peer for r in screening.travellers for o in r.results.values()
                              if o.status in ("hit", "no hit")})}  # fmt: skip
    store.manifests.save(row, travellers, event)
    return manifest_id

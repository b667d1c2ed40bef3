"""The regional consular directory: members' public entries, merged by the Secretariat.

Why over the network: the members agreed (2016) to send the ST the consulates and embassies
of origin countries accredited in their territory, with the procedures each handles, for the
CRM's public page. Each node already keeps that list (dataset ``consular_directory``); the ST
asks every member for it over :data:`LIST`, which the member answers under a ``directory``
grant of its agreement with the ST (dataset ``consular_directory``). Public data still goes
through the agreement: deny by default holds for every service.

Invariants:
* :func:`merge_entries` is pure. Entries are keyed by (origin, host, city, consulate name,
  compared case- and accent-insensitively). When several members list the same consulate,
  the entry of the host country itself wins (it accredits the consulate); otherwise the first
  reporter in country order. ``reported_by`` names every member that listed it.
* A member that does not answer is named in the collection's ``missing``; the merged
  directory is built from the others.
"""

from __future__ import annotations

import csv
import io
import json
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from crypto.envelope import format_time
from enlace.v1 import secretariat_pb2
from node.client import PeerClient
from node.errors import EnlaceError, InvalidArgumentError
from node.runtime import NodeRuntime
from node.secretariat.consular_answer import check_entries
from node.secretariat.pull import PullPolicy, Retrier, member_countries
from node.server.pipeline import Ask, CallContext, MethodSpec
from node.stats.export import spreadsheet_safe

SERVICE = "enlace.v1.ConsularService"
LIST = f"/{SERVICE}/ListConsulates"
DATASET = "consular_directory"
PURPOSE = "consular_directory"
COLUMNS = (
    "origin_country",
    "host_country",
    "city",
    "consulate_name",
    "address",
    "phone",
    "email",
    "procedures",
    "reported_by",
)


@dataclass(frozen=True)
class ConsularEntry:
    origin_country: str
    host_country: str
    city: str
    consulate_name: str
    address: str = ""
    phone: str = ""
    email: str = ""
    procedures: tuple[str, ...] = ()
    reported_by: tuple[str, ...] = ()

    def key(self) -> tuple[str, str, str, str]:
        return (
            self.origin_country,
            self.host_country,
            _fold(self.city),
            _fold(self.consulate_name),
        )


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


# -- member side ------------------------------------------------------------------------------


def _describe(request: secretariat_pb2.ListConsulatesRequest) -> Ask:
    return Ask(dataset=DATASET)


def list_consulates(
    ctx: CallContext, request: secretariat_pb2.ListConsulatesRequest
) -> secretariat_pb2.ListConsulatesResponse:
    origin = request.origin_country.strip().upper()
    if origin and (len(origin) != 3 or not (origin.isascii() and origin.isalpha())):
        raise InvalidArgumentError("an ISO 3166 alpha-3 code", field="origin_country")
    response = secretariat_pb2.ListConsulatesResponse()
    for row in ctx.runtime.store.records.iter_rows(DATASET):
        if origin and row["origin_country"] != origin:
            continue
        response.entries.add(
            origin_country=row["origin_country"],
            host_country=row["host_country"],
            city=row["city"],
            consulate_name=row["consulate_name"],
            address=row["address"] or "",
            phone=row["phone"] or "",
            email=row["email"] or "",
            procedures=[p for p in str(row["procedures"]).split(";") if p],
        )
    as_of = ctx.runtime.store.records.data_as_of()
    response.as_of = format_time(as_of) if as_of else ""
    ctx.audit_extra.update(entries=len(response.entries))
    return response


def method_specs() -> list[MethodSpec]:
    return [
        MethodSpec(
            LIST, "directory", secretariat_pb2.ListConsulatesRequest, list_consulates, _describe
        )
    ]


# -- Secretariat side -------------------------------------------------------------------------


@dataclass
class ConsularCollection:
    entries: list[ConsularEntry]
    received: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def merge_entries(by_member: Mapping[str, Iterable[ConsularEntry]]) -> list[ConsularEntry]:
    """One entry per consulate; see the module docstring for which copy wins."""
    chosen: dict[tuple[str, str, str, str], ConsularEntry] = {}
    reporters: dict[tuple[str, str, str, str], list[str]] = {}
    for member in sorted(by_member):
        for entry in by_member[member]:
            key = entry.key()
            reporters.setdefault(key, [])
            if member not in reporters[key]:
                reporters[key].append(member)
            current = chosen.get(key)
            if current is None or (
                member == entry.host_country and current.reported_by != (entry.host_country,)
            ):
                chosen[key] = ConsularEntry(
                    entry.origin_country,
                    entry.host_country,
                    entry.city,
                    entry.consulate_name,
                    entry.address,
                    entry.phone,
                    entry.email,
                    tuple(sorted(set(entry.procedures))),
                    (member,),
                )
    merged = [
        ConsularEntry(**{**asdict(e), "reported_by": tuple(sorted(reporters[k]))})
        for k, e in chosen.items()
    ]
    return sorted(merged, key=lambda e: (e.origin_country, e.host_country, _fold(e.city)))


def _fetch(runtime: NodeRuntime, member: str, policy: PullPolicy) -> list[ConsularEntry]:
    with PeerClient(runtime, member, timeout=policy.call_timeout) as client:
        reply = Retrier(policy).call(
            client,
            LIST,
            secretariat_pb2.ListConsulatesRequest(),
            secretariat_pb2.ListConsulatesResponse,
            purpose=PURPOSE,
            deadline=time.monotonic() + policy.node_deadline,
        )
    check_entries(member, reply.message.entries)
    return [
        ConsularEntry(
            e.origin_country,
            e.host_country,
            e.city,
            e.consulate_name,
            e.address,
            e.phone,
            e.email,
            tuple(e.procedures),
        )
        for e in reply.message.entries
    ]


def collect(
    runtime: NodeRuntime,
    *,
    members: Sequence[str] | None = None,
    policy: PullPolicy | None = None,
) -> ConsularCollection:
    """Ask every member for its entries, concurrently, and merge what arrived."""
    policy = policy or PullPolicy()
    countries = list(members) if members is not None else member_countries(runtime)
    by_member: dict[str, list[ConsularEntry]] = {}
    collection = ConsularCollection([])
    with ThreadPoolExecutor(
        max_workers=max(1, min(policy.max_workers, len(countries) or 1))
    ) as pool:
        futures = {c: pool.submit(_fetch, runtime, c, policy) for c in countries}
        for country, future in futures.items():
            try:
                by_member[country] = future.result()
                collection.received[country] = len(by_member[country])
            except EnlaceError as exc:
                collection.missing[country] = str(exc)
    collection.entries = merge_entries(by_member)
    return collection


def to_csv(entries: Sequence[ConsularEntry]) -> bytes:
    """The merged directory as CSV for people who open it in a spreadsheet: a member's free
    text (city, name, address, e-mail) that a spreadsheet would run as a formula ("=…", "@…")
    is prefixed with ``'``; the phone is already held to ``+507 263 9001``'s form, digits only,
    and stays as reported."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    safe = spreadsheet_safe
    for e in entries:
        writer.writerow(
            [
                e.origin_country,
                e.host_country,
                safe(e.city),
                safe(e.consulate_name),
                safe(e.address),
                e.phone,
                safe(e.email),
                ";".join(e.procedures),
                ";".join(e.reported_by),
            ]
        )
    # With a byte-order mark, as the regional CSVs: Excel otherwise reads "Afganistán" as
    # Windows-1252 and garbles it.
    return out.getvalue().encode("utf-8-sig")


def to_json(collection: ConsularCollection) -> bytes:
    data = {
        "entries": [
            {**asdict(e), "procedures": list(e.procedures), "reported_by": list(e.reported_by)}
            for e in collection.entries
        ],
        "received": collection.received,
        "missing": collection.missing,
    }
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")

"""Which records feed which match dataset, and the identity keys of records and of queries.

Why: holder and querier must build the *same* OPRF inputs for the same document or person.
:mod:`node.matching.keys` decides the bytes; this module decides which keys each matchable
dataset publishes, read from which local tables, and which keys a document or person query
sends to each dataset — so the two sides cannot drift apart.

Datasets offered for matching (``docs/matching.md``):

========================  =====================================  ==========================
match dataset             built from                             keys
========================  =====================================  ==========================
``travel_documents``      ``travel_documents``                   document
``document_alerts``       ``document_alerts``                    document (alert domain)
``persons_of_interest``   ``persons_of_interest``                document and name + birth
``identities``            ``encounters`` and ``travel_documents``  name + birth (several exact)
========================  =====================================  ==========================

``identities`` keys use the ``person:encounters`` key domain of :mod:`node.matching.keys` (the
key format predates the dataset name); its OPRF key is its own, derived for ``identities``.

Invariants:
* :func:`record_keys` and the query builders are pure and deterministic; a record that cannot
  be keyed (no birth date for a person key, a document number the ICAO rules refuse) yields no
  key rather than a guessed one.
* Keys of one record are distinct and sorted, so their position (``key_no``) is stable.
* A query sends a subset of the keys the same person or document would publish as a record
  (:func:`node.matching.keys.person_query_inputs`): fewer elements, never a key no holder
  builds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine

from crypto.errors import NormalisationError
from node.errors import EnlaceError, InvalidArgumentError
from node.matching.keys import (
    DatePolicy,
    alert_input,
    document_input,
    person_inputs,
    person_query_inputs,
    poi_inputs,
)
from node.records.dates import PartialDate, parse_partial_date
from node.store.records_schema import DATASET_TABLES

MATCH_DATASETS: tuple[str, ...] = (
    "travel_documents",
    "document_alerts",
    "persons_of_interest",
    "identities",
)
#: The datasets a document query asks, and a person query asks.
DOCUMENT_DATASETS: tuple[str, ...] = ("travel_documents", "document_alerts", "persons_of_interest")
PERSON_DATASETS: tuple[str, ...] = ("identities", "persons_of_interest")

#: Local tables each match dataset is built from.
SOURCES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "travel_documents": ("travel_documents",),
        "document_alerts": ("document_alerts",),
        "persons_of_interest": ("persons_of_interest",),
        "identities": ("encounters", "travel_documents"),
    }
)

_IDENTITY_DOMAIN = "encounters"  # key domain of identities keys (see the module docstring)
_FETCH = 10_000  # rows per driver fetch while streaming records on SQLite

_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "travel_documents": (
            "document_number_norm", "issuing_state", "surname", "given_names",
            "birth_year", "birth_month", "birth_day",
        ),
        "document_alerts": ("document_number_norm", "issuing_state"),
        "persons_of_interest": (
            "document_number_norm", "issuing_state", "surname", "given_names",
            "birth_year", "birth_month", "birth_day",
        ),
        "encounters": ("surname", "given_names", "birth_year", "birth_month", "birth_day"),
    }
)  # fmt: skip
#: Datasets whose keys need fewer columns of a source than :data:`_COLUMNS` (which serves every
#: dataset the source feeds): a filter build reads, and sends to its workers, only these.
_NARROW: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {("travel_documents", "travel_documents"): ("document_number_norm", "issuing_state")}
)


def check_dataset(dataset: str) -> str:
    """``dataset`` if it is offered for matching; INVALID_ARGUMENT otherwise."""
    if dataset not in MATCH_DATASETS:
        raise InvalidArgumentError(
            f"{dataset!r} is not offered for matching",
            field="dataset",
            hint="use one of " + ", ".join(MATCH_DATASETS),
        )
    return dataset


def datasets_fed_by(table: str) -> tuple[str, ...]:
    """The match datasets that change when ``table`` is imported."""
    return tuple(d for d in MATCH_DATASETS if table in SOURCES[d])


def _birth(row: Mapping[str, Any]) -> PartialDate | None:
    year = row.get("birth_year")
    if not year:
        return None
    return PartialDate(int(year), row.get("birth_month") or None, row.get("birth_day") or None)


def record_keys(dataset: str, source: str, row: Mapping[str, Any]) -> list[bytes]:
    """The OPRF inputs one stored record contributes to ``dataset`` (possibly none)."""
    try:
        keys = _record_keys(dataset, source, row)
    except (EnlaceError, NormalisationError, ValueError):
        return []
    return sorted(set(keys))


def _record_keys(dataset: str, source: str, row: Mapping[str, Any]) -> list[bytes]:
    number, state = row.get("document_number_norm"), row.get("issuing_state")
    if dataset == "travel_documents":
        return [document_input(str(number), str(state))] if number and state else []
    if dataset == "document_alerts":
        return [alert_input(str(number), str(state))] if number and state else []
    surname, given = str(row.get("surname") or ""), str(row.get("given_names") or "")
    birth = _birth(row)
    if dataset == "persons_of_interest":
        if birth is None and not (number and state):
            return []
        return poi_inputs(
            surname,
            given,
            birth,
            str(number) if number else None,
            str(state) if state else None,
        )
    if dataset == "identities":
        if birth is None or not surname:
            return []
        return person_inputs(surname, given, birth, dataset=_IDENTITY_DOMAIN)
    raise InvalidArgumentError(f"no keys for {dataset!r} from {source!r}", field="dataset")


@dataclass(frozen=True)
class SourceRecord:
    source: str
    record_id: str
    content_hash: str
    row: Mapping[str, Any]


def iter_records(engine: Engine, dataset: str) -> Iterator[SourceRecord]:
    """Every stored record that feeds ``dataset``, with the columns its keys need.

    Plain driver SQL, streamed: a rebuild reads every record, and per-row ORM processing would
    cost more than building its keys.
    """
    for source in SOURCES[check_dataset(dataset)]:
        table = DATASET_TABLES[source]
        names = ["record_id", "content_hash", *_NARROW.get((dataset, source), _COLUMNS[source])]
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            sql = f"SELECT {', '.join(quote(n) for n in names)} FROM {quote(table.name)}"
            for row in _rows(conn, sql):
                mapping: dict[str, Any] = dict(zip(names, row, strict=True))
                yield SourceRecord(source, str(row[0]), str(row[1]), mapping)


def count_records(engine: Engine, dataset: str) -> int:
    """How many stored records :func:`iter_records` reads for ``dataset``."""
    total = 0
    with engine.connect() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for source in SOURCES[check_dataset(dataset)]:
            table = quote(DATASET_TABLES[source].name)
            total += int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())
    return total


def _rows(conn: Connection, sql: str) -> Iterator[Sequence[Any]]:
    """The rows of one SELECT, streamed. On SQLite straight from the driver's cursor in
    batches: SQLAlchemy's per-row fetch was 1.7 of the 2.5 s a 1M read took (one statement,
    so still one read snapshot). PostgreSQL keeps a server-side cursor."""
    if conn.dialect.name != "sqlite":
        yield from conn.execution_options(stream_results=True).exec_driver_sql(sql)
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_FETCH):
            yield from batch
    finally:
        cursor.close()


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """One thing a querier asks about: a document or a person, with the querier's label."""

    label: str
    kind: str  # "document" or "person"
    number: str = ""
    issuing_state: str = ""
    surname: str = ""
    given_names: str = ""
    birth_date: str = ""
    dates: DatePolicy = "every"  # which birth-date precisions a person query sends

    def describe(self) -> str:
        if self.kind == "document":
            return f"{self.issuing_state} {self.number}"
        return f"{self.surname}, {self.given_names} ({self.birth_date})"


def document_query(number: str, issuing_state: str, label: str = "") -> Query:
    query = Query(label or f"{issuing_state}:{number}", "document", number, issuing_state)
    query_keys(query)  # refuse what cannot be normalised now, naming the field
    return query


def split_name(name: str) -> tuple[str, str]:
    """``"SURNAMES, GIVEN NAMES"`` → (surnames, given names); the comma is required."""
    surname, comma, given = name.partition(",")
    if not comma or not surname.strip():
        raise InvalidArgumentError(
            f"name {name!r} does not say which part is the surname",
            field="name",
            hint='write it as "SURNAMES, GIVEN NAMES", e.g. "GARCIA LOPEZ, MARIA JOSE"',
        )
    return surname.strip(), given.strip()


def person_query(
    surname: str,
    given_names: str,
    birth_date: str,
    label: str = "",
    *,
    dates: DatePolicy = "every",
) -> Query:
    """A person query; ``dates`` trades the precision reported for fewer keys (``covering``
    finds the same hits as ``every``; see :mod:`node.matching.keys`)."""
    query = Query(
        label or f"{surname}, {given_names} {birth_date}",
        "person",
        surname=surname,
        given_names=given_names,
        birth_date=birth_date,
        dates=dates,
    )
    query_keys(query)
    return query


def query_keys(query: Query, datasets: Sequence[str] = MATCH_DATASETS) -> dict[str, list[bytes]]:
    """The OPRF inputs ``query`` sends to each dataset it concerns (see the module table),
    among ``datasets``."""
    out: dict[str, list[bytes]] = {}
    try:
        if query.kind == "document":
            number, state = query.number, query.issuing_state
            for dataset in DOCUMENT_DATASETS:
                if dataset in datasets:
                    build = alert_input if dataset == "document_alerts" else None
                    out[dataset] = [
                        build(number, state)
                        if build
                        else document_input(number, state, dataset=dataset)
                    ]
            return out
        birth = parse_partial_date(query.birth_date)
        for dataset in PERSON_DATASETS:
            if dataset in datasets:
                domain = _IDENTITY_DOMAIN if dataset == "identities" else dataset
                out[dataset] = person_query_inputs(
                    query.surname, query.given_names, birth, dataset=domain, dates=query.dates
                )
        return out
    except NormalisationError as exc:
        raise InvalidArgumentError(str(exc), field=query.kind) from exc


def keys_by_dataset(
    queries: Sequence[Query], datasets: Sequence[str]
) -> dict[str, list[tuple[int, bytes]]]:
    """``dataset -> [(query index, input)]`` for every dataset in ``datasets``."""
    out: dict[str, list[tuple[int, bytes]]] = {d: [] for d in datasets}
    for index, query in enumerate(queries):
        for dataset, inputs in query_keys(query, datasets).items():
            out[dataset].extend((index, value) for value in inputs)
    return out

"""Identity keys: the exact byte strings that holder and querier feed to the OPRF.

Why: matching is exact (DESIGN section 7). A hit happens only when both sides build the *same
bytes* from the same person or document, so this module is the one place that decides those
bytes, from the ICAO and name normalisation of :mod:`node.records`. Every key is::

    enlace/1 <kind>:<dataset>|<rule edition>|<canonical value>

    enlace/1 doc:travel_documents|icao9303-1|PAN|AB1234567
    enlace/1 doc:document_alerts|icao9303-1|PAN|AB1234567
    enlace/1 person:persons_of_interest|names-1|1990-05-17|GARCIA LOPEZ|MARIA JOSE

* ``<kind>:<dataset>`` separates domains: an output computed for one dataset never equals one
  for another, even under the same OPRF key, so a hit always says which dataset it came from.
* The rule edition (:data:`node.records.icao.NORMALISATION_VERSION` or
  :data:`node.records.names.TRANSLITERATION_VERSION`) makes keys built under different rules
  differ instead of silently missing or colliding.

Persons are matched on names and date of birth through several exact keys, one per name variant
(:func:`node.records.names.name_variants`, at most 8) and per known date precision (day, month,
year, at most 3): at most 24, usually 3 to 6. That is what a *holder* publishes. A *querier*
needs fewer (:func:`person_query_inputs`): a hit means one key in common, and

* names: every variant ``SURNAME|GIVEN`` of either side comes with ``SURNAME|FIRST-GIVEN``, so a
  common variant implies a common one with a single given name; and a holder that has
  ``S|G`` also has ``FIRST-SURNAME(S)|G``, unless ``S|G`` is its ICAO alternative spelling
  (Ä→AE, Ö→OE, Ü→UE, Å→AA), which always contains one of those digraphs. So the querier sends
  ``FIRST-SURNAME|FIRST-GIVEN``, plus ``SURNAME|FIRST-GIVEN`` when that contains a digraph,
  plus its own alternative spelling (names with Ä, Ö, Ü, Å): usually one key, and every hit
  the full set finds, at the same date precision (:func:`query_name_variants`);
* dates (:data:`DatePolicy`): ``every`` known precision (the strength of a hit is exact);
  ``covering``, the finest form and the year: the same hits, because a holder that shares the
  month shares the year too, but a month-level hit is reported as year-level; ``finest``
  only: a full date of birth then no longer meets holder records that know only the month or
  the year (or another day of the same month or year), which ``docs/manifests.md`` quantifies.

All are whole exact strings evaluated by the OPRF, deliberately *not* Bloom-filter encodings of name
bigrams: a Bloom encoding is keyed by a secret every participant shares, so anyone holding it can
run a dictionary of names and dates through it and re-identify people offline; an OPRF key never
leaves the holder, so every guess costs a metered, logged round trip. Sex and nationality are not
part of person keys: they are routinely presumed, unknown or recorded differently across members.

Invariants:
* Every function is deterministic and pure; equal inputs after normalisation give equal keys.
* Keys are ASCII, contain the separator ``|`` only where shown, and are at most
  :data:`MAX_INPUT_BYTES` long (far below the OPRF's 65535-byte limit); a longer one raises.
* A person key needs a date of birth (at least the year): name-only keys would match every
  namesake, so they are never built.
* A querier's person keys are a subset of the keys the same person would publish as a holder
  (so a query never needs a holder to rebuild its filters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from crypto.errors import NormalisationError
from crypto.oprf import MAX_INPUT_SIZE
from node.errors import InvalidArgumentError
from node.records.dates import PartialDate
from node.records.icao import NORMALISATION_VERSION, document_key
from node.records.names import TRANSLITERATION_VERSION, first_surname, name_variants

KEY_FORMAT = "enlace/1"
MAX_INPUT_BYTES = 512

Kind = Literal["doc", "person"]
Precision = Literal["day", "month", "year"]
PRECISIONS: tuple[Precision, ...] = ("day", "month", "year")
DatePolicy = Literal["every", "covering", "finest"]
DATE_POLICIES: tuple[DatePolicy, ...] = ("every", "covering", "finest")

#: Which kinds of key each dataset can be matched on.
DATASET_KINDS = MappingProxyType(
    {
        "travel_documents": frozenset({"doc"}),
        "document_alerts": frozenset({"doc"}),
        "persons_of_interest": frozenset({"doc", "person"}),
        "encounters": frozenset({"doc", "person"}),
    }
)

#: The rule editions a filter's manifest must carry (``FilterManifest.normalisation``).
NORMALISATION_VERSIONS = MappingProxyType(
    {"keys": KEY_FORMAT, "documents": NORMALISATION_VERSION, "names": TRANSLITERATION_VERSION}
)

_DATE_RE = re.compile(r"^\d{4}(-\d{2}){0,2}$", re.ASCII)
_DIGRAPHS = ("AE", "OE", "UE", "AA")  # what Ä, Ö, Ü, Å become in the ICAO alternative spelling
_EDITION: dict[Kind, str] = {"doc": NORMALISATION_VERSION, "person": TRANSLITERATION_VERSION}

assert MAX_INPUT_BYTES <= MAX_INPUT_SIZE


def _prefix(kind: Kind, dataset: str) -> str:
    allowed = DATASET_KINDS.get(dataset)
    if allowed is None:
        raise InvalidArgumentError(
            f"{dataset!r} is not matched by identity keys",
            field="dataset",
            hint=f"use one of {', '.join(sorted(DATASET_KINDS))}",
        )
    if kind not in allowed:
        raise InvalidArgumentError(
            f"{dataset} is not matched on {kind} keys",
            field="dataset",
            hint=f"{dataset} takes {' and '.join(sorted(allowed))} keys",
        )
    return f"{KEY_FORMAT} {kind}:{dataset}|{_EDITION[kind]}|"


def _encode(text: str) -> bytes:
    data = text.encode("ascii")
    if len(data) > MAX_INPUT_BYTES:
        raise NormalisationError(
            f"identity key of {len(data)} bytes exceeds {MAX_INPUT_BYTES}; the name is too long"
        )
    return data


def document_input(number: str, issuing_state: str, *, dataset: str = "travel_documents") -> bytes:
    """The OPRF input for a travel document in ``dataset`` (ICAO-normalised number and state)."""
    return _encode(_prefix("doc", dataset) + document_key(number, issuing_state))


def alert_input(number: str, issuing_state: str) -> bytes:
    """The OPRF input for a document checked against the holder's ``document_alerts``."""
    return document_input(number, issuing_state, dataset="document_alerts")


def birth_date_forms(
    birth_date: PartialDate, precisions: Iterable[Precision] = PRECISIONS
) -> list[str]:
    """The date strings of ``birth_date`` at each requested precision it actually has."""
    wanted = set(precisions)
    unknown = wanted - set(PRECISIONS)
    if unknown or not wanted:
        raise InvalidArgumentError(
            f"precisions {sorted(wanted)} are not a non-empty subset of {list(PRECISIONS)}",
            field="precisions",
        )
    forms: list[str] = []
    if "day" in wanted and birth_date.is_complete:
        forms.append(f"{birth_date.year:04d}-{birth_date.month:02d}-{birth_date.day:02d}")
    if "month" in wanted and birth_date.month is not None:
        forms.append(f"{birth_date.year:04d}-{birth_date.month:02d}")
    if "year" in wanted:
        forms.append(f"{birth_date.year:04d}")
    return forms


def person_inputs(
    surname: str,
    given_names: str,
    birth_date: PartialDate | None,
    *,
    dataset: str = "encounters",
    precisions: Iterable[Precision] = PRECISIONS,
) -> list[bytes]:
    """The exact OPRF inputs for a person: name variants x known date precisions, sorted.

    Both sides build all of them; a hit on any one counts, and :func:`parse_input` tells which
    (a year-only hit is weaker evidence than a full-date one and is reported as such).
    ``precisions`` lets a holder leave out the weaker year-only keys of a large dataset.
    """
    if birth_date is None:
        raise InvalidArgumentError(
            "a person key needs a date of birth (at least the year)",
            field="birth_date",
            hint="match this record by its document instead, or record the birth year",
        )
    prefix = _prefix("person", dataset)
    dates = birth_date_forms(birth_date, precisions)
    return sorted(
        _encode(f"{prefix}{date}|{variant}")
        for date in dates
        for variant in name_variants(surname, given_names)
    )


def query_name_variants(surname: str, given_names: str) -> list[str]:
    """The name variants a querier sends: a subset of :func:`name_variants` that meets every
    holder the full set meets (see the module docstring), usually a single one."""
    single = {v for v in name_variants(surname, given_names) if " " not in v.partition("|")[2]}
    kept: list[str] = []
    for variant in sorted(single):
        name, _, given = variant.partition("|")
        shorter = f"{first_surname(name)}|{given}"
        if shorter == variant or shorter not in single:
            kept.append(variant)  # nothing else of ours meets the holders this one meets
        elif any(d in variant for d in _DIGRAPHS):
            kept.append(variant)  # may equal a holder's alternative spelling
    return kept


def query_date_forms(birth_date: PartialDate, policy: DatePolicy = "every") -> list[str]:
    """The date strings a querier sends for ``birth_date`` under ``policy`` (module docstring)."""
    if policy not in DATE_POLICIES:
        raise InvalidArgumentError(
            f"date policy {policy!r} is not one of {', '.join(DATE_POLICIES)}", field="dates"
        )
    forms = birth_date_forms(birth_date)
    if policy == "finest":
        return forms[:1]
    if policy == "covering":
        return sorted({forms[0], forms[-1]}, key=len, reverse=True)
    return forms


def person_query_inputs(
    surname: str,
    given_names: str,
    birth_date: PartialDate | None,
    *,
    dataset: str = "encounters",
    dates: DatePolicy = "every",
) -> list[bytes]:
    """The OPRF inputs a querier sends for a person: :func:`query_name_variants` x
    :func:`query_date_forms`, sorted; always a subset of :func:`person_inputs`."""
    if birth_date is None:
        return person_inputs(surname, given_names, birth_date, dataset=dataset)
    prefix = _prefix("person", dataset)
    return sorted(
        _encode(f"{prefix}{date}|{variant}")
        for date in query_date_forms(birth_date, dates)
        for variant in query_name_variants(surname, given_names)
    )


def poi_inputs(
    surname: str,
    given_names: str,
    birth_date: PartialDate | None,
    document_number: str | None = None,
    issuing_state: str | None = None,
) -> list[bytes]:
    """The inputs checked against ``persons_of_interest``: person keys and the document key."""
    inputs: list[bytes] = []
    if birth_date is not None:
        inputs += person_inputs(surname, given_names, birth_date, dataset="persons_of_interest")
    if document_number:
        if not issuing_state:
            raise InvalidArgumentError(
                "a document number needs its issuing state", field="issuing_state"
            )
        inputs.append(document_input(document_number, issuing_state, dataset="persons_of_interest"))
    if not inputs:
        raise InvalidArgumentError(
            "a person of interest needs a date of birth or a document to be matched",
            field="birth_date",
        )
    return inputs


@dataclass(frozen=True)
class IdentityInput:
    """What an OPRF input says about itself; used to report which key of a query hit."""

    kind: Kind
    dataset: str
    edition: str
    value: str
    precision: Precision | None = None

    @property
    def strength(self) -> str:
        """``document``, or the date precision of a person hit (``day`` is the strongest)."""
        return "document" if self.kind == "doc" else f"name+{self.precision}"


def parse_input(data: bytes) -> IdentityInput:
    """Read back a key built here (never a peer's: peers only ever see OPRF outputs)."""
    try:
        text = data.decode("ascii")
        head, edition, value = text.split("|", 2)
        version, label = head.split(" ", 1)
        kind, dataset = label.split(":", 1)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NormalisationError(f"{data!r} is not an identity key") from exc
    if version != KEY_FORMAT or kind not in _EDITION:
        raise NormalisationError(f"{data!r} is not an {KEY_FORMAT} identity key")
    typed: Kind = "doc" if kind == "doc" else "person"
    if typed not in DATASET_KINDS.get(dataset, ()):
        raise NormalisationError(f"{data!r} names no {typed} keys of a known dataset")
    if not text.startswith(_prefix(typed, dataset)):
        raise NormalisationError(f"{data!r} carries rule edition {edition!r}")
    if typed == "doc":
        return IdentityInput(typed, dataset, edition, value)
    date, _, name = value.partition("|")
    if not _DATE_RE.match(date) or not name:
        raise NormalisationError(f"{data!r} has no date of birth and name")
    precision: Precision = ("year", "month", "day")[date.count("-")]
    return IdentityInput(typed, dataset, edition, name, precision)


def strongest(hits: Sequence[IdentityInput]) -> IdentityInput | None:
    """The most specific hit of a query: a document, then day, month and year precision."""
    order = {"document": 0, "name+day": 1, "name+month": 2, "name+year": 3}
    return min(hits, key=lambda hit: order[hit.strength], default=None)

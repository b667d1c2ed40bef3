"""Deterministic synthetic records for one member, consistent across the whole federation.

Why: nodes, the importer, statistics, disclosure control and matching all need realistic local
files, and matching needs the *same* people to appear in several countries' files. Persons who
journey through the region are drawn from a federation-wide stream (``federation_seed``): person
``g`` has the same route, dates, names, documents and face-template base vector whichever
country is generated. Each country scans a prefix of that stream for the persons it records and
fills the rest of its file with local persons drawn with its own seed from the same calibrated
distribution (:mod:`node.records.calibration`).

Invariants:
* ``generate(country, n, seed, ...)`` writes byte-identical files for the same arguments; the
  encounters file has exactly ``n`` data rows.
* Federation attributes of person ``g`` are counter-based hashes of ``(federation_seed, g,
  field)``: they depend neither on the country asking nor on how far it scans.
* Everything written validates against :mod:`node.records.datasets`. Document numbers are
  canonical ICAO numbers (the encounters file types a few of them loosely, as officers do);
  ``ground_truth.csv`` holds the canonical ``STATE|NUMBER`` keys of what each country recorded.
* Rows are produced in bounded batches (numpy columns joined into lines; no generated field
  holds a comma, quote or line break, which is checked for the name pools): memory does not
  grow with ``n``.
"""

from __future__ import annotations

import base64
import csv
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from node.errors import InvalidArgumentError
from node.records import calibration as cal
from node.records.codelists import (
    REGIONAL_MEMBERS,
    Language,
    age_group_for,
    codelist,
    iso_alpha2_to_alpha3,
)
from node.records.datasets import DATASETS, TEMPLATE_DIMENSION
from node.records.names import normalise_name

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
Uniforms = Callable[[int], F64]

DEFAULT_FEDERATION_SEED = 20_260_101
JOURNEY_SHARE = 0.5  # target share of a file's events that belong to journeying persons
MAX_SCAN_FACTOR = 8  # scan at most this many stream persons per requested encounter
SCAN_CHUNK = 1 << 15
LOCAL_CHUNK = 1 << 15
ALERT_SHARE = 0.015
EPOCH = np.datetime64("2014-01-01", "D")
END_DAY = int((np.datetime64("2024-12-31", "D") - EPOCH).astype(np.int64))
OUTPUT_FILES = (
    "encounters.csv", "travel_documents.csv", "document_alerts.csv", "persons_of_interest.csv",
    "biometric_templates.csv", "consular_directory.csv", "ground_truth.csv",
)  # fmt: skip
GROUND_TRUTH_COLUMNS = (
    "global_person_id", "country", "dataset", "local_id", "document_key", "true_nationality",
)  # fmt: skip

# Field numbers of the counter-based hash (federation persons); locals draw from their RNG.
F_SEX, F_MINOR, F_AGE, F_DOC, F_KIND, F_BOTH, F_ISSUE, F_ISSUE2 = range(1, 9)
F_SUR, F_G1, F_G2, F_G2P, F_ALERT, F_ALERT_TYPE, F_BIO = range(9, 16)
F_CELL, F_DAY, F_REACH, F_DET, F_DELAY, F_PCHARS, F_ICHARS = 20, 21, 30, 50, 70, 100, 130
D_PERSON, D_SMUGGLER, D_BIO = 1, 2, 3
_MASK = (1 << 64) - 1

# --- local presentation of records (assumed) ------------------------------------------------
BORDER_POSTS: Mapping[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "PAN": (("ERM-LB", "ERM-SV", "PC", "GB", "PTY"), (0.5, 0.35, 0.08, 0.02, 0.05)),
    "CRI": (("EATM-SUR", "PCAN", "PPB", "SJO", "LCH"), (0.55, 0.25, 0.12, 0.05, 0.03)),
    "NIC": (("PPB", "MGA", "GUASAULE", "LAS-MANOS"), (0.4, 0.3, 0.15, 0.15)),
    "HND": (("CAMI-DANLI", "CAMI-TROJES", "CAMI-CHOLUTECA", "AGUA-CALIENTE", "CORINTO"),
            (0.5, 0.2, 0.15, 0.1, 0.05)),
    "SLV": (("SAL", "LA-HACHADURA", "SAN-CRISTOBAL", "EL-AMATILLO"), (0.5, 0.2, 0.15, 0.15)),
    "GTM": (("AGUA-CALIENTE", "CORINTO", "TECUN-UMAN", "EL-CEIBO", "GUA"),
            (0.35, 0.2, 0.25, 0.1, 0.1)),
    "BLZ": (("BENQUE", "SANTA-ELENA", "BZE", "JALACTE"), (0.4, 0.3, 0.2, 0.1)),
    "MEX": (("TAP", "CDHID", "TEN", "CHT", "CDMX", "MTY", "CDJ", "TIJ", "PNEG", "MAT"),
            (0.3, 0.12, 0.1, 0.04, 0.1, 0.08, 0.08, 0.08, 0.05, 0.05)),
    "USA": (("RGV", "DRT", "LRT", "EPT", "TCA", "YUM", "SDC", "ELC", "BBT"),
            (0.25, 0.15, 0.08, 0.14, 0.14, 0.08, 0.1, 0.04, 0.02)),
    "CAN": (("YUL", "YYZ", "LACOLLE", "YVR"), (0.35, 0.35, 0.2, 0.1)),
    "DOM": (("DAJABON", "ELIAS-PINA", "JIMANI", "PEDERNALES", "SDQ"),
            (0.4, 0.2, 0.2, 0.1, 0.1)),
}  # fmt: skip
AIRPORTS: Mapping[str, str] = {"NIC": "MGA", "SLV": "SAL"}
CARE: Mapping[str, Mapping[str, float]] = {
    "PAN": {"food": 0.8, "health": 0.3, "shelter": 0.5, "transport": 0.4, "psychosocial": 0.05},
    "CRI": {"food": 0.4, "transport": 0.5, "health": 0.15, "shelter": 0.2},
    "HND": {"food": 0.3, "health": 0.2, "shelter": 0.1, "legal_aid": 0.02},
    "GTM": {"food": 0.1, "health": 0.05},
    "MEX": {"shelter": 0.2, "legal_aid": 0.1, "consular_assistance": 0.05, "health": 0.08},
    "USA": {"health": 0.1, "legal_aid": 0.05},
    "CAN": {"legal_aid": 0.4, "shelter": 0.2, "health": 0.3},
    "DOM": {"consular_assistance": 0.02},
}  # fmt: skip
VULNERABILITY_CODES = (
    "unaccompanied_minor", "separated_minor", "possible_trafficking_victim", "pregnant",
    "disability", "chronic_illness", "elderly", "lgbtiq",
)  # fmt: skip
EXPLICIT_NONE = frozenset({"PAN", "CRI", "MEX"})  # these systems record "ninguna" explicitly
ZERO_DATES = frozenset({"HND", "GTM", "SLV", "NIC"})  # partial dates written as 1990-00-00
MRZ_NAMES = frozenset({"USA", "CAN"})  # names mostly stored as read from the MRZ
ALERT_TYPES = ("impostor", "stolen", "counterfeit", "forged", "fraudulently_obtained", "fraudulent")
ALERT_WEIGHTS = (0.3, 0.2, 0.15, 0.15, 0.1, 0.1)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote."""

    country: str
    encounters: int
    seed: int
    federation_seed: int
    templates_fraction: float
    out_dir: Path
    rows: Mapping[str, int]
    persons: int
    journeying_persons: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "out_dir": str(self.out_dir),
            "rows": dict(self.rows),
        }


# --------------------------------------------------------------------------- randomness


def _mix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniforms(seed: int, domain: int, ids: I64) -> Uniforms:
    """Uniforms in [0, 1) that depend only on ``(seed, domain, id, field)`` (splitmix64)."""
    base = _mix_int(_mix_int(seed & _MASK) ^ domain)
    keys = ids.astype(np.uint64)

    def draw(field_number: int) -> F64:
        key = np.uint64(_mix_int(base ^ ((field_number * 0xD1B54A32D192ED03) & _MASK)))
        return (_mix(keys ^ key) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    return draw


def _rng_uniforms(rng: np.random.Generator, n: int) -> Uniforms:
    return lambda _field: rng.random(n)


def _pick(cum: F64, u: F64) -> I64:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1).astype(np.int64)


def _cum(weights: F64 | tuple[float, ...]) -> F64:
    c: F64 = np.cumsum(np.asarray(weights, dtype=np.float64))
    out: F64 = c / c[-1]
    return out


# --------------------------------------------------------------------------- static tables


@dataclass(frozen=True, eq=False)
class _Tables:
    model: cal.FlowModel
    nat_codes: tuple[str, ...]  # model nationalities, then "XXX"
    cum_global: F64
    month_start: I64
    month_len: I64
    chain_flat: I64
    country: I64  # (chains, steps) member index, -1 padding
    reach: F64
    detect: F64
    optional: B
    dlo: I64
    dspan: I64
    first_event: I64  # (chains, steps) event index or -1
    per_nat: Mapping[str, npt.NDArray[Any]]
    formats: tuple[str, ...]
    names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    african: I64  # decoy nationalities for presumed/declared mistakes
    common: I64


EVENTS: tuple[str, ...] = tuple(codelist("event_type"))


@functools.cache
def _tables() -> _Tables:
    model = cal.flow_model()
    nats = model.nationalities
    days = np.array(
        [np.datetime64(f"{y}-{m:02d}-01", "D") for y in cal.YEARS for m in range(1, 13)]
        + [np.datetime64(f"{cal.LAST_YEAR + 1}-01-01")]
    )
    offsets = (days - EPOCH).astype(np.int64)
    steps = max(len(c) for c in model.chains)
    shape = (len(model.chains), steps)
    country = np.full(shape, -1, np.int64)
    reach, detect = np.zeros(shape), np.zeros(shape)
    optional = np.zeros(shape, np.bool_)
    dlo, dspan, first = np.zeros(shape, np.int64), np.ones(shape, np.int64), np.full(shape, -1)
    for i, chain in enumerate(model.chains):
        for s, step in enumerate(chain):
            country[i, s] = REGIONAL_MEMBERS.index(step.country)
            reach[i, s], detect[i, s], optional[i, s] = step.reach, step.detect, step.optional
            dlo[i, s], dspan[i, s] = step.delay[0], step.delay[1] - step.delay[0] + 1
            first[i, s] = EVENTS.index(step.first_event) if step.first_event else -1
    pools: list[str] = []
    per: dict[str, list[Any]] = {
        k: []
        for k in (
            "minor",
            "male",
            "has_doc",
            "shows",
            "declared",
            "presumed",
            "id_share",
            "validity",
            "pfmt",
            "ifmt",
            "sur_off",
            "sur_cnt",
            "fem_off",
            "fem_cnt",
            "mal_off",
            "mal_cnt",
            "second",
        )
    }
    offsets_by_group: dict[str, tuple[int, int, int, int, int, int, float]] = {}
    for group, (sur, fem, mal, second) in cal.NAME_POOLS.items():
        spans = []
        for text in (sur, fem, mal):
            entries = [w.replace("_", " ") for w in text.split()]
            spans += [len(pools), len(entries)]
            pools += entries
        offsets_by_group[group] = (*spans, second)  # type: ignore[assignment]
    formats = sorted(
        {
            *cal.PASSPORT_FORMATS.values(),
            cal.DEFAULT_PASSPORT_FORMAT,
            *(f for f, _ in cal.ID_CARD_FORMATS.values()),
        }
    )
    for n in nats:
        minor, male = cal.demography(n)
        b = cal.basis_model(n)
        rest = b.declared + b.presumed + b.unknown
        id_fmt, id_share = cal.ID_CARD_FORMATS.get(n, ("", 0.0))
        so, sc, fo, fc, mo, mc, second = offsets_by_group[cal.name_group(n)]
        values = (
            minor,
            male,
            b.has_document,
            b.shows,
            b.declared / rest,
            b.presumed / rest,
            id_share,
            cal.PASSPORT_VALIDITY_YEARS.get(n, 10),
            formats.index(cal.PASSPORT_FORMATS.get(n, cal.DEFAULT_PASSPORT_FORMAT)),
            formats.index(id_fmt) if id_fmt else -1,
            so,
            sc,
            fo,
            fc,
            mo,
            mc,
            second,
        )
        for key, value in zip(per, values, strict=True):
            per[key].append(value)
    if any(c in entry for entry in pools for c in ',"\r\n'):
        raise ValueError("name pools must not contain commas, quotes or line breaks")
    written = tuple(pools)
    upper = tuple(p.upper() for p in pools)
    mrz = tuple(normalise_name(p) for p in pools)
    native = tuple(cal.CYRILLIC.get(p, p) for p in pools)
    african = np.array([nats.index(n) for n in nats if n in cal.AFRICAN], np.int64)
    common = np.array([nats.index(n) for n in ("VEN", "COL", "ECU", "HTI", "CUB", "PER")])
    w = model.weights.ravel()
    return _Tables(
        model,
        (*nats, "XXX"),
        _cum(w),
        offsets[:-1],
        np.diff(offsets),
        model.chain_of.ravel(),
        country,
        reach,
        detect,
        optional,
        dlo,
        dspan,
        first,
        {k: np.asarray(v) for k, v in per.items()},
        tuple(formats),
        (written, upper, mrz, native),
        african,
        common,
    )


# --------------------------------------------------------------------------- persons


@dataclass
class _People:
    """Column arrays, one entry per person (``gid`` -1 for local persons)."""

    gid: I64
    route: I64
    nat: I64
    chain: I64
    pos: I64  # step of the chain at which this country records the person
    start: I64  # journey start, days since EPOCH
    day: I64  # first record in this country
    reporter: I64  # member that first recorded the person (alerts go there)
    birth: I64
    male: B
    kind: I64  # 0 no document, 1 passport, 2 identity card, 3 both
    passport: npt.NDArray[np.str_]
    idcard: npt.NDArray[np.str_]
    p_expiry: I64
    i_expiry: I64
    sur: I64
    g1: I64
    g2: I64
    alert: F64
    alert_type: F64
    bio: F64

    def take(self, index: I64 | B) -> _People:
        return _People(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def __len__(self) -> int:
        return len(self.gid)


def _concat(parts: list[_People]) -> _People:
    return _People(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_People)}
    )


def _numbers(t: _Tables, u: Uniforms, fmt: I64, mask: B, base: int) -> npt.NDArray[np.str_]:
    """Document numbers drawn from each person's format (empty where ``mask`` is false)."""
    out = np.full(len(fmt), "", dtype="<U20")
    rows = np.nonzero(mask)[0]
    if not len(rows):
        return out
    kinds, literal = _format_tables(t)
    width = kinds.shape[1]
    x = np.stack([u(base + p)[rows] for p in range(width)], axis=1)
    k = kinds[fmt[rows]]
    chars = np.where(
        k == 1,
        65 + (x * 26).astype(np.int64),
        np.where(
            k == 2,
            48 + (x * 10).astype(np.int64),
            np.where(k == 3, 49 + (x * 9).astype(np.int64), literal[fmt[rows]]),
        ),
    )
    out[rows] = chars.astype(np.uint8).view(f"S{width}").ravel().astype(str)
    return out


@functools.cache
def _format_tables(t: _Tables) -> tuple[I64, I64]:
    """Per format and position: class (0 literal or padding, 1 letter, 2 digit, 3 digit 1-9)
    and the literal character code (0 pads, and numpy drops trailing NULs)."""
    width = max(len(f) for f in t.formats)
    kinds = np.zeros((len(t.formats), width), np.int64)
    literal = np.zeros((len(t.formats), width), np.int64)
    for i, pattern in enumerate(t.formats):
        for j, c in enumerate(pattern):
            kinds[i, j] = {"a": 1, "d": 2, "n": 3}.get(c, 0)
            literal[i, j] = 0 if c in "adn" else ord(c)
    return kinds, literal


def _identities(t: _Tables, u: Uniforms, nat: I64, start: I64) -> dict[str, Any]:
    """Who a person is: sex, birth, documents, names (fixed for life, whoever records them)."""
    p = t.per_nat
    minor = u(F_MINOR) < p["minor"][nat]
    a = u(F_AGE)
    years = np.where(minor, a * 18, 18 + 47 * a**1.7)
    male = u(F_SEX) < np.where(minor, 0.5, p["male"][nat])
    has_doc = u(F_DOC) < p["has_doc"][nat]
    card = u(F_KIND) < p["id_share"][nat]
    kind = np.where(has_doc, np.where(card, np.where(u(F_BOTH) < 0.5, 3, 2), 1), 0)
    validity = p["validity"][nat] * 365.25
    birth = start - (years * 365.25).astype(np.int64)
    issued_from = birth + 30  # nobody holds a document issued before they were born
    p_issue = np.maximum(start - (u(F_ISSUE) * validity * 1.15).astype(np.int64), issued_from)
    i_issue = np.maximum(start - (u(F_ISSUE2) * 11.5 * 365.25).astype(np.int64), issued_from)
    gender_off = np.where(male, p["mal_off"][nat], p["fem_off"][nat])
    gender_cnt = np.where(male, p["mal_cnt"][nat], p["fem_cnt"][nat])
    g1 = gender_off + (u(F_G1) * gender_cnt).astype(np.int64)
    g2 = gender_off + (u(F_G2) * gender_cnt).astype(np.int64)
    return {
        "birth": birth,
        "male": male,
        "kind": kind.astype(np.int64),
        "passport": _numbers(t, u, p["pfmt"][nat], (kind & 1) > 0, F_PCHARS),
        "idcard": _numbers(t, u, p["ifmt"][nat], kind >= 2, F_ICHARS),
        "p_expiry": p_issue + validity.astype(np.int64),
        "i_expiry": i_issue + int(10 * 365.25),
        "sur": p["sur_off"][nat] + (u(F_SUR) * p["sur_cnt"][nat]).astype(np.int64),
        "g1": g1,
        "g2": np.where((u(F_G2P) < p["second"][nat]) & (g2 != g1), g2, -1),
        "alert": u(F_ALERT),
        "alert_type": u(F_ALERT_TYPE),
        "bio": u(F_BIO),
    }


def _scan(t: _Tables, ci: int, fed: int, g0: int, g1: int) -> _People:
    """Stream persons ``g0 <= g < g1`` whom country ``ci`` records (federation-deterministic)."""
    ids = np.arange(g0, g1, dtype=np.int64)
    cell = _pick(t.cum_global, hashed_uniforms(fed, D_PERSON, ids)(F_CELL))
    chain = t.chain_flat[cell]
    pos = _positions(t, ci)[chain]
    keep = pos >= 0
    ids, cell, chain, pos = ids[keep], cell[keep], chain[keep], pos[keep]
    u = hashed_uniforms(fed, D_PERSON, ids)
    route, nat, month = np.unravel_index(cell, t.model.weights.shape)
    start = t.month_start[month] + (u(F_DAY) * t.month_len[month]).astype(np.int64)
    day, at, first = start.copy(), np.zeros_like(start), np.full(len(ids), -1)
    alive, recorded = np.ones(len(ids), np.bool_), np.zeros(len(ids), np.bool_)
    for s in range(int(pos.max(initial=-1)) + 1):
        ok = u(F_REACH + s) < t.reach[chain, s]
        visit = alive & (s <= pos) & ok
        day = np.where(
            visit,
            day + t.dlo[chain, s] + (u(F_DELAY + s) * t.dspan[chain, s]).astype(np.int64),
            day,
        )
        seen = visit & (u(F_DET + s) < t.detect[chain, s]) & (day <= END_DAY)
        first = np.where((first < 0) & seen, s, first)
        recorded |= seen & (pos == s)
        at = np.where(pos == s, day, at)
        alive &= ok | t.optional[chain, s]
    sel = recorded
    ident = _identities(t, hashed_uniforms(fed, D_PERSON, ids[sel]), nat[sel], start[sel])
    return _People(
        gid=ids[sel],
        route=route[sel].astype(np.int64),
        nat=nat[sel].astype(np.int64),
        chain=chain[sel],
        pos=pos[sel],
        start=start[sel],
        day=at[sel],
        reporter=t.country[chain[sel], first[sel]],
        **ident,
    )


@functools.cache
def _positions(t: _Tables, ci: int) -> I64:
    hits = t.country == ci
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1).astype(np.int64)


@functools.cache
def _country_cum(t: _Tables, ci: int) -> F64:
    return _cum(t.model.recorded_weights(REGIONAL_MEMBERS[ci]).ravel())


def _locals(t: _Tables, ci: int, rng: np.random.Generator, k: int, depth: int = 0) -> _People:
    """``k`` persons recorded only here, drawn from this country's calibrated distribution."""
    cell = _pick(_country_cum(t, ci), rng.random(k))
    route, nat, month = np.unravel_index(cell, t.model.weights.shape)
    chain = t.chain_flat[cell]
    pos = _positions(t, ci)[chain]
    start = t.month_start[month] + (rng.random(k) * t.month_len[month]).astype(np.int64)
    day = start.copy()
    for s in range(int(pos.max(initial=-1)) + 1):
        went = (s <= pos) & (~t.optional[chain, s] | (rng.random(k) < t.reach[chain, s]))
        day += np.where(
            went, t.dlo[chain, s] + (rng.random(k) * t.dspan[chain, s]).astype(np.int64), 0
        )
    ident = _identities(t, _rng_uniforms(rng, k), nat.astype(np.int64), start)
    people = _People(
        gid=np.full(k, -1, np.int64),
        route=route.astype(np.int64),
        nat=nat.astype(np.int64),
        chain=chain,
        pos=pos,
        start=start,
        day=np.minimum(day, END_DAY),
        reporter=np.full(k, ci, np.int64),
        **ident,
    )
    late = day > END_DAY  # would arrive after 2024: not recorded, draw others instead
    if late.any() and depth < 8:
        kept = people.take(~late)
        return _concat([kept, _locals(t, ci, rng, int(late.sum()), depth + 1)])
    return people


# --------------------------------------------------------------------------- output


class _Output:
    """The open CSV files of one generation run and their row counts."""

    def __init__(self, out_dir: Path) -> None:
        self.handles: dict[str, IO[str]] = {}
        self.writers: dict[str, Any] = {}
        self.rows = dict.fromkeys(OUTPUT_FILES, 0)
        for name in OUTPUT_FILES:
            handle = (out_dir / name).open("w", encoding="utf-8", newline="")
            self.handles[name] = handle
            self.writers[name] = csv.writer(handle, lineterminator="\n")
            spec = DATASETS.get(name.removesuffix(".csv"))
            self.writers[name].writerow(spec.columns if spec else GROUND_TRUTH_COLUMNS)

    def write(self, name: str, rows: Iterable[tuple[str, ...]]) -> None:
        """Append rows. Fields never contain ',', '"' or line breaks (pools are checked when the
        tables are built; everything else is codes, digits and dates), except in the consular
        directory, which goes through the csv module's quoting."""
        if name == "consular_directory.csv":
            rows = list(rows)
            self.writers[name].writerows(rows)
            self.rows[name] += len(rows)
            return
        lines = list(map(",".join, rows))
        if lines:
            self.handles[name].write("\n".join(lines))
            self.handles[name].write("\n")
        self.rows[name] += len(lines)

    def columns(self, name: str, *columns: list[str]) -> None:
        self.write(name, zip(*columns, strict=True))

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def _bit_strings(codes: tuple[str, ...], explicit_none: bool) -> npt.NDArray[np.object_]:
    table = [";".join(c for i, c in enumerate(codes) if m >> i & 1) for m in range(1 << len(codes))]
    table[0] = "none" if explicit_none else ""
    return np.array(table, dtype=object)


def _numbered(prefix: str, start: int, n: int) -> list[str]:
    """``prefix`` + the last nine digits of ``start .. start + n - 1`` (fast zero padding)."""
    return [prefix + s[-9:] for s in map(str, range(start, start + n))]


def _prefixed(prefix: str, values: I64) -> npt.NDArray[np.object_]:
    """``prefix`` + the decimal digits of ``values`` after their first (``10**n`` padding)."""
    return np.array([prefix + s[1:] for s in map(str, values.tolist())], dtype=object)


def _given_names(table: npt.NDArray[np.object_], g1: I64, g2: I64) -> npt.NDArray[np.object_]:
    """First given name, plus the second where there is one (``g2`` -1 means none)."""
    first, second = table[g1], table[np.maximum(g2, 0)]
    out: npt.NDArray[np.object_] = np.where(g2 >= 0, first + " " + second, first)
    return out


def _loose(number: str, how: int) -> str:
    """The same number as typed by hand: lower case, a space, a hyphen or an MRZ filler."""
    if how == 1:
        return number.lower()
    if how == 2:
        return f"{number[:2]} {number[2:]}"
    if how == 3:
        return f"{number[:3]}-{number[3:]}"
    return number + "<" if how == 4 else number


_FIRST_DAY = int((np.datetime64("1900-01-01", "D") - EPOCH).astype(np.int64))


@functools.cache
def _day_strings() -> npt.NDArray[np.object_]:
    """``YYYY-MM-DD`` for every day of 1900-2069, indexed by ``day - _FIRST_DAY``."""
    days = np.arange(_FIRST_DAY, _FIRST_DAY + 170 * 366).astype("timedelta64[D]")
    return np.datetime_as_string(EPOCH + days, unit="D").astype(object)


def _dates(days: I64, width: int = 10, suffix: str = "") -> npt.NDArray[np.object_]:
    """Dates as text, cut to ``width`` characters (7: ``YYYY-MM``, 4: ``YYYY``) + ``suffix``."""
    table = _day_strings()
    if width != 10 or suffix:
        table = _cut_table(width, suffix)
    out: npt.NDArray[np.object_] = table[days - _FIRST_DAY]
    return out


@functools.cache
def _cut_table(width: int, suffix: str) -> npt.NDArray[np.object_]:
    return np.array([d[:width] + suffix for d in _day_strings().tolist()], dtype=object)


_PER_EVENT = cal.words("person_id border_post nationality nationality_basis sex birth_date")
_PER_EVENT += cal.words("age_group vulnerabilities document_number document_country surname")
_PER_EVENT += ("given_names",)
_ENCOUNTER_COLUMNS = tuple(DATASETS["encounters"].columns)
_PER_DOCUMENT = cal.words("person_id true_nat mrz_surname mrz_given full_birth")


class _Emitter:
    """Turns batches of persons into this country's rows (all draws from the local RNG)."""

    def __init__(
        self, t: _Tables, ci: int, seed: int, fed: int, fraction: float, out: _Output
    ) -> None:
        self.t, self.ci, self.country, self.out = t, ci, REGIONAL_MEMBERS[ci], out
        self.seed, self.fed, self.fraction = seed, fed, fraction
        self.rng = np.random.default_rng([0x4C4F43414C, ci, seed & _MASK])
        self.counters = dict.fromkeys(("P", "E", "D", "A", "B", "S"), 0)
        self.persons = self.journeying = 0
        first, self.stages = cal.EVENT_MODELS[self.country]
        self.first_cum = _cum(tuple(first.values()))
        self.first_types = np.array([EVENTS.index(e) for e in first], np.int64)
        posts, weights = BORDER_POSTS[self.country]
        self.posts, self.post_cum = np.array(posts, dtype=object), _cum(weights)
        care = CARE.get(self.country, {})
        self.care_p = np.array(list(care.values()))
        explicit = self.country in EXPLICIT_NONE
        self.care_str = _bit_strings(tuple(care), explicit)
        self.vuln_str = _bit_strings(VULNERABILITY_CODES, explicit)
        self.ages = np.array([age_group_for(a) for a in range(131)], dtype=object)
        self.name_table = np.array(t.names, dtype=object)
        self.nat_codes = np.array(t.nat_codes, dtype=object)
        self.air = t.model.routes.index("air_nicaragua")
        alpha2 = {v: k for k, v in iso_alpha2_to_alpha3().items()}
        self.alpha2 = np.array([alpha2.get(n, n) for n in t.nat_codes], dtype=object)
        self.cyrillic = np.isin(
            np.arange(len(t.nat_codes)),
            [
                i
                for i, n in enumerate(t.nat_codes)
                if n in cal.NAME_GROUPS["slavic_caucasian"] or n in cal.NAME_GROUPS["central_asian"]
            ],
        )

    def _ids(self, kind: str, n: int) -> list[str]:
        start = self.counters[kind] + 10**9
        self.counters[kind] += n
        return _numbered(f"{self.country}{kind}", start, n)

    def _events(self, p: _People) -> tuple[I64, I64, I64]:
        """Each person's events here, person by person in date order: (person, type, day)."""
        rng, k = self.rng, len(p)
        first = self.first_types[_pick(self.first_cum, rng.random(k))]
        forced = self.t.first_event[p.chain, p.pos]
        types, days = [np.where(forced >= 0, forced, first)], [p.day]
        have = np.zeros((k, len(EVENTS)), np.bool_)
        have[np.arange(k), types[0]] = True
        last = p.day
        for stage in self.stages:
            gate = have[:, EVENTS.index(stage.requires)] if stage.requires else np.ones(k, bool)
            x, outcome, cum = rng.random(k), np.full(k, -1, np.int64), 0.0
            for event, prob in stage.outcomes.items():
                outcome[(x >= cum) & (x < cum + prob)] = EVENTS.index(event)
                cum += prob
            lo, hi = stage.delay
            when = last + lo + (rng.random(k) * (hi - lo + 1)).astype(np.int64)
            ok = gate & (outcome >= 0) & (when <= END_DAY)
            types.append(np.where(ok, outcome, -1))
            days.append(when)
            have[ok, outcome[ok]] = True
            last = np.where(ok, when, last)
        t_mat, d_mat = np.stack(types, axis=1), np.stack(days, axis=1)
        person, step = np.nonzero(t_mat >= 0)
        return person.astype(np.int64), t_mat[person, step], d_mat[person, step]

    def emit(self, p: _People, limit: int) -> int:
        """Write the rows of ``p`` (at most ``limit`` events); return the events written."""
        person, etype, eday = (a[:limit] for a in self._events(p))
        if not len(person):
            return 0
        p = p.take(np.arange(int(person[-1]) + 1))
        self.persons += len(p)
        self.journeying += int((p.gid >= 0).sum())
        cols, n = self._person_columns(p), len(person)
        care = np.zeros(n, np.int64)
        for bit, prob in enumerate(self.care_p):
            care |= (self.rng.random(n) < prob).astype(np.int64) << bit
        person_cols = {c: cols[c][person].tolist() for c in _PER_EVENT}
        person_cols["event_type"] = np.array(EVENTS, dtype=object)[etype].tolist()
        person_cols["event_date"] = _dates(eday).tolist()
        person_cols["care_provided"] = self.care_str[care].tolist()
        person_cols["record_id"] = self._ids("E", n)
        self.out.columns("encounters.csv", *(person_cols[c] for c in _ENCOUNTER_COLUMNS))
        gt = [cols[c].tolist() for c in ("gid", "person_id", "key", "true_nat")]
        here, what = [self.country] * len(p), ["encounters"] * len(p)
        self.out.columns("ground_truth.csv", gt[0], here, what, *gt[1:])
        self._documents(p, cols)
        self._templates(p, cols)
        self._alerts(p, cols)
        return n

    def _person_columns(self, p: _People) -> dict[str, npt.NDArray[Any]]:
        """Per-person values as recorded here (what is shown, declared, typed, flagged)."""
        t, rng, k, per = self.t, self.rng, len(p), self.t.per_nat
        documented = (p.kind > 0) & (rng.random(k) < per["shows"][p.nat])
        x, dec = rng.random(k), per["declared"][p.nat]
        basis = np.where(
            documented, 0, np.where(x < dec, 1, np.where(x < dec + per["presumed"][p.nat], 2, 3))
        )
        y, z = rng.random(k), rng.random(k)
        decoy = np.where(
            np.isin(p.nat, t.african),
            t.african[(z * len(t.african)).astype(int)],
            t.common[(z * len(t.common)).astype(int)],
        )
        wrong = ((basis == 1) & (y < 0.03)) | ((basis == 2) & (y < 0.15))
        recorded = np.where(basis == 3, len(t.nat_codes) - 1, np.where(wrong, decoy, p.nat))
        sex = np.where(p.male, "M", "F").astype(object)
        sex[(basis > 0) & (rng.random(k) < 0.01)] = "U"
        full = _dates(p.birth)
        precision = np.where(documented, 0, _pick(_cum((0.55, 0.15, 0.30)), rng.random(k)))
        precision[(basis == 3) & (rng.random(k) < 0.08)] = 3
        zero = self.country in ZERO_DATES
        birth = np.select(
            [precision == 0, precision == 1, precision == 2],
            [
                full,
                _dates(p.birth, 7, "-00" if zero else ""),
                _dates(p.birth, 4, "-00-00" if zero else ""),
            ],
            "",
        )
        age = np.clip((p.day - p.birth) * 12 // 4383, 0, 130)  # 4383 = 12 x 365.25
        age_group = self.ages[age]
        age_group[(basis == 3) & (rng.random(k) < 0.2)] = "_U"
        post = self.posts[_pick(self.post_cum, rng.random(k))]
        if self.country in AIRPORTS:
            post[p.route == self.air] = AIRPORTS[self.country]
        primary = np.where(p.kind & 1, p.passport, p.idcard)
        state = self.nat_codes[p.nat]
        how = np.where(documented, _pick(_cum((0.95, 0.015, 0.015, 0.01, 0.01)), rng.random(k)), 0)
        doc = np.where(documented, primary.astype(object), "")
        for i in np.nonzero(how)[0].tolist():
            doc[i] = _loose(doc[i], int(how[i]))
        doc_state = np.where(rng.random(k) < 0.03, self.alpha2[p.nat], state)
        doc_state[~documented] = ""
        local = np.array(
            _numbered(f"L{self.country}{self.seed}-", self.counters["P"] + 10**9, k), dtype=object
        )
        gid = np.where(p.gid >= 0, _prefixed("G", p.gid + 10**10), local)
        return {
            "person_id": np.array(self._ids("P", k), dtype=object),
            "gid": gid,
            "nationality": self.nat_codes[recorded],
            "true_nat": state,
            "nationality_basis": np.array(
                ("documented", "declared", "presumed", "unknown"), dtype=object
            )[basis],
            "documented": documented,
            "sex": sex,
            "birth_date": birth,
            "full_birth": full,
            "age_group": age_group,
            "border_post": post,
            "document_number": doc,
            "document_country": doc_state,
            "key": np.where(documented, state + "|" + primary.astype(object), ""),
            "vulnerabilities": self.vuln_str[self._vulnerabilities(p, age)],
            **self._names(p),
        }

    def _vulnerabilities(self, p: _People, age: I64) -> I64:
        r = [self.rng.random(len(p)) for _ in VULNERABILITY_CODES]
        minor, woman = age < 18, ~p.male
        unaccompanied = minor & (age >= 10) & (r[0] < 0.06)
        bits = (
            unaccompanied,
            minor & ~unaccompanied & (r[1] < 0.03),
            r[2] < np.where(woman & ~minor, 0.02, 0.006),
            woman & (age >= 18) & (age <= 42) & (r[3] < 0.04),
            r[4] < 0.006,
            r[5] < 0.02,
            age >= 60,
            ~minor & (r[7] < 0.004),
        )
        return sum((b.astype(np.int64) << i for i, b in enumerate(bits)), np.zeros(len(p), int))

    def _names(self, p: _People) -> dict[str, npt.NDArray[Any]]:
        x = self.rng.random(len(p))
        mrz, caps = (0.7, 0.8) if self.country in MRZ_NAMES else (0.12, 0.3)
        style = np.where(x < mrz, 2, np.where(x < caps, 1, 0))
        style[self.cyrillic[p.nat] & (self.rng.random(len(p)) < 0.15)] = 3
        return {
            "surname": self.name_table[style, p.sur],
            "given_names": self._given(style, p),
            "mrz_surname": self.name_table[2, p.sur],
            "mrz_given": self._given(2, p),
        }

    def _given(self, style: I64 | int, p: _People) -> npt.NDArray[np.object_]:
        if isinstance(style, int):
            return _given_names(self.name_table[style], p.g1, p.g2)
        first = self.name_table[style, p.g1]
        second = self.name_table[style, np.maximum(p.g2, 0)]
        out: npt.NDArray[np.object_] = np.where(p.g2 >= 0, first + " " + second, first)
        return out

    def _documents(self, p: _People, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        for code, has, numbers, expiry in (
            ("P", (p.kind & 1) > 0, p.passport, p.p_expiry),
            ("I", p.kind >= 2, p.idcard, p.i_expiry),
        ):
            sel = np.nonzero(cols["documented"] & has)[0]
            pid, nat, sur, given, birth = (cols[c][sel].tolist() for c in _PER_DOCUMENT)
            sex = np.where(p.male[sel], "M", "F").tolist()
            expires, seen = _dates(expiry[sel]).tolist(), _dates(p.day[sel]).tolist()
            ids, kind, number = self._ids("D", len(sel)), [code] * len(sel), numbers[sel].tolist()
            row = (ids, pid, kind, number, nat, nat, sur, given, birth, sex, expires, seen)
            self.out.columns("travel_documents.csv", *row)

    def _templates(self, p: _People, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        """One capture per person: the person's unit base vector plus capture noise."""
        sel = np.nonzero(p.bio < self.fraction)[0]
        dim = TEMPLATE_DIMENSION
        base = self.rng.standard_normal((len(sel), dim))
        for row, g in enumerate(p.gid[sel].tolist()):
            if g >= 0:  # journeying: the same face everywhere
                base[row] = np.random.default_rng([self.fed & _MASK, D_BIO, g]).standard_normal(dim)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        sigma = 0.4 + 0.35 * self.rng.random(len(sel))
        noisy = base + sigma[:, None] * self.rng.standard_normal(base.shape) / math.sqrt(dim)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        encoded = [base64.b64encode(v.tobytes()).decode("ascii") for v in noisy.astype("<f4")]
        pid, day = cols["person_id"][sel].tolist(), _dates(p.day[sel]).tolist()
        ids = self._ids("B", len(sel))
        self.out.columns("biometric_templates.csv", ids, pid, ["face"] * len(sel), day, encoded)

    def _alerts(self, p: _People, cols: Mapping[str, npt.NDArray[Any]]) -> None:
        """Alerts on documents carried by persons this country recorded first."""
        sel = np.nonzero((p.alert < ALERT_SHARE) & (p.kind > 0) & (p.reporter == self.ci))[0]
        m = len(sel)
        number = np.where(p.kind[sel] & 1, p.passport[sel], p.idcard[sel]).astype(object)
        kinds = np.array(ALERT_TYPES, dtype=object)[_pick(_cum(ALERT_WEIGHTS), p.alert_type[sel])]
        reported = np.minimum(p.day[sel] + (self.rng.random(m) * 30).astype(int), END_DAY)
        ids, state = self._ids("A", m), cols["true_nat"][sel]
        day, nat, num = _dates(reported).tolist(), state.tolist(), number.tolist()
        inspection, here, what = ["inspection"] * m, [self.country] * m, ["document_alerts"] * m
        self.out.columns("document_alerts.csv", ids, kinds.tolist(), num, nat, day, inspection)
        keys = (state + "|" + number).tolist()
        self.out.columns("ground_truth.csv", cols["gid"][sel].tolist(), here, what, ids, keys, nat)


# --------------------------------------------------------------------------- other datasets

SMUGGLER_NATIONALITIES: Mapping[str, float] = {
    "COL": 20, "MEX": 15, "GTM": 12, "HND": 10, "NIC": 8, "ECU": 8, "VEN": 6, "CRI": 5, "SLV": 4,
    "DOM": 3, "CUB": 3, "CHN": 3, "IND": 2, "BGD": 1, "CMR": 1, "NPL": 1,
}  # fmt: skip
SMUGGLING_CORRIDOR = ("PAN", "CRI", "NIC", "HND", "GTM", "MEX", "USA")
SMUGGLING_ELSEWHERE = ("SLV", "BLZ", "DOM", "CAN")
POI_REASON_WEIGHTS = (0.55, 0.1, 0.15, 0.12, 0.08)
RANDOM_ALERT_TYPES = (
    "lost",
    "stolen",
    "stolen_blank",
    "revoked",
    "counterfeit",
    "forged",
    "fraudulently_obtained",
)
RANDOM_ALERT_WEIGHTS = (0.35, 0.25, 0.1, 0.1, 0.1, 0.05, 0.05)


def _smuggler_share(country: str) -> float:
    """P(a federation smuggler operates in ``country``): 15 % work one off-corridor country,
    the rest a run of 1-4 consecutive corridor countries."""
    if country in SMUGGLING_ELSEWHERE:
        return 0.15 / len(SMUGGLING_ELSEWHERE)
    i, n = SMUGGLING_CORRIDOR.index(country), len(SMUGGLING_CORRIDOR)
    runs = [(a, length) for a in range(n) for length in (1, 2, 3, 4)]
    return 0.85 * sum(a <= i < a + length for a, length in runs) / len(runs)


def _persons_of_interest(em: _Emitter, encounters: int) -> None:
    """Suspected smugglers: ~60 % from the federation pool (several countries know them)."""
    t, rng, country = em.t, em.rng, em.country
    nats = np.array([t.nat_codes.index(n) for n in SMUGGLER_NATIONALITIES], np.int64)
    nat_cum = _cum(tuple(SMUGGLER_NATIONALITIES.values()))
    target = max(4, encounters // 400)
    scan = math.ceil(0.6 * target / _smuggler_share(country))
    u = hashed_uniforms(em.fed, D_SMUGGLER, np.arange(scan, dtype=np.int64))
    elsewhere = np.array(SMUGGLING_ELSEWHERE)[(u(201) * len(SMUGGLING_ELSEWHERE)).astype(int)]
    start, length = (u(202) * len(SMUGGLING_CORRIDOR)).astype(int), 1 + (u(203) * 4).astype(int)
    i = SMUGGLING_CORRIDOR.index(country) if country in SMUGGLING_CORRIDOR else -99
    here = np.where(u(200) < 0.15, elsewhere == country, (start <= i) & (i < start + length))
    ids = np.nonzero(here)[0].astype(np.int64)
    fed_u, n_local = hashed_uniforms(em.fed, D_SMUGGLER, ids), max(target - len(ids), 0)
    fed_nat, local_nat = nats[_pick(nat_cum, fed_u(204))], nats[_pick(nat_cum, rng.random(n_local))]
    nat = np.concatenate([fed_nat, local_nat])
    since = (np.concatenate([fed_u(205), rng.random(n_local)]) * (END_DAY - 400)).astype(np.int64)
    shared = _identities(t, fed_u, fed_nat, since[: len(ids)])
    local = _identities(t, _rng_uniforms(rng, n_local), local_nat, since[len(ids) :])
    ident = {k: np.concatenate([shared[k], local[k]]) for k in shared}
    reason_u = np.concatenate([fed_u(206), rng.random(n_local)])
    reasons = np.array(_poi_reasons(), dtype=object)[_pick(_cum(POI_REASON_WEIGHTS), reason_u)]
    m = len(nat)
    days = np.minimum(since + (rng.random(m) * 400).astype(np.int64), END_DAY)
    number = np.where(ident["kind"] & 1, ident["passport"], ident["idcard"]).astype(object)
    state = np.array(t.nat_codes, dtype=object)[nat]
    has_doc = ident["kind"] > 0
    names = em.name_table[0]
    given = _given_names(names, ident["g1"], ident["g2"])
    births = np.where(rng.random(m) < 0.8, _dates(ident["birth"]), _dates(ident["birth"], 4))
    record_ids = em._ids("S", m)
    columns = [names[ident["sur"]], given, births, state, number, np.where(has_doc, state, "")]
    columns += [reasons, _dates(days)]
    em.out.columns("persons_of_interest.csv", record_ids, *(c.tolist() for c in columns))
    gids = _prefixed("S", ids + 10**8).tolist()
    gids += _numbered(f"L{country}{em.seed}-S", 10**9, n_local)
    keys = np.where(has_doc, state + "|" + number, "").tolist()
    what = ["persons_of_interest"] * m
    em.out.columns("ground_truth.csv", gids, [country] * m, what, record_ids, keys, state.tolist())


def _poi_reasons() -> tuple[str, ...]:
    return DATASETS["persons_of_interest"].field("reason").choices


def _random_alerts(em: _Emitter, encounters: int) -> None:
    """Alerts not linked to anyone in the files: lost and stolen documents, mostly national."""
    t, rng, n = em.t, em.rng, max(3, encounters // 150)
    nat_weights = t.model.weights.sum(axis=(0, 2))
    foreign = np.array(t.nat_codes[:-1], dtype=object)[_pick(_cum(nat_weights), rng.random(n))]
    states = np.where(rng.random(n) < 0.4, em.country, foreign)
    fmt = [cal.PASSPORT_FORMATS.get(s, cal.DEFAULT_PASSPORT_FORMAT) for s in states.tolist()]
    fmt_index = np.array([t.formats.index(f) for f in fmt], np.int64)
    numbers = _numbers(t, _rng_uniforms(rng, n), fmt_index, np.ones(n, np.bool_), 0)
    kinds = np.array(RANDOM_ALERT_TYPES)[_pick(_cum(RANDOM_ALERT_WEIGHTS), rng.random(n))]
    coin = rng.random(n) < 0.5
    source = np.select(
        [kinds == "lost", np.isin(kinds, ("stolen_blank", "revoked")), kinds == "stolen"],
        ["holder_report", "issuing_state", np.where(coin, "holder_report", "interpol_sltd")],
        np.where(coin, "partner_country", "inspection"),
    )
    day = _dates((rng.random(n) * (END_DAY + 1)).astype(np.int64)).tolist()
    columns = [c.tolist() for c in (kinds, numbers, states)]
    em.out.columns("document_alerts.csv", em._ids("A", n), *columns, day, source.tolist())


CONSULAR_PRESENCE: Mapping[str, float] = {
    "CHN": 0.95, "CUB": 0.95, "COL": 0.95, "IND": 0.9, "ECU": 0.9, "BRA": 0.9, "CHL": 0.85,
    "PER": 0.8, "HTI": 0.7, "VEN": 0.6, "TUR": 0.6, "RUS": 0.6, "EGY": 0.5, "MAR": 0.4,
    "VNM": 0.4, "PAK": 0.3, "NGA": 0.3, "BGD": 0.2, "AGO": 0.2, "SEN": 0.2, "ETH": 0.2,
    "NPL": 0.15, "LKA": 0.15, "COD": 0.15, "GHA": 0.15, "CMR": 0.1, "GIN": 0.1, "AFG": 0.1,
    "UZB": 0.1, "ERI": 0.05, "MRT": 0.05,
}  # fmt: skip
#: Capital, calling code, language of the directory, other consular cities.
HOSTS: Mapping[str, tuple[str, str, Language, tuple[str, ...]]] = {
    "PAN": ("Ciudad de Panamá", "507", "es", ()), "CRI": ("San José", "506", "es", ()),
    "NIC": ("Managua", "505", "es", ()), "HND": ("Tegucigalpa", "504", "es", ()),
    "SLV": ("San Salvador", "503", "es", ()), "GTM": ("Ciudad de Guatemala", "502", "es", ()),
    "BLZ": ("Belmopan", "501", "en", ()), "DOM": ("Santo Domingo", "1", "es", ()),
    "MEX": ("Ciudad de México", "52", "es", ("Tapachula", "Monterrey")),
    "USA": ("Washington", "1", "en", ("New York", "Miami", "Houston", "Los Angeles")),
    "CAN": ("Ottawa", "1", "en", ("Toronto", "Montréal", "Vancouver")),
}  # fmt: skip
STREETS = {
    "es": ("Avenida Balboa", "Calle 50", "Paseo Colón", "Avenida Reforma", "Calle Real",
           "Boulevard Morazán", "Avenida Las Américas"),
    "en": ("Massachusetts Avenue", "Albert Street", "Queen Street", "Main Street", "Park Avenue",
           "Constitution Drive"),
}  # fmt: skip
OFFICE_NAMES = {
    ("es", "embassy"): "Embajada de {o} en {h} — Sección Consular",
    ("en", "embassy"): "Embassy of {o} in {h} — Consular Section",
    ("es", "consulate"): "Consulado General de {o} en {h}",
    ("en", "consulate"): "Consulate General of {o} in {h}",
    ("es", "concurrent"): "Embajada de {o} en México, concurrente para {h}",
    ("en", "concurrent"): "Embassy of {o} in Mexico, also accredited to {h}",
}
PROCEDURE_CHANCES = (1.0, 1.0, 0.7, 0.5, 0.6, 0.8)  # in the order of the dataset's choices


def _consular_directory(em: _Emitter) -> None:
    """Public directory of the consulates accredited in this country (federation-fixed)."""
    rng = np.random.default_rng([em.fed & _MASK, 4, em.ci])
    capital, code, lang, others = HOSTS[em.country]
    size = {"USA": 1.5, "CAN": 1.5, "MEX": 1.5, "BLZ": 0.4}.get(em.country, 1.0)
    labels, host = codelist("nationality"), codelist("member").label(em.country, lang)
    procedures = DATASETS["consular_directory"].field("procedures").choices
    rows: list[tuple[str, ...]] = []
    for origin, presence in CONSULAR_PRESENCE.items():
        if rng.random() < min(presence * size, 0.98):
            offices = [(capital, "embassy", host, code)]
            offices += [(c, "consulate", c, code) for c in others if rng.random() < 0.3]
        elif em.country not in ("MEX", "USA", "CAN") and rng.random() < 0.5:
            offices = [("Ciudad de México", "concurrent", host, "52")]
        else:
            continue
        for city, kind, where, phone in offices:
            name = OFFICE_NAMES[lang, kind].format(o=labels.label(origin, lang), h=where)
            handles = [
                p for p, c in zip(procedures, PROCEDURE_CHANCES, strict=True) if rng.random() < c
            ]
            street = STREETS[lang][int(rng.integers(len(STREETS[lang])))]
            number, exchange, line = (
                int(rng.integers(a, b)) for a, b in ((1, 2000), (200, 999), (1000, 9999))
            )
            slug = normalise_name(city).lower().replace(" ", "")
            email = f"consular.{slug}@{origin.lower()}-mfa.example"
            contact = (f"{street} {number}, {city}", f"+{phone} {exchange} {line}", email)
            rows.append((origin, em.country, city, name, *contact, ";".join(handles)))
    em.out.write("consular_directory.csv", rows)


# --------------------------------------------------------------------------- entry point


def generate(
    country: str,
    encounters: int,
    seed: int,
    out_dir: Path,
    *,
    federation_seed: int | None = None,
    templates_fraction: float = 0.05,
    progress: Callable[[int], None] | None = None,
) -> GenerationSummary:
    """Write one member's synthetic files into ``out_dir``; see the module docstring.

    ``progress`` is called after each batch with the number of encounter rows written so far.
    Journeying persons get a face template when their federation-wide draw is below
    ``templates_fraction``, so countries generated with the same fraction share templates.
    """
    if country not in REGIONAL_MEMBERS:
        raise InvalidArgumentError(
            f"{country!r} is not a member",
            field="country",
            hint="use one of " + ", ".join(REGIONAL_MEMBERS),
        )
    if encounters < 1:
        raise InvalidArgumentError("must be at least 1", field="encounters")
    if not 0.0 <= templates_fraction <= 1.0:
        raise InvalidArgumentError("must be between 0 and 1", field="templates_fraction")
    fed = DEFAULT_FEDERATION_SEED if federation_seed is None else federation_seed
    out_dir.mkdir(parents=True, exist_ok=True)
    t, ci = _tables(), REGIONAL_MEMBERS.index(country)
    out = _Output(out_dir)
    try:
        em = _Emitter(t, ci, seed, fed, templates_fraction, out)
        per_event = cal.mean_events(country)
        rate = t.model.recorded_weights(country).sum() / t.model.weights.sum() * per_event
        scan = min(
            math.ceil(JOURNEY_SHARE * encounters / rate), MAX_SCAN_FACTOR * encounters + SCAN_CHUNK
        )
        expected = scan * rate
        local_ratio = max(encounters - expected, 0.0) / expected
        written, g = 0, 0
        while g < scan and written < encounters:
            journeying = _scan(t, ci, fed, g, min(g + SCAN_CHUNK, scan))
            g += SCAN_CHUNK
            batch = _concat(
                [journeying, _locals(t, ci, em.rng, round(len(journeying) * local_ratio))]
            )
            written += em.emit(batch.take(em.rng.permutation(len(batch))), encounters - written)
            if progress is not None:
                progress(written)
        while written < encounters:
            need = encounters - written
            size = min(LOCAL_CHUNK, math.ceil(need / per_event) + 16)
            written += em.emit(_locals(t, ci, em.rng, size), need)
            if progress is not None:
                progress(written)
        _random_alerts(em, encounters)
        _persons_of_interest(em, encounters)
        _consular_directory(em)
    finally:
        out.close()
    return GenerationSummary(
        country=country,
        encounters=encounters,
        seed=seed,
        federation_seed=fed,
        templates_fraction=templates_fraction,
        out_dir=out_dir,
        rows=dict(out.rows),
        persons=em.persons,
        journeying_persons=em.journeying,
    )

"""Who is recorded: the federation-wide stream of journeying persons and each country's locals.

Why: matching needs the same person to appear, with the same attributes, in the files of several
countries generated independently, on different machines. Journeying persons are therefore drawn
from counter-based hashes of ``(federation_seed, domain, person, field)`` and walked along their
route (:func:`scan_journeying`), while persons that only one country records come from that
country's own RNG (:func:`draw_locals`). Both go through :func:`draw_identities`, so the two
populations differ only in where their randomness comes from.

Invariants:
* Field numbers (``F_*``) and hash domains (``D_*``) are part of the output: changing one changes
  every file. :data:`D_BIO` is shared with :mod:`node.biometrics.synthetic`.
* A journeying person's attributes depend neither on the country asking nor on how far it scans.
* A country records a person only if the route reaches it, the person is detected there, and it
  happens no later than :data:`~node.records.synthetic_tables.END_DAY`.
* An identity (sex, birth, documents, names) is drawn once per person: every country that records
  a journeying person writes the same one, however it presents it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from node.records.synthetic_tables import (
    END_DAY,
    F64,
    I64,
    Bools,
    SamplingTables,
    format_classes,
    pick,
    recorded_cumulative,
    recording_positions,
)

#: ``draw(field_number)`` -> one uniform per person of the batch.
Uniforms = Callable[[int], F64]

# Field numbers of the counter-based hash (federation persons); locals draw from their RNG.
F_SEX, F_MINOR, F_AGE, F_DOC, F_KIND, F_BOTH, F_ISSUE, F_ISSUE2 = range(1, 9)
F_SUR, F_G1, F_G2, F_G2P, F_ALERT, F_ALERT_TYPE, F_BIO = range(9, 16)
F_CELL, F_DAY, F_REACH, F_DET, F_DELAY, F_PCHARS, F_ICHARS = 20, 21, 30, 50, 70, 100, 130
D_PERSON, D_SMUGGLER, D_BIO = 1, 2, 3
U64_MASK = (1 << 64) - 1


def _mix_int(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & U64_MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & U64_MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & U64_MASK
    return x ^ (x >> 31)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniforms(seed: int, domain: int, ids: I64) -> Uniforms:
    """Uniforms in [0, 1) that depend only on ``(seed, domain, id, field)`` (splitmix64)."""
    base = _mix_int(_mix_int(seed & U64_MASK) ^ domain)
    keys = ids.astype(np.uint64)

    def draw(field_number: int) -> F64:
        key = np.uint64(_mix_int(base ^ ((field_number * 0xD1B54A32D192ED03) & U64_MASK)))
        return (_mix(keys ^ key) >> np.uint64(11)).astype(np.float64) * 2.0**-53

    return draw


def rng_uniforms(rng: np.random.Generator, n: int) -> Uniforms:
    """The same interface fed by a local RNG: fields come in call order, not by number."""
    return lambda _field: rng.random(n)


@dataclass
class PersonBatch:
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
    male: Bools
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

    def take(self, index: I64 | Bools) -> PersonBatch:
        return PersonBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def __len__(self) -> int:
        return len(self.gid)


def concat_batches(parts: list[PersonBatch]) -> PersonBatch:
    return PersonBatch(
        **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PersonBatch)}
    )


def document_numbers(
    t: SamplingTables, u: Uniforms, fmt: I64, mask: Bools, base: int
) -> npt.NDArray[np.str_]:
    """Document numbers drawn from each person's format (empty where ``mask`` is false)."""
    out = np.full(len(fmt), "", dtype="<U20")
    rows = np.nonzero(mask)[0]
    if not len(rows):
        return out
    kinds, literal = format_classes(t)
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


def draw_identities(t: SamplingTables, u: Uniforms, nat: I64, start: I64) -> dict[str, Any]:
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
        "passport": document_numbers(t, u, p["pfmt"][nat], (kind & 1) > 0, F_PCHARS),
        "idcard": document_numbers(t, u, p["ifmt"][nat], kind >= 2, F_ICHARS),
        "p_expiry": p_issue + validity.astype(np.int64),
        "i_expiry": i_issue + int(10 * 365.25),
        "sur": p["sur_off"][nat] + (u(F_SUR) * p["sur_cnt"][nat]).astype(np.int64),
        "g1": g1,
        "g2": np.where((u(F_G2P) < p["second"][nat]) & (g2 != g1), g2, -1),
        "alert": u(F_ALERT),
        "alert_type": u(F_ALERT_TYPE),
        "bio": u(F_BIO),
    }


def scan_journeying(t: SamplingTables, ci: int, fed: int, g0: int, g1: int) -> PersonBatch:
    """Stream persons ``g0 <= g < g1`` whom country ``ci`` records (federation-deterministic)."""
    ids = np.arange(g0, g1, dtype=np.int64)
    cell = pick(t.cum_global, hashed_uniforms(fed, D_PERSON, ids)(F_CELL))
    chain = t.chain_flat[cell]
    pos = recording_positions(t, ci)[chain]
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
    ident = draw_identities(t, hashed_uniforms(fed, D_PERSON, ids[sel]), nat[sel], start[sel])
    return PersonBatch(
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


def draw_locals(
    t: SamplingTables, ci: int, rng: np.random.Generator, k: int, depth: int = 0
) -> PersonBatch:
    """``k`` persons recorded only here, drawn from this country's calibrated distribution."""
    cell = pick(recorded_cumulative(t, ci), rng.random(k))
    route, nat, month = np.unravel_index(cell, t.model.weights.shape)
    chain = t.chain_flat[cell]
    pos = recording_positions(t, ci)[chain]
    start = t.month_start[month] + (rng.random(k) * t.month_len[month]).astype(np.int64)
    day = start.copy()
    for s in range(int(pos.max(initial=-1)) + 1):
        went = (s <= pos) & (~t.optional[chain, s] | (rng.random(k) < t.reach[chain, s]))
        day += np.where(
            went, t.dlo[chain, s] + (rng.random(k) * t.dspan[chain, s]).astype(np.int64), 0
        )
    ident = draw_identities(t, rng_uniforms(rng, k), nat.astype(np.int64), start)
    people = PersonBatch(
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
        return concat_batches([kept, draw_locals(t, ci, rng, int(late.sum()), depth + 1)])
    return people

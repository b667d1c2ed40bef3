"""Cell-key perturbation: the same contributing records always get the same noise.

Why: a peer that may ask the same question many times could average independent noise away,
and one that asks two questions whose populations differ by one person could subtract them.
The cell-key method (Australian Bureau of Statistics, adopted in Eurostat's census guidance)
ties the noise to *which records* make up a cell: repeating a query returns the very same
noisy value (averaging gains nothing), while adding or removing a single record changes the
cell key to an unrelated one, so the difference of two released cells is the true difference
plus the difference of two independent noises.

Method:

* Each record gets a *record key* ``record_key(secret, record_id)``: HMAC-SHA256 under the
  node's perturbation secret of a domain-separated record identifier, truncated to a uniform
  integer in ``[0, 2**32)``. Only the node knows the secret, so no peer can compute keys.
* A cell's key is the sum of its records' keys modulo ``2**32`` (:func:`cell_key`), so it is
  uniform, independent of record order and computable in SQL as ``SUM(record_key) % 2^32``.
  A margin's key is the sum of the keys of the interior cells it covers: the key of exactly
  the records it counts.
* The noise is a fixed lookup ``(value, cell key) → d`` (:func:`noise`): with
  ``k = min(max_noise, value - 1)`` for a positive value (``k = 0`` for a zero), the key range
  is cut into ``2k + 1`` consecutive buckets for ``d = -k … k``, each ``floor(2**32/(2k+1))``
  keys wide, the bucket of ``d = 0`` taking the remainder. The buckets of ``d`` and ``-d``
  have the same width, so the noise has mean exactly zero over uniform keys; it is uniform on
  ``-k … k`` up to ``2k/2**32``.

Invariants:
* Deterministic: no random number generator is used; same records → same key → same value.
* A released value is never negative and is 0 exactly when the true count is 0 (true zeros
  are not perturbed; a positive count stays at least 1). With the threshold rule applied to
  the true counts, a positive released value therefore means a true count of at least
  ``min_cell`` — the attacker model of :mod:`policies.disclosure.secondary` relies on it.
* ``|released - true| <= max_noise`` for every cell, margins included.
* Margins are perturbed independently of their interior cells, so a perturbed table is not
  additive (a row's released cells need not add up to its released total). That is the price
  of noise that cannot be cancelled; users are told so by the ``E`` flag on every released
  value.
* One perturbation secret per node, the same for every peer: with a secret per peer, two
  colluding peers would receive independent noise for the same cell and could average it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping
from fractions import Fraction

from policies.disclosure.table import Coord, DisclosureError, Table, is_margin

KEY_BITS = 32
KEY_SPACE = 1 << KEY_BITS
MIN_SECRET_BYTES = 16
RECORD_KEY_CONTEXT = b"enlace/1 cell-key record\x00"


def record_key(secret: bytes, record_id: str) -> int:
    """The record's perturbation key: HMAC-SHA256(secret, context ‖ id) → ``[0, 2**32)``."""
    if len(secret) < MIN_SECRET_BYTES:
        raise DisclosureError(
            f"the perturbation secret must have at least {MIN_SECRET_BYTES} bytes",
            hint="generate it with a CSPRNG when the node is initialised",
        )
    if not record_id:
        raise DisclosureError("a record identifier cannot be empty")
    mac = hmac.new(secret, RECORD_KEY_CONTEXT + record_id.encode("utf-8"), hashlib.sha256)
    return int.from_bytes(mac.digest()[: KEY_BITS // 8], "big")


def cell_key(record_keys: Iterable[int]) -> int:
    """The sum of the record keys modulo ``2**32``."""
    total = 0
    for key in record_keys:
        if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < KEY_SPACE:
            raise DisclosureError(f"record key out of range: {key!r}")
        total += key
    return total % KEY_SPACE


def noise_bound(value: int, max_noise: int) -> int:
    """``k``: the largest noise magnitude a cell of this value can receive."""
    if max_noise < 0:
        raise DisclosureError(f"max_noise must be >= 0, not {max_noise}")
    if value < 0:
        raise DisclosureError(f"a count cannot be negative ({value})")
    return 0 if value == 0 else min(max_noise, value - 1)


def _buckets(k: int) -> tuple[int, int]:
    """Width of each non-zero bucket and of the zero bucket for noise magnitude ``k``."""
    width = KEY_SPACE // (2 * k + 1)
    return width, KEY_SPACE - 2 * k * width


def noise(value: int, key: int, max_noise: int) -> int:
    """The noise of the lookup for a cell of ``value`` with cell key ``key``."""
    if not 0 <= key < KEY_SPACE:
        raise DisclosureError(f"cell key out of range: {key}")
    k = noise_bound(value, max_noise)
    if k == 0:
        return 0
    width, zero_width = _buckets(k)
    if key < k * width:
        return -k + key // width
    if key < k * width + zero_width:
        return 0
    return 1 + (key - k * width - zero_width) // width


def noise_distribution(value: int, max_noise: int) -> dict[int, Fraction]:
    """The exact probability of each noise over uniform cell keys (the documented lookup)."""
    k = noise_bound(value, max_noise)
    if k == 0:
        return {0: Fraction(1)}
    width, zero_width = _buckets(k)
    return {d: Fraction(zero_width if d == 0 else width, KEY_SPACE) for d in range(-k, k + 1)}


def cell_keys_for(
    table: Table,
    record_ids_per_cell: Mapping[Coord, Collection[str]],
    secret: bytes,
) -> dict[Coord, int]:
    """Every present cell's key, from the identifiers of the records in each interior cell.

    Each interior cell must list exactly as many distinct identifiers as it counts; a cell
    that counts nothing may be omitted. Anything else is a node bug and raises.
    """
    unknown = [c for c in record_ids_per_cell if c not in table.cells or is_margin(c)]
    if unknown:
        raise DisclosureError(f"record identifiers given for non-interior cells: {unknown[:3]}")
    interior: dict[Coord, int] = {}
    for coord in table.interior_coords():
        ids = record_ids_per_cell.get(coord, ())
        if isinstance(ids, str):
            raise DisclosureError(f"cell {coord}: record identifiers must be a collection")
        if len(set(ids)) != len(ids) or len(ids) != table[coord]:
            raise DisclosureError(
                f"cell {coord} counts {table[coord]} but lists {len(set(ids))} distinct "
                f"record identifiers ({len(ids)} given)"
            )
        interior[coord] = cell_key(record_key(secret, r) for r in ids)
    return {c: cell_key(interior[i] for i in table.covered(c)) for c in table.coords()}


def perturb(table: Table, keys: Mapping[Coord, int], max_noise: int) -> dict[Coord, int]:
    """The released value of every present cell: its true count plus its lookup noise."""
    missing = [c for c in table.coords() if c not in keys]
    if missing:
        raise DisclosureError(f"no cell key for {missing[:3]}")
    return {c: v + noise(v, keys[c], max_noise) for c, v in table.cells.items()}

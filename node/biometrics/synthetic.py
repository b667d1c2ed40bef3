"""Synthetic face embeddings for the evaluation harness and the tests.

Why: accuracy of protected codes must be measured on data shaped like what the nodes hold. The
records generator (:mod:`node.records.generate`) writes each face template as a person's base
vector plus capture noise; this module draws from *the same model*, and adds what a one-capture
file cannot give an evaluation: several captures per person and hard impostors.

The model, shared with the generator:

* The base vector of federation person ``g`` is ``standard_normal(128)`` from
  ``numpy.random.default_rng([federation_seed, D_BIO, g])``, normalised. :func:`identity_bases`
  reproduces exactly the faces the generator writes for journeying persons.
* A capture is ``normalise(base + sigma * N(0, I) / sqrt(128))`` with ``sigma`` uniform in
  :data:`CAPTURE_SIGMA` per capture. Two captures of one person then have a cosine of about
  0.64-0.86; captures of unrelated persons about 0 +- 0.09.

What this module adds, because unrelated random vectors are far too easy to tell apart:

* **Families** (relatives, look-alikes): consecutive identities form families of
  ``family_size``; each family has a centre and a *kinship* drawn uniformly from ``kinship``;
  a member's base is ``normalise(sqrt(k) * centre + sqrt(1 - k) * own)``, so two members' bases
  have a cosine close to ``k``. ``family_size=1`` gives the generator's faces unchanged.
* **Poor captures** (optional, ``poor_share``): that share of captures takes its noise from
  :data:`POOR_SIGMA` instead (off-angle, blurred, badly lit field photographs), which gives the
  genuine scores the low tail real matchers see. ``poor_share=0`` is the generator's model.

Invariants:
* Deterministic: the same arguments give the same arrays (bases depend only on the federation
  seed and the ids; captures only on the ``seed`` given).
* Every vector returned is float64 of unit norm and dimension :data:`DIMENSION`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.errors import InvalidArgumentError
from node.records.datasets import TEMPLATE_DIMENSION
from node.records.generate import D_BIO, DEFAULT_FEDERATION_SEED

DIMENSION = TEMPLATE_DIMENSION
CAPTURE_SIGMA = (0.4, 0.75)  # the generator's per-capture noise range
POOR_SIGMA = (0.75, 1.5)  # noise range of poor captures
D_FAMILY = 0xFA  # seed domain of family centres (distinct from the generator's domains)
DEFAULT_FAMILY_SIZE = 3
DEFAULT_KINSHIP = (0.2, 0.8)
_MASK = (1 << 64) - 1

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _unit(rows: F64) -> F64:
    normalised: F64 = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def _seeded_normals(federation_seed: int, domain: int, ids: I64, dim: int) -> F64:
    out = np.empty((len(ids), dim), dtype=np.float64)
    seed = federation_seed & _MASK
    for row, ident in enumerate(ids.tolist()):
        out[row] = np.random.default_rng([seed, domain, ident]).standard_normal(dim)
    return out


def identity_bases(
    ids: npt.ArrayLike, *, federation_seed: int = DEFAULT_FEDERATION_SEED, dim: int = DIMENSION
) -> F64:
    """The generator's base vectors of federation persons ``ids`` (one unit row per id)."""
    array = np.asarray(ids, dtype=np.int64).ravel()
    if (array < 0).any():
        raise InvalidArgumentError("federation person ids are non-negative", field="ids")
    return _unit(_seeded_normals(federation_seed, D_BIO, array, dim))


def federation_person(global_person_id: str) -> int | None:
    """The federation number ``g`` behind a generator ``global_person_id`` (``G`` + digits);
    ``None`` for a local person, who has no federation-wide face."""
    text = global_person_id.strip()
    if text[:1] == "G" and text[1:].isascii() and text[1:].isdigit():
        return int(text[1:])
    return None


def capture(
    bases: F64, rng: np.random.Generator, sigma: tuple[float, float] = CAPTURE_SIGMA
) -> F64:
    """One noisy capture of each base row, with the generator's noise model."""
    low, high = sigma
    if not 0.0 <= low <= high:
        raise InvalidArgumentError("must satisfy 0 <= low <= high", field="sigma")
    n, dim = bases.shape
    scale = low + (high - low) * rng.random((n,))
    noisy = bases + scale[:, None] * rng.standard_normal((n, dim)) / math.sqrt(dim)
    return _unit(noisy)


@dataclass(frozen=True, eq=False)
class Population:
    """Identities with their base vectors and family structure (row ``i`` is identity ``i``)."""

    ids: I64
    bases: F64
    family: I64  # family number of each identity
    kinship: F64  # kinship of each identity's family (0 for a family of one)

    def __len__(self) -> int:
        return len(self.ids)


def population(
    count: int,
    *,
    family_size: int = DEFAULT_FAMILY_SIZE,
    kinship: tuple[float, float] = DEFAULT_KINSHIP,
    first_id: int = 0,
    federation_seed: int = DEFAULT_FEDERATION_SEED,
    dim: int = DIMENSION,
) -> Population:
    """``count`` identities (federation ids ``first_id`` onwards) grouped into families."""
    if count < 1:
        raise InvalidArgumentError("must be at least 1", field="count")
    if family_size < 1:
        raise InvalidArgumentError("must be at least 1", field="family_size")
    low, high = kinship
    if not 0.0 <= low <= high < 1.0:
        raise InvalidArgumentError("must satisfy 0 <= low <= high < 1", field="kinship")
    ids = np.arange(first_id, first_id + count, dtype=np.int64)
    own = identity_bases(ids, federation_seed=federation_seed, dim=dim)
    family = ids // family_size
    if family_size == 1:
        return Population(ids, own, family, np.zeros(count))
    families = np.unique(family)
    centres = _unit(_seeded_normals(federation_seed, D_FAMILY, families, dim))
    index = np.searchsorted(families, family)
    draws = np.array(
        [np.random.default_rng([federation_seed & _MASK, D_FAMILY, int(f), 1]).random()
         for f in families.tolist()]
    )  # fmt: skip
    k = (low + (high - low) * draws)[index]
    bases = _unit(np.sqrt(k)[:, None] * centres[index] + np.sqrt(1.0 - k)[:, None] * own)
    return Population(ids, bases, family, k)


def captures(
    people: Population, per_identity: int, seed: int, *, poor_share: float = 0.0
) -> tuple[F64, I64]:
    """``per_identity`` captures of every identity: vectors ``(n * m, dim)`` and their row labels
    (the index of the identity in ``people``), identity-major. ``poor_share`` of the captures
    (chosen at random) are poor ones, with noise from :data:`POOR_SIGMA`."""
    if per_identity < 1:
        raise InvalidArgumentError("must be at least 1", field="per_identity")
    if not 0.0 <= poor_share <= 1.0:
        raise InvalidArgumentError("must be between 0 and 1", field="poor_share")
    rng = np.random.default_rng(seed)
    repeated = np.repeat(people.bases, per_identity, axis=0)
    labels = np.repeat(np.arange(len(people), dtype=np.int64), per_identity)
    vectors = capture(repeated, rng)
    if poor_share > 0.0:
        poor = rng.random(len(labels)) < poor_share
        vectors[poor] = capture(repeated[poor], rng, POOR_SIGMA)
    return vectors, labels


def random_unit_vectors(count: int, rng: np.random.Generator, dim: int = DIMENSION) -> F64:
    """Unrelated faces in bulk (e.g. to fill a million-code gallery quickly)."""
    if count < 0:
        raise InvalidArgumentError("must not be negative", field="count")
    return _unit(rng.standard_normal((count, dim)))

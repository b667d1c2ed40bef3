"""Per-peer code galleries: hits and misses, epoch rotation, FAISS against numpy, persistence,
and the synthetic faces against the records generator's."""

from __future__ import annotations

import base64
import csv
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from crypto.biohash import (
    SEARCH_BITS,
    ProjectionKey,
    hamming_distances,
    pairwise_secret,
    protect,
    search_prefix,
)
from node.biometrics import synthetic as syn
from node.biometrics.gallery import (
    DEFAULT_BANDS,
    BandThresholds,
    CodeGallery,
    NumpyGallery,
    pin_threads,
)
from node.errors import FailedPreconditionError, InvalidArgumentError, StoreError
from node.records.generate import generate

BITS = 4096
BYTES = BITS // 8


def node_key() -> tuple[bytes, bytes]:
    private = x25519.X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


@pytest.fixture(scope="module")
def keys() -> dict[int, ProjectionKey]:
    """Holder PAN and querier CRI, epochs 1 and 2, each side deriving its own copy."""
    pan, cri = node_key(), node_key()
    out = {}
    for epoch in (1, 2):
        holder = pairwise_secret(pan[0], cri[1], me="PAN", peer="CRI", epoch=epoch)
        querier = pairwise_secret(cri[0], pan[1], me="CRI", peer="PAN", epoch=epoch)
        assert holder == querier
        out[epoch] = ProjectionKey.from_secret(holder, syn.DIMENSION, BITS)
    return out


@pytest.fixture(scope="module")
def captures() -> tuple[np.ndarray, np.ndarray]:
    """80 unrelated people, two captures each: enrolment (even rows) and probe (odd rows)."""
    people = syn.population(80, family_size=1, first_id=5_000)
    vectors, _ = syn.captures(people, 2, seed=11)
    return vectors[0::2], vectors[1::2]


def enrolled(key: ProjectionKey, faces: np.ndarray, count: int) -> CodeGallery:
    gallery = CodeGallery(BITS, key_id=key.key_id)
    gallery.add([f"B{i:05d}" for i in range(count)], protect(faces[:count], key))
    return gallery


# --------------------------------------------------------------------------- matching


def test_genuine_probes_hit_the_right_person_and_impostors_miss(
    keys: dict[int, ProjectionKey], captures: tuple[np.ndarray, np.ndarray]
) -> None:
    enrol, probe = captures
    gallery = enrolled(keys[1], enrol, 40)
    decisions = [gallery.decide(code) for code in protect(probe, keys[1])]
    for i, decision in enumerate(decisions[:40]):
        assert decision.hit and decision.record_id == f"B{i:05d}", (i, decision)
    for decision in decisions[40:]:  # people the holder never enrolled
        assert not decision.hit and decision.record_id is None
        assert decision.distance is not None and decision.distance > DEFAULT_BANDS[BITS].probable


def test_epoch_rotation_makes_old_codes_miss(
    keys: dict[int, ProjectionKey], captures: tuple[np.ndarray, np.ndarray]
) -> None:
    enrol, probe = captures
    old = enrolled(keys[1], enrol, 40)
    new_codes = protect(probe[:40], keys[2])
    assert all(old.decide(code).band == "no-hit" for code in new_codes)
    with pytest.raises(FailedPreconditionError):
        old.require_key(keys[2].key_id)
    rebuilt = enrolled(keys[2], enrol, 40)
    rebuilt.require_key(keys[2].key_id)
    assert all(rebuilt.decide(code).hit for code in new_codes)


def test_bands() -> None:
    bands = BandThresholds(strong=10, probable=20)
    assert [bands.band(d) for d in (0, 10, 11, 20, 21)] == [
        "strong",
        "strong",
        "probable",
        "probable",
        "no-hit",
    ]
    with pytest.raises(ValueError):
        BandThresholds(strong=21, probable=20)
    for bits, b in DEFAULT_BANDS.items():
        assert 0 < b.strong < b.probable < bits * 0.4  # well below unrelated faces (bits / 2)
        assert CodeGallery(bits).band(b.probable + 1) == "no-hit"


# --------------------------------------------------------------------------- FAISS vs numpy


def test_faiss_agrees_with_the_numpy_cross_check(
    keys: dict[int, ProjectionKey], captures: tuple[np.ndarray, np.ndarray]
) -> None:
    pin_threads(1)
    rng = np.random.default_rng(5)
    enrol, probe = captures
    codes = np.concatenate(
        [protect(enrol, keys[1]), rng.integers(0, 256, (300, BITS // 8), dtype=np.uint8)]
    )
    codes[100] = codes[7]  # an exact tie
    ids = [f"r{i}" for i in range(len(codes))]
    # a shortlist as large as the gallery: both stages see everything, so results are equal
    fast, slow = CodeGallery(BITS, shortlist=len(codes)), NumpyGallery(BITS)
    short = CodeGallery(BITS, shortlist=4)
    for start in range(0, len(codes), 97):  # incremental, uneven batches
        for gallery in (fast, slow, short):
            gallery.add(ids[start : start + 97], codes[start : start + 97])
    assert np.array_equal(fast.codes(), codes) and fast.ids == slow.ids
    probes = np.concatenate([protect(probe, keys[1]), codes[7:8]])
    truth = hamming_distances(probes, codes, BITS)
    position = {ident: i for i, ident in enumerate(ids)}
    for i, (got, want) in enumerate(
        zip(fast.search_batch(probes, 5), slow.search_batch(probes, 5), strict=True)
    ):
        assert [n.distance for n in got] == [n.distance for n in want]
        assert [n.distance for n in got] == sorted(truth[i])[:5]
        assert all(truth[i, position[n.id]] == n.distance for n in got)
    assert {n.id for n in fast.search(codes[7], 2)} == {"r7", "r100"}
    # a short shortlist still finds every mate, scored on the full code, not on the prefix
    for got, want in zip(short.search_batch(probes, 1), slow.search_batch(probes, 1), strict=True):
        assert got == want
    prefix_truth = hamming_distances(search_prefix(probes, BITS), search_prefix(codes, BITS), 512)
    assert short.search(probes[0])[0].distance == truth[0].min() != prefix_truth[0].min()


def test_the_prefix_shortlist_keeps_mates_among_thousands_of_strangers(
    keys: dict[int, ProjectionKey], captures: tuple[np.ndarray, np.ndarray]
) -> None:
    """5,000 unrelated faces plus 40 enrolled: with a shortlist of 8 the two-stage search
    answers mated probes exactly as a full scan of the long codes does; for the others the
    nearest stranger may differ (the prefix ranks strangers coarsely) but both are no-hits."""
    enrol, probe = captures
    strangers = syn.random_unit_vectors(5_000, np.random.default_rng(8))
    codes = protect(np.concatenate([enrol[:40], strangers]), keys[1])
    ids = [f"B{i:05d}" for i in range(len(codes))]
    fast, slow = CodeGallery(BITS, shortlist=8), NumpyGallery(BITS)
    fast.add(ids, codes)
    slow.add(ids, codes)
    probes = protect(probe, keys[1])
    got, want = fast.search_batch(probes, 1), slow.search_batch(probes, 1)
    assert got[:40] == want[:40]
    assert [n[0].id for n in got[:40]] == ids[:40]
    for mine, full in zip(got[40:], want[40:], strict=True):
        assert mine[0].distance >= full[0].distance > DEFAULT_BANDS[BITS].probable
    assert SEARCH_BITS == 512 and fast.shortlist == 8


def test_search_edges() -> None:
    gallery = CodeGallery(2048)
    code = np.zeros(256, dtype=np.uint8)
    empty = gallery.search_batch(np.zeros((2, 256), np.uint8))
    assert gallery.search(code, 3) == [] and empty == [[], []]
    assert not gallery.decide(code).hit
    gallery.add(["a", "b"], np.stack([code, np.full(256, 255, np.uint8)]))
    assert [n.id for n in gallery.search(code, 10)] == ["a", "b"]
    assert gallery.search(code.tobytes())[0].distance == 0
    with pytest.raises(InvalidArgumentError, match="k"):
        gallery.search(code, 0)
    with pytest.raises(InvalidArgumentError, match="code"):
        gallery.search(np.zeros((2, 256), np.uint8))
    with pytest.raises(InvalidArgumentError, match="bits"):
        CodeGallery(300)
    with pytest.raises(InvalidArgumentError, match="format 1") as legacy:
        CodeGallery(512)  # the short codes of format 1 are refused by name
    assert legacy.value.field == "bits"
    for bad in (0, 5_000):
        with pytest.raises(InvalidArgumentError, match="shortlist"):
            CodeGallery(2048, shortlist=bad)
    with pytest.raises(ValueError):
        pin_threads(0)


@pytest.mark.parametrize(
    ("ids", "codes", "field"),
    [
        (["x", "x"], np.zeros((2, 256), np.uint8), "ids"),  # duplicate in the batch
        (["a2", "old"], np.zeros((2, 256), np.uint8), "ids"),  # already enrolled
        (["y", ""], np.zeros((2, 256), np.uint8), "ids"),
        (["z"], np.zeros((2, 256), np.uint8), "ids"),  # count mismatch
        (["w"], np.zeros((1, 64), np.uint8), "codes"),  # a format-1 length (512 bits)
        (["v"], np.zeros((1, 256), np.int16), "codes"),
    ],
)
def test_add_is_all_or_nothing(ids: list[str], codes: np.ndarray, field: str) -> None:
    for gallery in (CodeGallery(2048), NumpyGallery(2048)):
        gallery.add(["old"], np.ones((1, 256), np.uint8))
        with pytest.raises(InvalidArgumentError) as info:
            gallery.add(ids, codes)
        assert info.value.field == field
        assert len(gallery) == 1 and gallery.ids == ("old",)


# --------------------------------------------------------------------------- persistence


def test_persistence_round_trip_and_corruption(
    keys: dict[int, ProjectionKey], captures: tuple[np.ndarray, np.ndarray]
) -> None:
    enrol, probe = captures
    gallery = enrolled(keys[1], enrol, 30)
    gallery.add(["señora-ñ", "B99999"], protect(enrol[30:32], keys[1]))
    data = gallery.to_bytes()
    back = CodeGallery.from_bytes(data)
    assert back.ids == gallery.ids and back.key_id == keys[1].key_id and back.bits == BITS
    assert np.array_equal(back.codes(), gallery.codes())
    probes = protect(probe[:32], keys[1])
    assert back.search_batch(probes, 3) == gallery.search_batch(probes, 3)
    assert CodeGallery.from_bytes(CodeGallery(8192, key_id="k").to_bytes()).bits == 8192
    flipped = bytearray(data)
    flipped[40] ^= 1
    two = CodeGallery(2048)
    two.add(["a", "b"], np.zeros((2, 256), np.uint8))
    body = two.to_bytes()[:-32]
    assert body.endswith(b"\x00\x01a\x00\x01b")
    duplicated = body[:-1] + b"a"  # well-formed, correctly digested, but the ids repeat
    forged = duplicated + hashlib.sha256(duplicated).digest()
    for bad in (bytes(flipped), data[:-1], data[:20], b"", b"XXXX" + data[4:], forged):
        with pytest.raises(StoreError):
            CodeGallery.from_bytes(bad)
    # a format-1 gallery (512-bit codes) is refused with the way out, not read as format 2
    old = struct.pack(">4sBBHQB", b"ENLG", 1, 0, 512, 1, 0) + bytes(64) + b"\x00\x01a"
    with pytest.raises(StoreError, match=r"format-1.*rebuild"):
        CodeGallery.from_bytes(old + hashlib.sha256(old).digest())


# --------------------------------------------------------------------------- synthetic faces


def test_synthetic_faces_are_the_generators(tmp_path: Path) -> None:
    """Journeying persons in a generated file are captures of ``identity_bases(gid)``."""
    generate("PAN", 800, 3, tmp_path, templates_fraction=1.0)
    with (tmp_path / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
        person = {r["local_id"]: r["global_person_id"] for r in csv.DictReader(handle)}
    pairs = []
    with (tmp_path / "biometric_templates.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            gid = syn.federation_person(person.get(row["person_id"], ""))
            if gid is not None:
                pairs.append((gid, np.frombuffer(base64.b64decode(row["vector"]), "<f4")))
    assert len(pairs) > 50
    assert syn.federation_person("LPAN3-1000000001") is None
    bases = syn.identity_bases([g for g, _ in pairs])
    cosines = np.einsum("ij,ij->i", bases, np.array([v for _, v in pairs]))
    # capture noise sigma in [0.4, 0.75] puts a capture at cosine ~1/sqrt(1 + sigma^2)
    low, high = (1 / np.sqrt(1 + s**2) for s in reversed(syn.CAPTURE_SIGMA))
    assert low - 0.08 < cosines.min() and cosines.max() < high + 0.05
    mine = syn.capture(bases, np.random.default_rng(1))
    assert abs(float(np.einsum("ij,ij->i", bases, mine).mean() - cosines.mean())) < 0.02


def test_synthetic_genuine_scores_and_families() -> None:
    people = syn.population(300, family_size=3, kinship=(0.5, 0.5))
    vectors, labels = syn.captures(people, 2, seed=2)
    genuine = np.einsum("ij,ij->i", vectors[0::2], vectors[1::2])
    assert 0.6 < genuine.mean() < 0.9 and genuine.min() > 0.4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    kin = np.einsum("ij,ij->i", people.bases[0::3], people.bases[1::3])
    strangers = np.einsum("ij,ij->i", people.bases[0:99:3], people.bases[4:103:3])
    assert abs(kin.mean() - 0.5) < 0.05 and abs(strangers.mean()) < 0.05
    poor, _ = syn.captures(people, 2, seed=2, poor_share=1.0)
    assert np.einsum("ij,ij->i", poor[0::2], poor[1::2]).mean() < genuine.mean() - 0.1
    again, again_labels = syn.captures(people, 2, seed=2)
    assert np.array_equal(again, vectors) and np.array_equal(again_labels, labels)
    with pytest.raises(InvalidArgumentError):
        syn.population(0)
    with pytest.raises(InvalidArgumentError):
        syn.population(10, kinship=(0.5, 1.0))

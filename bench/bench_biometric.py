"""Accuracy, unlinkability, invertibility and search latency of protected biometric codes.

Why: DESIGN section 8 promises that codes computed under a pairwise key stay close to raw
accuracy, differ across peers and epochs, and can be searched exactly at a million codes. This
harness measures those claims, ISO/IEC 30136 style, on the synthetic population of
:mod:`node.biometrics.synthetic` (the records generator's face model plus families):

* accuracy: genuine and impostor score distributions over *all* pairs of captures, raw cosine
  and Hamming distance of codes of each length, and of the 512-bit search prefix alone (the
  first stage, as short as the codes of format 1), FNMR at FMR 1e-3, 1e-4 and 1e-6 (and the
  FMR actually reached, codes being discrete), the ratio protected / raw;
* unlinkability: fractional Hamming distance between codes of one person under two pairwise keys
  (two peers; two epochs) against the same key, and the D<->sys measure of linkability
  (0 = unlinkable, 1 = fully linkable) of Gomez-Barrero et al.;
* invertibility by a key holder: a template rebuilt from a code and the key, and how often a raw
  matcher accepts it as the person;
* identification (1:N) with the measured bands, through the two-stage gallery (prefix
  shortlist, full-code score): how often the holder's answer is right;
* search latency per probe on a gallery of ``--gallery`` codes of the default length, FAISS
  pinned to one thread (wall time and CPU time of the searching thread, both stages).

    python bench/bench_biometric.py [--identities N] [--captures M] [--bits 2048,4096,8192]
        [--gallery G] [--probes P] [--shortlist K] [--poor-shares 0,0.05]
        [--generated DIR DIR] [--json]

Bounded by the sizes given: the defaults (2,500 identities x 4 captures, 5e7 impostor pairs, a
gallery of 1,000,000) take one to two minutes on one core. Figures only; docs/biometrics.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core; no spinning BLAS threads

import argparse
import base64
import csv
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import x25519

from crypto import biohash
from crypto.biohash import DEFAULT_BITS, SEARCH_BITS, ProjectionKey, pairwise_secret, protect
from node.biometrics import gallery as gal
from node.biometrics import synthetic as syn

FMRS = (1e-3, 1e-4, 1e-6)
CHUNK = 768
PAIRS_CHUNK = 20_000


def _r(value: Any, digits: int = 4) -> float:
    return round(float(value), digits)


# --------------------------------------------------------------------------- keys


def _node_keys(seed: int, country: str) -> tuple[bytes, bytes]:
    private = hashlib.sha256(f"bench-biometric|{seed}|{country}".encode()).digest()
    public = x25519.X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    return private, public


def pairwise_keys(seed: int, bits: int) -> dict[str, ProjectionKey]:
    """Keys of the holder PAN with CRI (epochs 1 and 2) and with HND (epoch 1)."""
    pan, cri, hnd = (_node_keys(seed, c) for c in ("PAN", "CRI", "HND"))
    secrets = {
        "PAN-CRI/1": pairwise_secret(pan[0], cri[1], me="PAN", peer="CRI", epoch=1),
        "PAN-CRI/2": pairwise_secret(cri[0], pan[1], me="CRI", peer="PAN", epoch=2),
        "PAN-HND/1": pairwise_secret(pan[0], hnd[1], me="PAN", peer="HND", epoch=1),
    }
    return {name: ProjectionKey.from_secret(s, syn.DIMENSION, bits) for name, s in secrets.items()}


def _signs(codes: np.ndarray) -> np.ndarray:
    return np.unpackbits(codes, axis=1).astype(np.float32) * 2.0 - 1.0


# --------------------------------------------------------------------------- all-pairs scores


def all_pairs(
    raw: np.ndarray, signs: dict[int, np.ndarray], labels: np.ndarray, family: np.ndarray
) -> dict[str, Any]:
    """Genuine scores and impostor tails over every pair ``i < j`` of captures.

    Raw cosine: every genuine score, and the largest impostor scores (enough for the smallest
    FMR asked). Codes: every genuine distance and the exact histogram of impostor distances.
    """
    n = raw.shape[0]
    total_genuine = int(sum(c * (c - 1) // 2 for c in np.bincount(labels)))
    total_impostor = n * (n - 1) // 2 - total_genuine
    keep = int(max(FMRS) * total_impostor) + 2
    genuine_raw: list[np.ndarray] = []
    top = np.empty(0, dtype=np.float32)
    genuine_bits: dict[int, list[np.ndarray]] = {b: [] for b in signs}
    histograms = {b: np.zeros(b + 1, dtype=np.int64) for b in signs}
    family_pairs, unrelated_max = 0, -1.0
    raw32 = raw.astype(np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        upper = np.arange(start, n)[None, :] > np.arange(start, stop)[:, None]
        same = labels[start:stop, None] == labels[None, start:]
        gen, imp = upper & same, upper & ~same
        kin = imp & (family[start:stop, None] == family[None, start:])
        family_pairs += int(kin.sum())
        scores = raw32[start:stop] @ raw32[start:].T
        unrelated_max = max(unrelated_max, float(scores[imp & ~kin].max(initial=-1.0)))
        genuine_raw.append(scores[gen])
        top = np.concatenate([top, scores[imp]])
        if len(top) > keep:
            top = np.partition(top, len(top) - keep)[-keep:]
        for bits, s in signs.items():
            distance = np.rint((bits - s[start:stop] @ s[start:].T) / 2.0).astype(np.int64)
            genuine_bits[bits].append(distance[gen])
            histograms[bits] += np.bincount(distance[imp], minlength=bits + 1)
    return {
        "genuine_pairs": total_genuine,
        "impostor_pairs": total_impostor,
        "family_impostor_pairs": family_pairs,
        "unrelated_impostor_max": unrelated_max,
        "raw_genuine": np.concatenate(genuine_raw),
        "raw_impostor_top": np.sort(top)[::-1],
        "bits_genuine": {b: np.concatenate(v) for b, v in genuine_bits.items()},
        "bits_impostor_hist": histograms,
    }


def _point(
    fmr: float, total: int, threshold: float, reached: float, rejected: Any
) -> dict[str, Any]:
    return {
        "fmr_target": fmr,
        "resolvable": total * fmr >= 3,
        "threshold": threshold,
        "fmr": reached,
        "fnmr": float(rejected.mean()),
        "false_non_matches": int(rejected.sum()),
    }


def raw_operating_point(genuine: Any, top: Any, total: int, fmr: float) -> dict[str, Any]:
    """Accept cosine > threshold, the threshold being the (a+1)-th largest impostor score."""
    threshold = float(top[int(fmr * total)])
    reached = int((top > threshold).sum()) / total
    return _point(fmr, total, _r(threshold, 5), reached, genuine <= threshold)


def code_operating_point(genuine: np.ndarray, hist: np.ndarray, fmr: float) -> dict[str, Any]:
    """Accept distance <= t, the largest t whose impostor count stays within ``fmr``."""
    total, cumulative = int(hist.sum()), np.cumsum(hist)
    within = np.nonzero(cumulative <= int(fmr * total))[0]
    threshold = int(within.max()) if len(within) else -1
    reached = int(cumulative[threshold]) / total if threshold >= 0 else 0.0
    return _point(fmr, total, threshold, reached, genuine > threshold)


def accuracy(pairs: dict[str, Any]) -> dict[str, Any]:
    raw = [
        raw_operating_point(
            pairs["raw_genuine"], pairs["raw_impostor_top"], pairs["impostor_pairs"], f
        )
        for f in FMRS
    ]
    out: dict[str, Any] = {
        "genuine_pairs": pairs["genuine_pairs"],
        "impostor_pairs": pairs["impostor_pairs"],
        "family_impostor_pairs": pairs["family_impostor_pairs"],
        "raw": {
            f"genuine_{name}": _r(fn(pairs["raw_genuine"]))
            for name, fn in (("mean", np.mean), ("min", np.min), ("max", np.max))
        }
        | {
            "genuine_p01": _r(np.percentile(pairs["raw_genuine"], 1)),
            "impostor_max": _r(pairs["raw_impostor_top"][0]),
            "unrelated_impostor_max": _r(pairs["unrelated_impostor_max"]),
            "points": raw,
        },
        "codes": {},
    }
    for bits, genuine in pairs["bits_genuine"].items():
        hist = pairs["bits_impostor_hist"][bits]
        points = [code_operating_point(genuine, hist, f) for f in FMRS]
        for point, base in zip(points, raw, strict=True):
            point["fnmr_ratio_to_raw"] = (
                round(point["fnmr"] / base["fnmr"], 3) if base["fnmr"] > 0 else None
            )
        mean_impostor = float((np.arange(bits + 1) * hist).sum() / hist.sum()) / bits
        out["codes"][str(bits)] = {
            "genuine_mean_fraction": _r(genuine.mean() / bits),
            "impostor_mean_fraction": _r(mean_impostor),
            "points": points,
        }
    return out


# --------------------------------------------------------------------------- unlinkability


def d_sys(mated: np.ndarray, non_mated: np.ndarray, bins: int = 50) -> float:
    """Global linkability D<->sys of two score samples (fractional distances), prior ratio 1."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    pm = np.histogram(mated, edges)[0] / len(mated)
    pn = np.histogram(non_mated, edges)[0] / len(non_mated)
    # D<->(s) = 2 LR / (1 + LR) - 1 where LR = pm / pn > 1, i.e. (pm - pn) / (pm + pn)
    both = pm + pn
    local = np.where(both > 0, (pm - pn) / np.where(both > 0, both, 1.0), 0.0).clip(min=0.0)
    return float((local * pm).sum())


def unlinkability(
    raw: np.ndarray, m: int, bits: int, keys: dict[str, ProjectionKey], rng: np.random.Generator
) -> dict[str, Any]:
    """Codes under PAN-CRI/1 against PAN-HND/1 (peers), PAN-CRI/2 (epochs) and itself.

    Rows of ``raw`` are identity-major, ``m`` captures per identity."""
    codes = {name: protect(raw, key) for name, key in keys.items()}
    n = len(raw)
    i, j = np.nonzero(~np.eye(m, dtype=bool))  # ordered pairs of distinct captures
    ident = np.arange(n).reshape(-1, m)
    left, right = ident[:, i].ravel(), ident[:, j].ravel()
    a, b = rng.integers(0, n, (2, 200_000))
    a, b = a[a // m != b // m], b[a // m != b // m]

    def frac(other: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        parts = [
            biohash.paired_hamming(
                codes["PAN-CRI/1"][x[i : i + PAIRS_CHUNK]],
                codes[other][y[i : i + PAIRS_CHUNK]],
                bits,
            )
            for i in range(0, len(x), PAIRS_CHUNK)
        ]
        return np.concatenate(parts) / bits

    out: dict[str, Any] = {}
    for label, other in {
        "peers": "PAN-HND/1",
        "epochs": "PAN-CRI/2",
        "same_key": "PAN-CRI/1",
    }.items():
        mated, non_mated = frac(other, left, right), frac(other, a, b)
        out[label] = {"mated_mean": _r(mated.mean()), "non_mated_mean": _r(non_mated.mean())}
        out[label]["d_sys"] = _r(d_sys(mated, non_mated))
        if other != "PAN-CRI/1":
            same = frac(other, np.arange(n), np.arange(n))
            out[label] |= {"same_capture_mean": _r(same.mean()), "same_capture_min": _r(same.min())}
    return out


# --------------------------------------------------------------------------- inversion


def inversion(
    raw: np.ndarray, m: int, key: ProjectionKey, raw_threshold: float, rng: np.random.Generator
) -> dict[str, float]:
    """What a key holder recovers: ``normalise(W^T s)`` from the code's signs ``s``."""
    sample = rng.choice(len(raw), size=min(2000, len(raw)), replace=False)
    rebuilt = _signs(protect(raw[sample], key)).astype(np.float64) @ key.matrix
    rebuilt /= np.linalg.norm(rebuilt, axis=1, keepdims=True)
    to_source = np.einsum("ij,ij->i", rebuilt, raw[sample])
    mates = sample // m * m + (sample % m + 1) % m  # another capture of the same person
    to_mate = np.einsum("ij,ij->i", rebuilt, raw[mates])
    return {
        "bits": key.bits,
        "cosine_to_source_mean": _r(to_source.mean()),
        "cosine_to_other_capture_mean": _r(to_mate.mean()),
        "accepted_by_raw_matcher_at_fmr_1e-4": _r((to_mate > raw_threshold).mean()),
    }


# --------------------------------------------------------------------------- identification


def identification(
    raw: np.ndarray, m: int, family: np.ndarray, key: ProjectionKey, bands: gal.BandThresholds,
    rng: np.random.Generator, shortlist: int,
) -> dict[str, Any]:  # fmt: skip
    """Half the identities enrolled (first capture); probes: second captures of everyone.

    Rows of ``raw`` are identity-major, ``m`` captures per identity; ``family`` per identity."""
    people = len(raw) // m
    ids = sorted(rng.choice(people, size=people // 2, replace=False).tolist())
    enrolled = set(ids)
    g = gal.CodeGallery(key.bits, key_id=key.key_id, bands=bands, shortlist=shortlist)
    g.add([f"id{p}" for p in ids], protect(raw[np.array(ids) * m], key))
    probes = list(range(people))
    results = g.search_batch(protect(raw[np.arange(people) * m + 1], key), 1)
    counts: Counter[str] = Counter()
    for person, found in zip(probes, results, strict=True):
        band, nearest = bands.band(found[0].distance), int(found[0].id[2:])
        if person in enrolled:
            counts["mated"] += 1
            if band != "no-hit":
                counts["right" if nearest == person else "wrong"] += 1
                counts["right_strong"] += int(nearest == person and band == "strong")
        else:
            counts["non_mated"] += 1
            counts[band] += 1
            relative = family[nearest] == family[person]
            counts["on_relative"] += int(band != "no-hit" and relative)
    hits = counts["probable"] + counts["strong"]
    return {
        "bits": key.bits,
        "gallery": len(g),
        "shortlist": shortlist,
        "fnir": _r(1.0 - counts["right"] / counts["mated"]),
        "wrong_identity_hits": counts["wrong"],
        "mated_strong_rate": _r(counts["right_strong"] / counts["mated"]),
        "fpir_probable_or_strong": _r(hits / counts["non_mated"]),
        "fpir_strong": _r(counts["strong"] / counts["non_mated"]),
        "non_mated_hits": hits,
        "non_mated_hits_on_a_relative": counts["on_relative"],
    }


# --------------------------------------------------------------------------- latency


def latency(
    size: int, probes: int, seed: int, people: syn.Population, shortlist: int
) -> dict[str, Any]:
    """Per-probe search time on ``size`` codes of the default length, FAISS on one thread:
    the prefix scan and the re-scoring of the shortlist, as the holder answers one probe."""
    gal.pin_threads(1)
    key = pairwise_keys(seed, DEFAULT_BITS)["PAN-CRI/1"]
    rng = np.random.default_rng(seed + 7)
    enrolled = min(probes, len(people), size)
    first = syn.captures(people, 2, seed + 8)[0][: 2 * enrolled]
    g = gal.CodeGallery(DEFAULT_BITS, key_id=key.key_id, shortlist=shortlist)
    began = time.perf_counter()
    g.add([f"p{i}" for i in range(enrolled)], protect(first[0::2], key))
    for start in range(enrolled, size, 100_000):
        fill = protect(syn.random_unit_vectors(min(100_000, size - start), rng), key)
        g.add([f"f{start + i}" for i in range(len(fill))], fill)
    build = time.perf_counter() - began
    probe_codes = protect(first[1::2], key)
    wall, cpu, right = [], [], 0
    for i in range(enrolled):
        t0, c0 = time.perf_counter(), time.thread_time()
        found = g.search(probe_codes[i])
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
        right += int(found[0].id == f"p{i}")
    ms_wall, ms_cpu = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return {
        "gallery": len(g),
        "bits": DEFAULT_BITS,
        "search_bits": SEARCH_BITS,
        "shortlist": shortlist,
        "memory_mb": round(len(g) * (DEFAULT_BITS + SEARCH_BITS) / 8 / 2**20),
        "probes": enrolled,
        "nearest_is_mate": right,
        "build_seconds": round(build, 2),
        "wall_ms": {f"p{q}": _r(np.percentile(ms_wall, q), 3) for q in (50, 90, 99)}
        | {"mean": _r(ms_wall.mean(), 3)},
        "cpu_ms": {"p50": _r(np.percentile(ms_cpu, 50), 3), "mean": _r(ms_cpu.mean(), 3)},
    }


# --------------------------------------------------------------------------- generated files


def read_generated(directories: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Templates of several generated countries, labelled by federation person (or row)."""
    vectors: list[np.ndarray] = []
    labels: list[int] = []
    for directory in directories:
        with (directory / "ground_truth.csv").open(encoding="utf-8", newline="") as handle:
            person = {r["local_id"]: r["global_person_id"] for r in csv.DictReader(handle)}
        with (directory / "biometric_templates.csv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                vectors.append(np.frombuffer(base64.b64decode(row["vector"]), "<f4"))
                gid = syn.federation_person(person.get(row["person_id"], ""))
                labels.append(-1 - len(labels) if gid is None else gid)  # locals: unique
    _, dense = np.unique(np.array(labels), return_inverse=True)
    return np.array(vectors, dtype=np.float64), dense.astype(np.int64)


# --------------------------------------------------------------------------- main


def _code_signs(raw: np.ndarray, args: Any) -> dict[int, np.ndarray]:
    """Signs of the codes of each length, and (as length 512) of the default code's prefix."""
    signs = {b: _signs(protect(raw, args.keys[b]["PAN-CRI/1"])) for b in args.bits}
    prefix_of = DEFAULT_BITS if DEFAULT_BITS in signs else max(signs)
    return {SEARCH_BITS: signs[prefix_of][:, :SEARCH_BITS]} | signs


def scenario(people: syn.Population, args: Any, share: float) -> tuple[Any, dict[str, Any]]:
    """Captures of ``people`` with a ``share`` of poor ones, and the accuracy they give."""
    raw, labels = syn.captures(people, args.captures, args.seed + 1, poor_share=share)
    signs = _code_signs(raw, args)
    return raw, {
        "poor_share": share,
        **accuracy(all_pairs(raw, signs, labels, people.family[labels])),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    kw = {"family_size": args.family_size, "kinship": args.kinship, "federation_seed": args.seed}
    people = syn.population(args.identities, **kw)
    args.keys = {b: pairwise_keys(args.seed, b) for b in args.bits}
    runs = [scenario(people, args, share) for share in args.poor_shares]
    raw, first = runs[0]
    result: dict[str, Any] = {
        "benchmark": "biometric",
        "data": kw
        | {"identities": args.identities, "captures": args.captures}
        | {"capture_sigma": syn.CAPTURE_SIGMA, "poor_sigma": syn.POOR_SIGMA},
        "accuracy": [r[1] for r in runs],
    }
    raw_1e4 = next(p for p in first["raw"]["points"] if p["fmr_target"] == 1e-4)
    rng = np.random.default_rng(args.seed + 2)
    result["unlinkability"] = {
        str(b): unlinkability(raw, args.captures, b, args.keys[b], rng) for b in args.bits
    }
    result["inversion"] = [
        inversion(raw, args.captures, args.keys[b]["PAN-CRI/1"], raw_1e4["threshold"], rng)
        for b in args.bits
    ]
    result["bands"], result["identification"] = {}, []
    for b in args.bits:
        points = {p["fmr_target"]: p for p in first["codes"][str(b)]["points"]}
        strong, probable = points[1e-6]["threshold"], points[1e-4]["threshold"]
        bands = gal.BandThresholds(max(strong, 0), max(probable, strong, 0))
        result["bands"][str(b)] = {"strong": bands.strong, "probable": bands.probable}
        key = args.keys[b]["PAN-CRI/1"]
        result["identification"].append(
            identification(raw, args.captures, people.family, key, bands, rng, args.shortlist)
        )
    if args.generated:
        g_raw, g_labels = read_generated(args.generated)
        g_signs = _code_signs(g_raw, args)
        g_pairs = all_pairs(g_raw, g_signs, g_labels, np.arange(len(g_labels)))
        result["generated"] = {"templates": len(g_labels), "accuracy": accuracy(g_pairs)}
    if args.gallery:
        result["latency"] = latency(args.gallery, args.probes, args.seed, people, args.shortlist)
    result["seconds"] = round(time.perf_counter() - started, 1)
    versions = {"numpy": np.__version__, "faiss": gal.faiss.__version__}
    result["machine"] = {"python": sys.version.split()[0], "cpus": os.cpu_count()} | versions
    return result


def _print_accuracy(acc: dict[str, Any], title: str) -> None:
    pairs = {k: f"{acc[k]:,}" for k in ("genuine_pairs", "impostor_pairs", "family_impostor_pairs")}
    print(f"{title}: {pairs}")
    print(f"  {'matcher':<15}" + "".join(f"  FNMR@FMR {f:g} (errors, FMR, x raw)" for f in FMRS))
    rows = [("raw cosine", acc["raw"]["points"])]
    codes = [
        (f"prefix {b}" if int(b) == SEARCH_BITS else f"code {b}", c["points"])
        for b, c in acc["codes"].items()
    ]
    for name, points in rows + codes:
        cells = [
            f"{p['fnmr']:.5f} ({p['false_non_matches']}, {p['fmr']:.1e}, "
            f"{p.get('fnmr_ratio_to_raw', '-')})"
            for p in points
        ]
        print(f"  {name:<15}  " + "  ".join(cells))


def _print(result: dict[str, Any]) -> None:
    print(f"data: {result['data']}")
    for acc in result["accuracy"]:
        _print_accuracy(acc, f"accuracy, poor share {acc['poor_share']}")
    if "generated" in result:
        count = result["generated"]["templates"]
        _print_accuracy(result["generated"]["accuracy"], f"generated files ({count} templates)")
    for section in ("unlinkability", "inversion", "bands", "identification", "latency"):
        if section in result:
            print(f"{section}: {json.dumps(result[section])}")
    print(f"total {result['seconds']} s")


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(x) for x in text.split(","))
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--identities", type=int, default=2500)
    add("--captures", type=int, default=4, help="captures per identity")
    add("--bits", default="2048,4096,8192", help="code lengths, comma-separated")
    add("--gallery", type=int, default=1_000_000, help="latency gallery size (0: skip)")
    add("--probes", type=int, default=200, help="latency probes")
    add("--shortlist", type=int, default=gal.DEFAULT_SHORTLIST, help="first-stage shortlist")
    add("--family-size", type=int, default=syn.DEFAULT_FAMILY_SIZE)
    add("--kinship", type=_pair, default=syn.DEFAULT_KINSHIP, metavar="LO,HI")
    add("--poor-shares", default="0,0.05", help="scenarios: shares of poor captures")
    add("--seed", type=int, default=20_260_101)
    add("--generated", type=Path, nargs=2, metavar="DIR", help="two `enlace generate` outputs")
    add("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    args.bits = tuple(int(b) for b in args.bits.split(","))
    args.poor_shares = tuple(float(x) for x in args.poor_shares.split(","))
    if any(b not in biohash.SUPPORTED_BITS for b in args.bits):
        parser.error(f"--bits must be among {biohash.SUPPORTED_BITS}")
    if not all(0.0 <= x <= 1.0 for x in args.poor_shares):
        parser.error("--poor-shares must be between 0 and 1")
    if not (2 <= args.identities <= 20_000 and 2 <= args.captures <= 10):
        parser.error("need 2..20000 identities and 2..10 captures")
    if not (0 <= args.gallery <= 10_000_000 and 1 <= args.probes <= 10_000):
        parser.error("need 0..1e7 gallery codes and 1..10000 probes")
    if not 1 <= args.shortlist <= gal.MAX_SHORTLIST:
        parser.error(f"--shortlist must be 1..{gal.MAX_SHORTLIST}")
    result = run(args)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

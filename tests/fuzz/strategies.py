"""Fuzzed request bodies and headers, generated from the protobuf descriptors.

Why descriptor-driven: a new request message is fuzzed the day it is registered, with no
generator to write. Why a vocabulary and a baseline: uniformly random strings almost never name
a dataset, a dimension or a period, so handlers would only ever see their first check. Bodies
are therefore drawn three ways — random bytes, byte-level mutations of the method's realistic
body (its :class:`hostile.toolkit.Row`), and typed messages that keep most baseline fields and
replace the others with vocabulary words, boundary numbers, random or injection text — so
fuzzing gets past validation into the code that touches the store.

Why a :class:`random.Random` and not a hypothesis strategy per message: hypothesis costs a few
milliseconds per drawn message here, which 100,000 messages per RPC cannot afford. Hypothesis
draws the generator (``st.randoms()``) and a batch of messages is made from it; a failure names
the exact bytes sent.
"""

from __future__ import annotations

import os
import random
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hostile.toolkit import (
    AGREEMENT_ID,
    DIRECTORY_PURPOSE,
    INJECTIONS,
    MATCH_PURPOSE,
    STATS_PURPOSE,
)

from crypto.oprf import hash_to_group
from node.demo.agreements import STATS_DIMENSIONS

_DATASETS = (
    "encounters",
    "matrices",
    "travel_documents",
    "document_alerts",
    "persons_of_interest",
    "identities",
    "biometric_templates",
    "consular_directory",
    "nonexistent",
)
_ATTRIBUTES = (
    "first_seen_quarter",
    "last_seen_quarter",
    "event_type",
    "nationality",
    "nationality_basis",
    "encounters",
    "document_type",
    "issuing_state",
    "alert_type",
    "reported_quarter",
    "source",
    "reason",
    "since_quarter",
)
_PERIODS = (
    "2023",
    "2023Q3",
    "2023-07",
    "2023Q1..2023Q4",
    "2022..2024",
    "2024Q3",
    "2023Q5",
    "2023-13",
    "0000",
    "9999Q4",
    "2023-07..2023Q1",
    "",
    "2023Q1..2023Q1..2023Q2",
)
_CODES = (
    "HTI",
    "CUB",
    "IND",
    "XXX",
    "XXA",
    "F",
    "M",
    "X",
    "U",
    "encounter",
    "detention",
    "presumed",
    "unknown",
    "Y25T34",
    "_T",
    "health",
    "unaccompanied_minor",
)

#: Field name → words worth trying there (besides random text and the injection strings).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "dataset": _DATASETS,
    "measure": ("persons", "events", "cells"),
    "dimensions": (*STATS_DIMENSIONS, "person_id", "_T"),
    "dimension": (*STATS_DIMENSIONS, "person_id"),
    "values": _CODES,
    "period": _PERIODS,
    "matrix": ("M01", "M02", "M05", "M08", "M09", "m01", ""),
    "matrices": ("M01", "M03", "M08", "M99"),
    "attributes": _ATTRIBUTES,
    "agreement_id": (AGREEMENT_ID, "HOSTILE-PAN-HND-QUOTA", "", "../../etc/passwd"),
    "case_reference": ("CASE-1", "", "x" * 201),
    "hit_reference": ("0" * 40, "f" * 40, "0" * 39),
    "followup_id": ("0" * 32, "", "x"),
    "kind": ("reminder", "publication", "notice", "spam"),
    "language": ("es", "en", "fr"),
    "origin_country": ("HTI", "hti", "XX", "CUB1"),
    "helper": ("HLP", "CRM", "PAN", ""),
    "requester": ("CRM", "PAN"),
    "members": ("PAN", "CRI", "HND", "ZZZ"),
    "round_id": ("R-00000001", "short", "R" * 81),
    "layout_sha256": ("0" * 64, "zz"),
    "key_id": ("0" * 16, ""),
}
PURPOSES = (STATS_PURPOSE, MATCH_PURPOSE, DIRECTORY_PURPOSE, "regional_brief", "")
AGREEMENTS = (AGREEMENT_ID, "", "HOSTILE-PAN-HND-QUOTA")
_INJECTED = tuple(INJECTIONS.values())
_ELEMENTS = tuple(hash_to_group(bytes([i])) for i in range(4))
_BOUNDS = {
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
}
_UNICODE = "aZ09 -_.:/ñé漢🙂\u202e\u0301\x00\n\t'\"=+@%\\"


def text(rng: random.Random, name: str = "") -> str:
    """A vocabulary word for ``name``, an injection string, or random Unicode."""
    roll = rng.random()
    words = VOCABULARY.get(name, ())
    if words and roll < 0.5:
        return rng.choice(words)
    if roll < 0.65:
        return rng.choice(_INJECTED)
    return "".join(rng.choice(_UNICODE) for _ in range(rng.randrange(0, 24)))


def binary(rng: random.Random, name: str = "") -> bytes:
    roll = rng.random()
    if name == "blinded_elements" and roll < 0.5:
        return rng.choice(_ELEMENTS)
    if name == "codes" and roll < 0.5:
        return os.urandom(rng.choice((32, 64, 128)))
    if name == "output" and roll < 0.5:
        return rng.randbytes(64)
    return rng.randbytes(rng.choice((0, 1, 31, 32, 33, 64, rng.randrange(0, 200))))


def _scalar(rng: random.Random, f: FieldDescriptor) -> Any:
    if f.type == FieldDescriptor.TYPE_STRING:
        return text(rng, f.name)
    if f.type == FieldDescriptor.TYPE_BYTES:
        return binary(rng, f.name)
    if f.type == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if f.type == FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        return rng.choice([v.number for v in f.enum_type.values] + [99])
    if f.type in _BOUNDS:
        low, high = _BOUNDS[f.type]
        choices = (0, 1, 2, 3, 512, 16384, 65536, high, max(low, -1), rng.randint(low, high))
        return rng.choice(choices)
    raise NotImplementedError(f"no generator for field {f.full_name} (type {f.type})")


def typed(rng: random.Random, baseline: Message, depth: int = 2) -> Message:
    """A copy of ``baseline`` with some fields cleared or replaced by generated values."""
    out = type(baseline)()
    out.CopyFrom(baseline)
    _mutate_fields(rng, out, out.DESCRIPTOR, depth)
    return out


def _mutate_fields(rng: random.Random, target: Any, descriptor: Any, depth: int) -> None:
    for f in descriptor.fields:
        roll = rng.random()
        if roll < 0.65:
            continue  # keep the baseline value
        if roll < 0.72:
            target.ClearField(f.name)
            continue
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0:
                continue
            if f.is_repeated:
                container = getattr(target, f.name)
                for _ in range(rng.randrange(0, 3)):
                    _mutate_fields(rng, container.add(), f.message_type, depth - 1)
            else:
                child = getattr(target, f.name)
                child.SetInParent()
                _mutate_fields(rng, child, f.message_type, depth - 1)
            continue
        if f.is_repeated:
            values = getattr(target, f.name)
            if rng.random() < 0.5:
                target.ClearField(f.name)
            values.extend(_scalar(rng, f) for _ in range(rng.randrange(0, 6)))
        else:
            setattr(target, f.name, _scalar(rng, f))


def mutated(rng: random.Random, data: bytes) -> bytes:
    """Byte-level mutations of a valid encoding: flips, inserts, deletions, splices, cuts."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        kind = rng.randrange(5)
        at = rng.randrange(0, len(out) + 1)
        if kind == 0 and out:
            at = min(at, len(out) - 1)
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[at:at] = rng.randbytes(rng.randrange(1, 9))
        elif kind == 2:
            del out[at : at + rng.randrange(1, 9)]
        elif kind == 3:
            out[at:at] = out[: rng.randrange(0, len(out) + 1)]
        else:
            del out[at:]
    return bytes(out)


def body(rng: random.Random, baseline: Message) -> bytes:
    """One fuzzed body: random bytes, a mutated baseline encoding, or a typed variant."""
    roll = rng.random()
    if roll < 0.2:
        return rng.randbytes(rng.randrange(0, 300))
    if roll < 0.45:
        return mutated(rng, baseline.SerializeToString())
    return typed(rng, baseline).SerializeToString()


def header_text(rng: random.Random, words: tuple[str, ...], keep: str) -> str:
    """A purpose or agreement id: mostly the row's own, else a known word or generated text."""
    roll = rng.random()
    if roll < 0.7:
        return keep
    if roll < 0.85:
        return rng.choice(words)
    return text(rng)

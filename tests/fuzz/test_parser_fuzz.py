"""Fuzz every parser that reads bytes from outside the node: each raises its own error or parses.

The parsers and the one error each may raise (anything else — ``KeyError``, ``TypeError``,
``ValueError``, ``IndexError`` … — is a bug, since the caller only handles the documented one):

=======================================  ==========================================
``node.records.icao.parse_mrz``          :class:`~node.records.icao.MrzError`
``policies.signatures.load_signed_...``  :class:`~policies.errors.PolicyError`
``node.trust.directory.parse_dir...``    :class:`~node.trust.member.DirectoryError`
``crypto.envelope.decode_header``        :class:`~crypto.errors.EncodingError`
``crypto.filter.decode_filter/_delta``   :class:`~crypto.errors.EncodingError`
``FilterManifest.from_json``             :class:`~crypto.errors.EncodingError`
``node.audit.evidence.verify_evidence``  :class:`~node.errors.AuditIntegrityError`
=======================================  ==========================================

Inputs are random, and mutations of a valid document (a leaf replaced, a key dropped or
added, bytes flipped), which reach far deeper than random text. The importers are fuzzed in
``test_ingest_fuzz.py``. Budget: ``ENLACE_FUZZ_EXAMPLES`` per parser (CI: a fast slice).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hostile.toolkit import hostile_agreement
from hypothesis import given
from hypothesis import strategies as st

from crypto.envelope import Header, decode_header, format_time, sha256_hex
from crypto.errors import CryptoError, EncodingError
from crypto.filter import Filter, decode_delta, decode_filter, diff, encode_delta, encode_filter
from crypto.match_keys import FilterManifest, describe_filter
from fuzz.harness import fuzz_examples, fuzz_settings
from fuzz.strategies import mutated
from node.audit import verify_chain
from node.audit.evidence import build_evidence, verify_evidence
from node.demo.federation import create_federation
from node.errors import AuditIntegrityError
from node.records.icao import MrzError, make_td3, parse_mrz
from node.runtime import open_runtime
from node.server.jobs import write_checkpoint
from node.trust.directory import parse_directory_json, verify_root
from node.trust.member import DirectoryError
from policies.errors import PolicyError
from policies.signatures import SignedAgreement, dump_signed_agreement, load_signed_agreement

MRZ_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["", "Z", "2024-01-01T00:00:00Z", "0" * 64]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Documents:
    """Valid documents the mutations start from."""

    directory: bytes
    agreement: str
    header: bytes
    evidence: dict[str, Any]
    resolve: Callable[[str, str, dt.datetime], bytes]
    now: dt.datetime


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Documents]:
    """A two-member federation: its directory, one audited exchange exported as evidence."""
    from hostile.toolkit import in_process

    from enlace.v1 import node_pb2

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fed = create_federation(tmp_path_factory.mktemp("parsers"), ("PAN", "CRI"), now)
    pan, cri = (open_runtime(fed.homes[c]) for c in ("PAN", "CRI"))
    try:
        pipeline, methods = in_process(pan)
        ping = "/enlace.v1.NodeService/Ping"
        from node.client import PeerClient

        with PeerClient(cri, "PAN") as client:
            sealed = client.seal_request(
                ping, node_pb2.PingRequest(payload=b"x").SerializeToString()
            )
        outcome = pipeline.handle(methods[ping], sealed, cri.home.keys.load_tls()[1])
        assert outcome.error is None
        write_checkpoint(pan)
        entries = list(pan.store.iter_audit())
        verify_chain(entries)
        checkpoint = pan.store.checkpoints()[-1]
        evidence = build_evidence(entries[-1], entries[-1:], checkpoint)
        directory = fed.directory

        def resolve(country: str, key_id: str, at: dt.datetime) -> bytes:
            return directory.signing_key(country, key_id, at)

        verify_evidence(evidence, resolve)
        agreement = dump_signed_agreement(SignedAgreement(hostile_agreement("PAN", "CRI", now)))
        yield Documents(
            directory.to_json().encode(), agreement, sealed.header, evidence, resolve, now
        )
    finally:
        pan.close()
        cri.close()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out += _paths(value, (*prefix, index))
    return out


def mutate_tree(data: st.DataObject, tree: Any) -> Any:
    """A deep copy of ``tree`` with one node replaced, removed, or given an extra key."""
    copy = json.loads(json.dumps(tree))
    path = data.draw(st.sampled_from(_paths(copy)))
    if not path:
        return data.draw(JSON_VALUES)
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "remove", "extra"]))
    if action == "replace":
        parent[path[-1]] = data.draw(JSON_VALUES)
    elif action == "remove":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8))] = data.draw(JSON_VALUES)
    return copy


def raises_only(
    error: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], Any]
) -> Any:
    try:
        return call()
    except error:
        return None


SETTINGS = fuzz_settings(fuzz_examples())


@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=100),
        st.lists(
            st.text(alphabet=MRZ_ALPHABET, min_size=44, max_size=44), min_size=2, max_size=2
        ).map("\n".join),
        st.lists(
            st.text(alphabet=MRZ_ALPHABET, min_size=30, max_size=30), min_size=3, max_size=3
        ).map("\n".join),
    ),
    year=st.none() | st.integers(1900, 2100),
)
def test_parse_mrz_raises_only_mrz_error(text: str, year: int | None) -> None:
    raises_only(MrzError, lambda: parse_mrz(text, reference_year=year))


@SETTINGS
@given(data=st.data())
def test_mutated_mrz_raises_only_mrz_error(data: st.DataObject) -> None:
    mrz = make_td3(
        issuing_state="HTI",
        surname="DUPONT",
        given_names="MARIE ANGE",
        document_number="L898902C3",
        nationality="HTI",
        birth_date="1990-01-31",
        sex="F",
        expiry_date="2030-12-31",
    )
    chars = list(mrz)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(chars) - 1))
        chars[at] = data.draw(st.sampled_from(MRZ_ALPHABET + "\n a/ñ"))
    raises_only(MrzError, lambda: parse_mrz("".join(chars), reference_year=2026))


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(["tree-yaml", "tree-json", "bytes", "random"]))
def test_agreements_raise_only_policy_errors(
    documents: Documents, data: st.DataObject, kind: str
) -> None:
    valid = documents.agreement
    if kind == "random":
        text: str | bytes = data.draw(st.text(max_size=300) | st.binary(max_size=300))
    elif kind == "bytes":
        text = mutated(data.draw(st.randoms(use_true_random=False)), valid.encode())
    else:
        tree = mutate_tree(data, yaml.safe_load(valid))
        text = yaml.safe_dump(tree) if kind == "tree-yaml" else json.dumps(tree)
    raises_only(PolicyError, lambda: load_signed_agreement(text))


@pytest.mark.parametrize("text", [b"?\n\n-", "? [a, b]\n: 1\n", "? {a: 1}\n: 2\n"])
def test_an_agreement_with_a_collection_as_a_key_is_a_policy_error(text: str | bytes) -> None:
    with pytest.raises(PolicyError):
        load_signed_agreement(text)


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(["tree", "bytes", "random"]))
def test_directories_raise_only_directory_errors(
    documents: Documents, data: st.DataObject, kind: str
) -> None:
    if kind == "random":
        raw = data.draw(st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
    elif kind == "bytes":
        raw = mutated(data.draw(st.randoms(use_true_random=False)), documents.directory)
    else:
        raw = json.dumps(mutate_tree(data, json.loads(documents.directory))).encode()
    directory = raises_only(DirectoryError, lambda: parse_directory_json(raw))
    if directory is not None:  # what parses must still be verified, with the same errors
        raises_only(DirectoryError, lambda: verify_root(directory, documents.now))


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(["tree", "bytes", "random"]))
def test_headers_raise_only_encoding_errors(
    documents: Documents, data: st.DataObject, kind: str
) -> None:
    if kind == "random":
        raw = data.draw(st.binary(max_size=200))
    elif kind == "bytes":
        raw = mutated(data.draw(st.randoms(use_true_random=False)), documents.header)
    else:
        raw = json.dumps(
            mutate_tree(data, json.loads(documents.header)), sort_keys=True, separators=(",", ":")
        ).encode()
    raises_only(EncodingError, lambda: decode_header(raw))


def _filters() -> tuple[bytes, bytes]:
    old = Filter.from_outputs([os.urandom(64) for _ in range(50)], 8, version=1)
    new = Filter.from_outputs([os.urandom(64) for _ in range(60)], 8, version=2)
    return encode_filter(new), encode_delta(diff(old, new))


def _manifest(encoded: bytes) -> bytes:
    return describe_filter(
        encoded,
        holder="PAN",
        dataset="travel_documents",
        epoch=1,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        normalisation={"keys": "1"},
    ).to_json()


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["filter", "delta", "manifest"]))
def test_filters_and_manifests_from_a_holder_raise_only_encoding_errors(
    data: st.DataObject, which: str
) -> None:
    """What a hostile holder could stream to a querier (SyncFilter): the querier parses it."""
    rng = data.draw(st.randoms(use_true_random=False))
    full, delta = _filters()
    if which == "manifest":
        valid = _manifest(full)
        kind = data.draw(st.sampled_from(["bytes", "tree", "random"]))
        if kind == "random":
            raw = data.draw(st.binary(max_size=200))
        elif kind == "bytes":
            raw = mutated(rng, valid)
        else:
            raw = json.dumps(
                mutate_tree(data, json.loads(valid)), sort_keys=True, separators=(",", ":")
            ).encode()
        raises_only(EncodingError, lambda: FilterManifest.from_json(raw))
        return
    raw = mutated(rng, full if which == "filter" else delta)
    decoder = decode_filter if which == "filter" else decode_delta
    raises_only(CryptoError, lambda: decoder(raw))


@SETTINGS
@given(data=st.data())
def test_evidence_raises_only_audit_integrity_errors(
    documents: Documents, data: st.DataObject
) -> None:
    tree = mutate_tree(data, documents.evidence)
    raises_only(AuditIntegrityError, lambda: verify_evidence(tree, documents.resolve))


def test_the_valid_documents_parse(documents: Documents) -> None:
    """The mutations start from documents that are themselves accepted."""
    assert load_signed_agreement(documents.agreement).agreement.id
    assert parse_directory_json(documents.directory).version >= 1
    assert decode_header(documents.header).kind == "request"
    full, delta = _filters()
    assert len(decode_filter(full)) == 60 and decode_delta(delta)
    assert FilterManifest.from_json(_manifest(full)).count == 60
    verify_evidence(documents.evidence, documents.resolve)
    header = Header(
        "request", "/m", "PAN", "CRI", format_time(documents.now), "0" * 32, "k", sha256_hex(b"")
    )
    assert decode_header(header.encode()) == header

"""SIGKILL mid-write: audit checkpoints, a serving node under load, a filter build.

(A SIGKILL mid-import is ``tests/e2e/test_ingest_kill.py``.) Each test kills a real process
several times at varying moments, then opens the same database and checks what DESIGN §2
promises: the store is consistent (the audit chain and its signed checkpoints verify, the
head row matches the chain; a published filter matches its entries and its signed manifest),
nothing acknowledged is lost, and the work resumes. Both backends; slow (several seconds).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from crypto.match_keys import SignedManifest, verify_filter, verify_manifest
from enlace.v1 import node_pb2
from faults.support import Output, cli, cli_json, start
from node.cli.audit_cmd import verify_log
from node.client import PeerClient
from node.demo.federation import LocalFederation, create_federation
from node.demo.processes import NodeProcess
from node.errors import PeerError
from node.home import NodeHome
from node.ingest.pipeline import ingest
from node.matching.filters import Holder, filter_of
from node.matching.sources import MATCH_DATASETS
from node.records.generate import generate
from node.runtime import NodeRuntime, open_runtime

PING = "/enlace.v1.NodeService/Ping"
ROUNDS = 4


def federation(root: Path, urls: Callable[[], str]) -> LocalFederation:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return create_federation(
        root, ("PAN", "CRI"), now, database_urls={c: urls() for c in ("PAN", "CRI", "CRM")}
    )


def check_store(runtime: NodeRuntime) -> dict[int, str]:
    """Chain, checkpoints and head verify (as `enlace audit verify` does); seq → entry hash."""
    verify_log(runtime)
    if runtime.store.backend == "sqlite":
        with runtime.store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    return {e.seq: e.entry_hash for e in runtime.store.iter_audit()}


@pytest.mark.slow
def test_sigkill_during_audit_checkpoints_loses_nothing_acknowledged(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> None:
    home = federation(tmp_path / "fed", database_url_factory).homes["PAN"]
    rng = random.Random(11)
    entries: dict[int, str] = {}
    checkpoints: set[int] = set()
    for _ in range(ROUNDS):
        worker = start(["-m", "faults.worker", "audit", str(home.root)])
        output = Output(worker)
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("checkpoint") for line in lines):
            assert time.monotonic() < deadline, "the worker acknowledged nothing"
            lines += output.read_for(0.1)
        lines += output.read_for(rng.uniform(0.05, 0.6))
        lines += output.kill()
        assert worker.returncode == -signal.SIGKILL
        for line in lines:
            kind, seq, *rest = line.split()
            if kind == "entry":
                entries[int(seq)] = rest[0]
            else:
                checkpoints.add(int(seq))
        runtime = open_runtime(home)
        try:
            stored = check_store(runtime)
            kept = {c.seq for c in runtime.store.checkpoints()}
        finally:
            runtime.close()
        lost = {seq for seq, digest in entries.items() if stored.get(seq) != digest}
        assert not lost, f"acknowledged entries lost or changed: {sorted(lost)[:10]}"
        assert checkpoints <= kept, f"acknowledged checkpoints lost: {checkpoints - kept}"
    # Every round resumed where the previous one was killed: the chain has no gap (an entry
    # committed just before the kill may never have been acknowledged, which is allowed).
    assert sorted(stored) == list(range(1, max(stored) + 1)) and max(entries) <= max(stored)
    assert len(checkpoints) >= ROUNDS


def _load(client: PeerClient, stop: threading.Event, acked: list[str], errors: list[str]) -> None:
    request = node_pb2.PingRequest(payload=b"load")
    while not stop.is_set():
        try:
            reply = client.call(PING, request, node_pb2.PingResponse, timeout=2.0)
            acked.append(reply.request_digest)
        except PeerError as exc:
            errors.append(exc.status_name)
            time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_of_a_serving_node_loses_no_acknowledged_exchange(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> None:
    """Peers call PAN from 4 threads; PAN is SIGKILLed mid-load, restarted, killed again."""
    fed = federation(tmp_path / "fed", database_url_factory)
    pan = NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))
    env = {"ENLACE_AUDIT_CHECKPOINT_EVERY": "1", "ENLACE_AUDIT_CHECKPOINT_SECONDS": "1"}
    cri = open_runtime(fed.homes["CRI"])
    acked: list[str] = []
    rng = random.Random(5)
    try:
        for _ in range(3):
            pan.start(env)
            pan.wait_ready(time.monotonic() + 60)
            stop, errors = threading.Event(), list[str]()
            clients = [PeerClient(cri, "PAN", timeout=2.0) for _ in range(4)]
            threads = [
                threading.Thread(target=_load, args=(c, stop, acked, errors)) for c in clients
            ]
            before = len(acked)
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(2.0, 4.0))
            pan.kill()  # SIGKILL while the calls are in flight
            time.sleep(0.5)
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            for client in clients:
                client.close()
            assert len(acked) > before + 20, "the load did not run"
            assert set(errors) <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, errors
            verified = cli_json("audit", "verify", "--home", str(fed.homes["PAN"].root))
            assert verified["status"] == "ok"
            runtime = open_runtime(fed.homes["PAN"])
            try:
                digests = {e.record.request_digest for e in runtime.store.iter_audit()}
            finally:
                runtime.close()
            missing = set(acked) - digests
            assert not missing, f"{len(missing)} acknowledged exchanges are not in PAN's log"
        # And it serves again after the last kill.
        pan.start(env)
        pan.wait_ready(time.monotonic() + 60)
        with PeerClient(cri, "PAN") as client:
            client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse)
    finally:
        pan.stop()
        cri.close()


def _published_filters_are_consistent(home: NodeHome) -> dict[str, int]:
    """Each dataset's newest filter verifies against its signed manifest and is the filter of
    the entries the store holds for it; returns dataset → newest version."""
    runtime = open_runtime(home)
    try:
        holder = Holder(runtime.store, runtime.home, "PAN", runtime.signing_key)
        state = holder.state()
        versions = {}
        for dataset in MATCH_DATASETS:
            published = holder.published(dataset, state)
            if published is None:
                continue
            signed = SignedManifest(published.manifest, published.signature, published.key_id)
            manifest = verify_manifest(
                signed, runtime.signing_key.public_key, holder="PAN", dataset=dataset
            )
            filt = verify_filter(manifest, published.encoded)
            entries = runtime.store.matching.prefixes(dataset, state.epoch)
            assert filter_of(entries, published.version) == filt, f"{dataset}: filter ≠ entries"
            versions[dataset] = published.version
        return versions
    finally:
        runtime.close()


@pytest.mark.slow
def test_sigkill_during_a_filter_build_leaves_published_filters_consistent(
    tmp_path: Path, database_url_factory: Callable[[], str]
) -> None:
    fed = federation(tmp_path / "fed", database_url_factory)
    home = fed.homes["PAN"]
    generate("PAN", 4000, 9, tmp_path / "data")
    runtime = open_runtime(home)
    now = dt.datetime.now(dt.UTC)
    for dataset in ("encounters", "travel_documents", "document_alerts", "persons_of_interest"):
        ingest(runtime.store, dataset, [tmp_path / "data" / f"{dataset}.csv"], now=now)
    Holder(runtime.store, runtime.home, "PAN", runtime.signing_key).update(now)
    runtime.close()
    acknowledged = _published_filters_are_consistent(home)
    assert set(acknowledged) == set(MATCH_DATASETS)
    for delay in (0.5, 1.5, 3.0, 4.5):
        build = start(["-m", "node.cli.main", "match", "rebuild", "--home", str(home.root)])
        time.sleep(delay)
        finished = build.poll() is not None
        Output(build).kill()
        versions = _published_filters_are_consistent(home)
        assert all(versions[d] >= v for d, v in acknowledged.items()), (versions, acknowledged)
        if finished:  # the build completed before the kill: all of it is acknowledged
            acknowledged = versions
    done = cli("match", "rebuild", "--home", str(home.root))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    final = _published_filters_are_consistent(home)
    assert all(final[d] > v for d, v in acknowledged.items())

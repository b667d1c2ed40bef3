"""The holder's per-peer galleries on both backends: persistence, incremental updates after
imports, corrections, rotation, and single-use hit references (no network involved)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from bio_support import (
    generated,
    load,
    read_rows,
    recapture,
    template_row,
    vectors,
    write_templates,
)

from crypto.biohash import DEFAULT_BITS, protect
from node.biometrics.holder import GalleryHolder, reference_digest
from node.ingest.pipeline import ingest
from node.runtime import NodeRuntime
from node.store.biometric_store import BITS_STATE, GalleryState, HitRecord


@pytest.fixture
def pan(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    live = live_federation_factory()
    files = generated(tmp_path_factory.getbasetemp(), "PAN")
    load(live.runtimes["PAN"], files, live.clocks["PAN"].now())
    live.files = files  # type: ignore[attr-defined]
    return live


def _holder(runtime: NodeRuntime) -> GalleryHolder:
    return GalleryHolder(runtime.store, runtime.home, runtime.config.country, runtime.directory)


def _found(runtime: NodeRuntime, holder: GalleryHolder, probe: np.ndarray, now: Any) -> str:
    """The record a probe hits (read at the holder from the stored hit reference)."""
    state = holder.state()
    code = protect(probe, holder.key_for("CRI", state, now))
    answer = holder.search("CRI", code, now, state=state, agreement_id="A")[0]
    assert answer.band != "no-hit", answer
    hit = runtime.store.biometrics.hit(reference_digest(answer.reference))
    assert hit is not None and hit.peer == "CRI" and answer.reference != hit.record_id
    return hit.record_id


def test_a_gallery_is_persisted_and_reloaded_without_projecting_again(pan: Any) -> None:
    runtime, now = pan.runtimes["PAN"], pan.clocks["PAN"].now()
    rows = read_rows(pan.files / "biometric_templates.csv")
    first = _holder(runtime).refresh("CRI", now)
    assert (first.rebuilt, first.projected, first.codes) == (True, len(rows), len(rows))
    key = _holder(runtime).key_for("CRI", _holder(runtime).state(), now)
    ids, joined = runtime.store.biometrics.load_codes("CRI", 1)
    stored = dict(zip(ids, np.frombuffer(joined, np.uint8).reshape(len(ids), -1), strict=True))
    expected = protect(vectors(rows), key)
    assert all(
        np.array_equal(stored[r["record_id"]], c) for r, c in zip(rows, expected, strict=True)
    )
    state = runtime.store.biometrics.gallery_state("CRI")
    assert state is not None and (state.epoch, state.key_id, state.codes) == (
        1,
        key.key_id,
        len(rows),
    )
    fresh = _holder(runtime)  # a restarted node: loads the stored codes
    again = fresh.refresh("CRI", now)
    assert (again.rebuilt, again.projected, again.removed, again.codes) == (False, 0, 0, len(rows))
    assert _found(runtime, fresh, recapture(vectors(rows[7:8]), 1), now) == rows[7]["record_id"]
    assert runtime.store.biometrics.gallery_state("HND") is None  # built per peer, on demand


def test_imports_add_only_new_codes_and_corrections_replace_theirs(pan: Any, tmp_path: Any) -> None:
    runtime, now = pan.runtimes["PAN"], pan.clocks["PAN"].now()
    rows = read_rows(pan.files / "biometric_templates.csv")
    holder = _holder(runtime)
    holder.refresh("CRI", now)
    faces = np.random.default_rng(4).standard_normal((5, 128))
    new = [template_row(f"PANBNEW{i}", f"PANPNEW{i}", faces[i]) for i in range(5)]
    ingest(
        runtime.store,
        "biometric_templates",
        [write_templates(tmp_path / "a.csv", new[:3])],
        now=now,
    )
    added = holder.refresh("CRI", now)
    assert (added.rebuilt, added.projected, added.removed, added.codes) == (
        False,
        3,
        0,
        len(rows) + 3,
    )
    assert _found(runtime, holder, recapture(faces[1:2], 2), now) == "PANBNEW1"
    # No explicit refresh: the next search notices the import and adds what it brought.
    later = now + dt.timedelta(minutes=1)
    ingest(
        runtime.store,
        "biometric_templates",
        [write_templates(tmp_path / "b.csv", new[3:])],
        now=later,
    )
    assert _found(runtime, holder, recapture(faces[4:5], 3), later) == "PANBNEW4"
    assert runtime.store.biometrics.gallery_state("CRI").codes == len(rows) + 5  # type: ignore[union-attr]
    # A corrected template (same record, another face) replaces its code.
    other = np.random.default_rng(5).standard_normal(128)
    fixed = [template_row("PANBNEW0", "PANPNEW0", other)]
    ingest(
        runtime.store,
        "biometric_templates",
        [write_templates(tmp_path / "c.csv", fixed)],
        now=later + dt.timedelta(minutes=1),
        replace=True,
    )
    corrected = holder.refresh("CRI", later + dt.timedelta(minutes=1))
    assert (corrected.projected, corrected.removed, corrected.codes) == (1, 1, len(rows) + 5)
    assert _found(runtime, holder, recapture(other[None, :], 6), later) == "PANBNEW0"


def test_rotation_forgets_the_old_epoch_and_rebuilds_under_new_keys(pan: Any) -> None:
    runtime, now = pan.runtimes["PAN"], pan.clocks["PAN"].now()
    holder = _holder(runtime)
    holder.refresh("CRI", now)
    holder.refresh("HND", now)
    old_ids, old_codes = runtime.store.biometrics.load_codes("CRI", 1)
    state, reports = holder.rotate(now, ["CRI"])
    assert state.epoch == 2 and [r.peer for r in reports] == ["CRI"]
    assert runtime.store.biometrics.load_codes("CRI", 1) == ([], b"")
    assert runtime.store.biometrics.load_codes("HND", 1) == ([], b"")
    assert [g.peer for g in runtime.store.biometrics.gallery_states()] == ["CRI"]
    new_ids, new_codes = runtime.store.biometrics.load_codes("CRI", 2)
    assert new_ids == old_ids
    differing = np.unpackbits(
        np.frombuffer(old_codes, np.uint8) ^ np.frombuffer(new_codes, np.uint8)
    ).mean()
    assert 0.45 < differing < 0.55  # unlinkable across epochs


def test_a_format_1_gallery_is_migrated_by_rebuilding_it(pan: Any) -> None:
    """A node upgraded from code format 1: its stored 512-bit codes under the old key and its
    stored code length are replaced by format-2 codes of the default length on first use."""
    runtime, now = pan.runtimes["PAN"], pan.clocks["PAN"].now()
    rows = read_rows(pan.files / "biometric_templates.csv")
    old_state = GalleryState("CRI", 1, "0123456789abcdef", 512, 128, "old", 0, now)
    old_codes = [(r["record_id"], "h", bytes(64)) for r in rows[:5]]
    runtime.store.biometrics.apply_changes(old_state, [], old_codes, replace=True)
    runtime.store.put_state(BITS_STATE, "512", now)
    holder = _holder(runtime)
    assert holder.state().bits == DEFAULT_BITS
    report = holder.refresh("CRI", now)
    assert report.rebuilt and report.projected == report.codes == len(rows)
    ids, joined = runtime.store.biometrics.load_codes("CRI", 1)
    assert sorted(ids) == sorted(r["record_id"] for r in rows)
    assert len(joined) == len(rows) * DEFAULT_BITS // 8
    stored = runtime.store.biometrics.gallery_state("CRI")
    assert stored is not None and (stored.bits, stored.key_id) == (DEFAULT_BITS, report.key_id)
    assert _found(runtime, holder, recapture(vectors(rows[3:4]), 2), now) == rows[3]["record_id"]


def test_hit_references_are_single_use_for_their_peer_and_expire(pan: Any) -> None:
    store, now = pan.runtimes["PAN"].store, pan.clocks["PAN"].now()
    hour = dt.timedelta(hours=1)
    live, stale = reference_digest("a" * 40), reference_digest("b" * 40)
    store.biometrics.add_hits(
        [
            HitRecord(live, "CRI", 1, "PANB1", "strong", "A", now, now + hour),
            HitRecord(stale, "CRI", 1, "PANB2", "probable", "A", now - 2 * hour, now - hour),
        ]
    )
    assert store.biometrics.redeem_hit(live, "HND", now) is None  # not HND's to redeem
    assert store.biometrics.redeem_hit(stale, "CRI", now) is None  # expired
    redeemed = store.biometrics.redeem_hit(live, "CRI", now)
    assert redeemed is not None and redeemed.record_id == "PANB1" and redeemed.redeemed_at == now
    assert store.biometrics.redeem_hit(live, "CRI", now) is None  # used
    assert store.biometrics.purge_hits(now) == 1
    assert store.biometrics.hit(stale) is None and store.biometrics.hit(live) is not None

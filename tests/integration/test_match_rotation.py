"""Key rotation never leaves the holder in a state where a true hit silently reads "no hit".

The holder's key for Evaluate is derived from (epoch, mode), and its filter from the entries of
one epoch; a reader that saw the new mode with the old epoch (or the new epoch before its
filters exist) would evaluate under a key no published filter was made with. These tests
interrupt a rotation inside its database transaction, and observe the holder's state after
every statement a rotation executes, on a real database of either backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from match_support import (
    holder,
    read_csv,
    serving_holder,
)
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from crypto.filter import decode_filter
from node.errors import StoreError
from node.matching.client import MatchClient
from node.matching.filters import Holder, KeyState
from node.matching.keys import document_input
from node.matching.sources import document_query
from node.store import Store

PURPOSE = "identity_verification"
DATASET = "travel_documents"


@pytest.fixture
def fed(
    live_federation_factory: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return serving_holder(live_federation_factory(), tmp_path_factory.getbasetemp(), 300, 12)


def _document(fed: Any) -> dict[str, str]:
    files: Path = fed.files
    return read_csv(files / "travel_documents.csv")[0]


def _statuses(fed: Any, client: MatchClient) -> list[str]:
    doc = _document(fed)
    query = [document_query(doc["document_number"], doc["issuing_state"])]
    report = client.run(query, [DATASET], purpose=PURPOSE, peers=["PAN"])
    return [o.status for o in report.outcomes if o.peer == "PAN"]


@contextmanager
def _after_each_statement(store: Store, observe: Callable[[str], None]) -> Iterator[None]:
    """Call ``observe`` after every statement on ``store``'s engine (not its own reads)."""
    busy = [False]

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not busy[0]:
            busy[0] = True
            try:
                observe(statement)
            finally:
                busy[0] = False

    event.listen(store.engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(store.engine, "after_cursor_execute", after)


def test_a_rotation_that_fails_mid_write_leaves_the_old_epoch_answering(fed: Any) -> None:
    pan = holder(fed.runtimes["PAN"])
    store = fed.runtimes["PAN"].store
    now = fed.clocks["PAN"].now()
    writes: list[str] = []

    def second_state_write_fails(
        _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any
    ) -> None:
        if "node_state" in statement and "match." in str(params):
            writes.append(statement)
            if len(writes) == 2:  # the disk fills up between the epoch and the mode
                raise OperationalError(statement, params, OSError("database or disk is full"))

    with MatchClient(fed.runtimes["CRI"]) as client:
        assert _statuses(fed, client) == ["hit"]
        event.listen(store.engine, "before_cursor_execute", second_state_write_fails)
        try:
            with pytest.raises(StoreError, match="disk is full"):
                pan.rotate(now, mode="voprf")
        finally:
            event.remove(store.engine, "before_cursor_execute", second_state_write_fails)
        assert pan.state() == KeyState(1, "oprf")
        assert _statuses(fed, client) == ["hit"]

        pan.rotate(now, mode="voprf")  # tried again: the new epoch is built afresh
        assert pan.state() == KeyState(2, "voprf")
        assert _statuses(fed, client) == ["hit"]  # the client resyncs on its own
    assert {f.epoch for f in [pan.published(DATASET, pan.state())] if f} == {2}
    assert store.matching.latest_versions(1) == {}


def _consistent(pan: Holder, allowed: set[KeyState], doc: dict[str, str]) -> KeyState:
    """What an Evaluate would use right now, checked: an allowed (epoch, mode), a published
    filter of that epoch, and the key of that (epoch, mode) finding a stored document in it."""
    state = pan.state()
    assert state in allowed
    published = pan.published(DATASET, state)
    assert published is not None, f"epoch {state.epoch} is current without a filter"
    output = pan.key(DATASET, state).evaluate(
        document_input(doc["document_number"], doc["issuing_state"]), state.oprf_mode
    )
    assert decode_filter(published.encoded).contains(output), f"{state} misses a true hit"
    return state


def test_a_reader_during_a_rotation_never_sees_a_mixed_state(fed: Any) -> None:
    pan = holder(fed.runtimes["PAN"])
    store = fed.runtimes["PAN"].store
    doc = _document(fed)
    before, after = KeyState(1, "oprf"), KeyState(2, "voprf")
    seen: list[KeyState] = []
    statements: list[str] = []

    def observe(statement: str) -> None:
        statements.append(statement)
        seen.append(_consistent(pan, {before, after}, doc))

    with _after_each_statement(store, observe):
        pan.rotate(fed.clocks["PAN"].now(), mode="voprf")
    assert _consistent(pan, {after}, doc) == after
    # The observations covered the whole rotation: the build, the switch and the clean-up.
    assert len(statements) > 10 and seen[0] == before and seen[-1] == after
    assert seen == sorted(seen, key=lambda s: s.epoch)  # one switch, never back

"""A database failure while a follow-up is written is a :class:`StoreError`, on both backends.

Why: the ``--case`` commands show a node error as that follow-up's failure and go on with the
others' (``node/cli/followups_view.py``), while anything else is treated as a bug and raised.
A raw SQLAlchemy error from the store would have stopped the whole run with a traceback.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from node.errors import StoreError
from node.store.followup_store import FollowUpRecord
from node.store.store import open_store

NOW = dt.datetime(2027, 3, 14, 9, 30, tzinfo=dt.UTC)


def _record() -> FollowUpRecord:
    return FollowUpRecord(
        "3f2b9c4e8a1d4f6b9e0c7a5d2b1e8f40", "outbound", "PAN", "travel_documents", 3, "0" * 64,
        "CRI-2027-000123", "identity_verification", "PAN-CRI-2027-01", ("first_seen_quarter",),
        (), "pending", NOW,
    )  # fmt: skip


def test_a_database_failure_writing_a_follow_up_is_a_store_error(database_url: str) -> None:
    store = open_store(database_url)
    try:
        store.matching.add_followup(_record())
        assert store.matching.followup(_record().followup_id, "outbound") is not None
        with pytest.raises(StoreError, match="follow-up not recorded"):
            store.matching.add_followup(_record())  # the same id twice: the key refuses it
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE match_followups"))
        with pytest.raises(StoreError, match="follow-up not updated") as caught:
            store.matching.update_followup(
                _record().followup_id, "outbound", expect=("pending",), status="released"
            )
        assert "UPDATE" not in str(caught.value)  # the database's words, not its statement
        assert "schema" in caught.value.hint
        with pytest.raises(StoreError, match="follow-up not read"):
            store.matching.followup(_record().followup_id, "outbound")
        with pytest.raises(StoreError, match="follow-ups not read"):
            store.matching.followups(direction="outbound")
    finally:
        store.close()

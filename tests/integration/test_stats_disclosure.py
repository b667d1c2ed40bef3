"""Attacks on the statistics a node releases, mounted on real counts on both backends.

Each test states an attack a peer (or colluding peers) can try with the answers it may ask
for, and checks that what the node releases defeats it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enlace.v1 import stats_pb2
from node.stats.answer import StatsAnswer, answer
from node.stats.export import export_table
from node.stats.service import to_proto
from tests.integration.stats_support import NOW, Holder, query


@pytest.fixture
def holder(tmp_path: Path, database_url_factory: Callable[[], str]) -> Iterator[Holder]:
    made = Holder(tmp_path / "fed", database_url_factory)
    yield made
    made.close()


def _published(result: StatsAnswer) -> dict[tuple[str, ...], int]:
    return {c.key: c.value for c in result.cells if c.value is not None}


def test_no_exact_record_count_reaches_a_peer(holder: Holder) -> None:
    """Attack: a suppressed cell = the exact number of records read − the published cells."""
    holder.add(20, nationality="HTI")
    holder.add(3, nationality="AGO")
    holder.add(12, nationality="CUB")
    for q in (
        query(["nationality"], measure="events"),
        query(["nationality"], filters={"nationality": ["AGO"]}),  # every cell suppressed
    ):
        result = answer(holder.runtime, q, None, now=NOW)
        assert result.records_considered in (35, 3)  # the holder's operator still knows it
        response = to_proto("PAN", result, None)
        assert "records_considered" not in stats_pb2.Coverage.DESCRIPTOR.fields_by_name
        sent = [value for _, value in response.coverage.ListFields()]
        assert result.records_considered not in sent
        exported = json.loads(export_table(result, "json", holder="PAN"))
        assert "records_considered" not in json.dumps(exported)
        assert ("AGO",) not in _published(result)

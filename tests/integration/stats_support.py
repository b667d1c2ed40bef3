"""A holder node whose encounters a test writes row by row, to build exact small populations.

Why: disclosure-control tests need to know every count (a cell of 3, one person with 30
events); generated data cannot promise that. The rows go through the real store schema on
the backend under test, and the counting, protection and answers are the real ones.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path

from node.clock import ManualClock
from node.demo.federation import create_federation
from node.runtime import NodeRuntime, open_runtime
from node.stats.query import StatsQuery, build_query
from node.store.records_schema import encounters, imports

NOW = dt.datetime(2024, 2, 1, 12, tzinfo=dt.UTC)


class Holder:
    """PAN's runtime, with :meth:`add` to insert encounters directly."""

    def __init__(self, root: Path, database_url_factory: Callable[[], str]) -> None:
        urls = {c: database_url_factory() for c in ("PAN", "CRI", "CRM")}
        federation = create_federation(root, ("PAN", "CRI"), NOW, database_urls=urls)
        self.runtime: NodeRuntime = open_runtime(federation.homes["PAN"], ManualClock(NOW))
        self._ids = itertools.count()
        with self.runtime.store.engine.begin() as conn:
            conn.execute(
                imports.insert().values(
                    import_id="imp1", dataset="encounters", file_name="x", file_sha256="0" * 64,
                    file_bytes=1, file_format="csv", rows_read=0, rows_added=0,
                    rows_unchanged=0, rows_replaced=0, rows_rejected=0, started_at=NOW,
                    finished_at=NOW, status="committed", codelists_version="1",
                    normalisation_version="1",
                )
            )  # fmt: skip

    def add(
        self,
        n: int = 1,
        *,
        person: str | None = None,
        nationality: str = "HTI",
        sex: str = "M",
        event_type: str = "encounter",
        date: dt.date = dt.date(2023, 8, 1),
        care: str | None = None,
        vuln: str | None = None,
    ) -> None:
        rows = []
        for _ in range(n):
            i = next(self._ids)
            rows.append(
                dict(
                    record_id=f"r{i}", person_id=person or f"p{i}", event_type=event_type,
                    event_date=date, border_post="X", border_post_regional="PAN-LAJ",
                    nationality=nationality, nationality_basis="documented", sex=sex,
                    age_group="Y25T34", care_provided=care, vulnerabilities=vuln, surname="S",
                    surname_norm="s", content_hash="0" * 64, import_id="imp1", source_row=i,
                    imported_at=NOW,
                )
            )  # fmt: skip
        with self.runtime.store.engine.begin() as conn:
            conn.execute(encounters.insert(), rows)

    def close(self) -> None:
        self.runtime.close()


def query(
    dimensions: list[str],
    *,
    measure: str = "persons",
    margins: bool = False,
    filters: dict[str, list[str]] | None = None,
) -> StatsQuery:
    return build_query(
        dataset="encounters",
        measure=measure,
        dimensions=dimensions,
        period="2023Q3",
        filters=filters or {},
        margins=margins,
    )

"""PostgreSQL: the statistics index carries every column a matrix counts (index-only scans).

Why: a quarter of a national table is a tenth of its rows scattered over all of its pages, so
counting it through ``ix_encounters_stats (event_date, event_type, nationality)`` read nearly
the whole heap (3 GB at 10 million encounters; 3-4 s of the 3 s a matrix may take). With the
columns of the dimensions, filters and the person measure ``INCLUDE``-d, the quarter is a
contiguous range of one index and the heap is not read at all once autovacuum has marked the
pages all-visible (a bulk import is followed by ``VACUUM (ANALYZE)``; see
``node.stats.compute``). Measured at 10M: M01 counting 4.4 s → 1.5 s.

SQLite keeps the three-column index: its imports rebuild indexes after the bulk insert, a wide
index would cost a fifth of the import, and counting 1M encounters already takes well under a
second there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEY = ["event_date", "event_type", "nationality"]
#: Kept in step with ``node.store.records_schema.STATS_INCLUDE``.
INCLUDE = [
    "nationality_basis",
    "sex",
    "age_group",
    "border_post_regional",
    "person_id",
    "care_provided",
    "vulnerabilities",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_encounters_stats", table_name="encounters")
    op.create_index("ix_encounters_stats", "encounters", KEY, postgresql_include=INCLUDE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_encounters_stats", table_name="encounters")
    op.create_index("ix_encounters_stats", "encounters", KEY)

"""``encounter_codes`` becomes a view of the encounters' own code columns instead of a table.

Why: every encounter keeps its care and vulnerability codes ``;``-joined on its row, and
statistics split them there (``node.stats.compute``). The table held the same codes a second
time, one row per code, written in the import's transaction: about an eighth of the import's
time and of the database's size, read by nothing but analysts' ad-hoc SQL. A view with the same
name and columns keeps that SQL working (``JOIN encounter_codes c ON c.record_id = …``) and can
never disagree with the row it is derived from.

The split needs SQLite's JSON functions (built in since 3.38; the node refuses older builds,
``node.store.database``) and, on PostgreSQL, ``string_to_array``. Codes are code-list codes:
letters, digits and ``_`` (a test checks every list), so nothing needs escaping.

Downgrade brings the table back and fills it from the same split.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Encounter column → code list name, as ``encounter_codes.codelist`` has always held them.
CODE_COLUMNS = (("care_provided", "care"), ("vulnerabilities", "vulnerability"))


def _split_select(dialect: str) -> str:
    """``(record_id, codelist, code)`` for every code of every encounter, in SQL."""
    parts = []
    for column, codelist in CODE_COLUMNS:
        if dialect == "postgresql":
            parts.append(
                f"SELECT e.record_id, CAST('{codelist}' AS VARCHAR(16)) AS codelist, "
                f"CAST(c.code AS VARCHAR(40)) AS code FROM encounters AS e "
                f"CROSS JOIN LATERAL unnest(string_to_array(e.{column}, ';')) AS c(code) "
                f"WHERE e.{column} <> ''"
            )
        else:
            parts.append(
                f"SELECT e.record_id AS record_id, '{codelist}' AS codelist, j.value AS code "
                f"FROM encounters AS e, "
                f"json_each('[\"' || replace(e.{column}, ';', '\",\"') || '\"]') AS j "
                f"WHERE e.{column} <> ''"
            )
    return "\nUNION ALL\n".join(parts)


def upgrade() -> None:
    op.drop_table("encounter_codes")
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE VIEW encounter_codes AS\n{_split_select(dialect)}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW encounter_codes")
    op.create_table(
        "encounter_codes",
        sa.Column(
            "record_id",
            sa.String(40),
            sa.ForeignKey(
                "encounters.record_id",
                name="fk_encounter_codes_record_id_encounters",
                ondelete="CASCADE",
            ),
            primary_key=True,
        ),
        sa.Column("codelist", sa.String(16), primary_key=True),
        sa.Column("code", sa.String(40), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.execute(f"INSERT INTO encounter_codes (record_id, codelist, code) {_split_select(dialect)}")

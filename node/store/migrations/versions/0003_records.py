"""Local records: the seven datasets, encounter code flags and import history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = sa.String(40)
NATURAL_KEY = sa.String(400)
AT = sa.DateTime(timezone=True)


def _provenance() -> list[sa.Column[object]]:
    return [
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column(
            "import_id",
            sa.String(32),
            sa.ForeignKey("imports.import_id", name="fk_{table}_import_id_imports"),
            nullable=False,
        ),
        sa.Column("source_row", sa.Integer, nullable=False),
        sa.Column("imported_at", AT, nullable=False),
    ]


def _birth(required: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("birth_date", sa.String(10), nullable=not required),
        sa.Column("birth_year", sa.SmallInteger, nullable=not required),
        sa.Column("birth_month", sa.SmallInteger),
        sa.Column("birth_day", sa.SmallInteger),
    ]


def _names() -> list[sa.Column[object]]:
    return [
        sa.Column("surname", sa.String(80), nullable=False),
        sa.Column("surname_norm", sa.String(320), nullable=False),
        sa.Column("given_names", sa.String(80)),
        sa.Column("given_names_norm", sa.String(320)),
    ]


def _table(name: str, *columns: sa.Column[object]) -> None:
    fixed = []
    for column in (*columns, *_provenance()):
        for fk in column.foreign_keys:
            fk.name = str(fk.name).format(table=name)
        fixed.append(column)
    op.create_table(name, *fixed)


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{columns[0]}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("import_id", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(40), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_bytes", sa.BigInteger, nullable=False),
        sa.Column("file_format", sa.String(8), nullable=False),
        sa.Column("rows_read", sa.BigInteger, nullable=False),
        sa.Column("rows_added", sa.BigInteger, nullable=False),
        sa.Column("rows_unchanged", sa.BigInteger, nullable=False),
        sa.Column("rows_replaced", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
        sa.Column("started_at", AT, nullable=False),
        sa.Column("finished_at", AT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("equivalence_version", sa.String(64)),
        sa.Column("codelists_version", sa.String(16), nullable=False),
        sa.Column("normalisation_version", sa.String(32), nullable=False),
    )
    _index("imports", "dataset")
    _index("imports", "file_sha256")
    _index("imports", "finished_at")

    _table(
        "encounters",
        sa.Column("record_id", KEY, primary_key=True),
        sa.Column("person_id", KEY, nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("event_date", sa.Date, nullable=False),
        sa.Column("border_post", sa.String(32)),
        sa.Column("border_post_regional", sa.String(8)),
        sa.Column("nationality", sa.String(3), nullable=False),
        sa.Column("nationality_basis", sa.String(16), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        *_birth(required=False),
        sa.Column("age_group", sa.String(10), nullable=False),
        sa.Column("care_provided", sa.Text),
        sa.Column("vulnerabilities", sa.Text),
        sa.Column("document_number", sa.String(30)),
        sa.Column("document_number_norm", sa.String(22)),
        sa.Column("document_country", sa.String(3)),
        *_names(),
    )
    _index("encounters", "person_id")
    _index("encounters", "document_country", "document_number_norm", name="ix_encounters_document")
    _index(
        "encounters", "event_date", "event_type", "nationality", name="ix_encounters_stats"
    )

    op.create_table(
        "encounter_codes",
        sa.Column(
            "record_id",
            KEY,
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

    _table(
        "travel_documents",
        sa.Column("record_id", KEY, primary_key=True),
        sa.Column("person_id", KEY, nullable=False),
        sa.Column("document_type", sa.String(1), nullable=False),
        sa.Column("document_number", sa.String(30), nullable=False),
        sa.Column("document_number_norm", sa.String(22), nullable=False),
        sa.Column("issuing_state", sa.String(3), nullable=False),
        sa.Column("nationality", sa.String(3), nullable=False),
        *_names(),
        *_birth(required=True),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("expiry_date", sa.Date),
        sa.Column("first_seen_date", sa.Date, nullable=False),
    )
    for column in ("person_id", "nationality", "first_seen_date"):
        _index("travel_documents", column)
    _index(
        "travel_documents",
        "issuing_state",
        "document_number_norm",
        name="ix_travel_documents_document",
    )

    _table(
        "document_alerts",
        sa.Column("record_id", KEY, primary_key=True),
        sa.Column("alert_type", sa.String(40), nullable=False),
        sa.Column("document_number", sa.String(30), nullable=False),
        sa.Column("document_number_norm", sa.String(22), nullable=False),
        sa.Column("issuing_state", sa.String(3), nullable=False),
        sa.Column("reported_date", sa.Date, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    _index("document_alerts", "reported_date")
    _index(
        "document_alerts",
        "issuing_state",
        "document_number_norm",
        name="ix_document_alerts_document",
    )

    _table(
        "persons_of_interest",
        sa.Column("record_id", KEY, primary_key=True),
        *_names(),
        *_birth(required=False),
        sa.Column("nationality", sa.String(3)),
        sa.Column("document_number", sa.String(30)),
        sa.Column("document_number_norm", sa.String(22)),
        sa.Column("issuing_state", sa.String(3)),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("since_date", sa.Date, nullable=False),
    )
    _index("persons_of_interest", "surname_norm")
    _index(
        "persons_of_interest",
        "issuing_state",
        "document_number_norm",
        name="ix_persons_of_interest_document",
    )

    _table(
        "biometric_templates",
        sa.Column("record_id", KEY, primary_key=True),
        sa.Column("person_id", KEY, nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("capture_date", sa.Date, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    _index("biometric_templates", "person_id")

    _table(
        "matrices",
        sa.Column("natural_key", NATURAL_KEY, primary_key=True),
        sa.Column("matrix_id", sa.String(60), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("nationality", sa.String(3), nullable=False),
        sa.Column("nationality_basis", sa.String(16)),
        sa.Column("sex", sa.String(1)),
        sa.Column("age_group", sa.String(10)),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    _index("matrices", "matrix_id", "period", name="ix_matrices_matrix_id_period")

    _table(
        "consular_directory",
        sa.Column("natural_key", NATURAL_KEY, primary_key=True),
        sa.Column("origin_country", sa.String(3), nullable=False),
        sa.Column("host_country", sa.String(3), nullable=False),
        sa.Column("city", sa.String(60), nullable=False),
        sa.Column("consulate_name", sa.String(120), nullable=False),
        sa.Column("address", sa.String(160)),
        sa.Column("phone", sa.String(30)),
        sa.Column("email", sa.String(80)),
        sa.Column("procedures", sa.Text, nullable=False),
    )
    _index("consular_directory", "origin_country")


def downgrade() -> None:
    for table in (
        "encounter_codes",
        "encounters",
        "travel_documents",
        "document_alerts",
        "persons_of_interest",
        "biometric_templates",
        "matrices",
        "consular_directory",
        "imports",
    ):
        op.drop_table(table)

"""Tables of the local records: the seven datasets, the encounter code flags and import history.

Why a module of its own: the records are the bulk of a node's database and have their own
life (imports, corrections, statistics), separate from the foundation tables. They register on
the shared :data:`node.store.schema.metadata`, so Alembic sees one schema; the authoritative
DDL is migration ``0003_records``.

Column rules (``docs/ingest.md`` has the long form):

* Every column of a dataset file keeps its name (:mod:`node.records.datasets`). Free text holds
  the value *as recorded*; code columns hold the **regional** code (after the node's
  equivalence table); state columns hold the canonical three-letter code; dates are typed;
  an empty cell is ``NULL``.
* Derived columns carry a suffix: ``*_norm`` (ICAO document number, normalised name),
  ``border_post_regional``, and ``birth_year``/``birth_month``/``birth_day`` (``NULL`` where the
  partial date does not know the part).
* Every dataset row carries ``content_hash`` (SHA-256 of the cells as read, which is how a
  re-import recognises an unchanged row), ``import_id`` and ``source_row`` (provenance: which
  file and which line), and ``imported_at``.
* Datasets keyed by ``record_id`` use it as primary key; ``matrices`` and
  ``consular_directory`` have composite natural keys, stored once as ``natural_key`` (a JSON
  array of the key cells) so every dataset is looked up the same way.
* ``care_provided`` and ``vulnerabilities`` are kept on the encounter as ``;``-joined regional
  codes; the view ``encounter_codes`` shows them one row per code (``GROUP BY codelist, code``
  for ad-hoc SQL), derived from the row, never stored twice.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    column,
    table,
    text,
)

from node.errors import StoreError
from node.store.schema import UtcDateTime, metadata

#: Columns ``ix_encounters_stats`` carries on PostgreSQL besides its key (see migration 0009).
STATS_INCLUDE = (
    "nationality_basis",
    "sex",
    "age_group",
    "border_post_regional",
    "person_id",
    "care_provided",
    "vulnerabilities",
)
KEY_LENGTH = 40  # record_id and person_id, as in node.records.datasets
NATURAL_KEY_LENGTH = 400


def _provenance() -> list[Column[object]]:
    return [
        Column("content_hash", String(64), nullable=False),
        Column("import_id", String(32), ForeignKey("imports.import_id"), nullable=False),
        Column("source_row", Integer, nullable=False),
        Column("imported_at", UtcDateTime(), nullable=False),
    ]


def _birth(required: bool) -> list[Column[object]]:
    return [
        Column("birth_date", String(10), nullable=not required),
        Column("birth_year", SmallInteger, nullable=not required),
        Column("birth_month", SmallInteger),
        Column("birth_day", SmallInteger),
    ]


# One row per file committed by `enlace ingest`. A failed or dry-run import writes nothing,
# not even here: the row is part of the import's own transaction.
imports = Table(
    "imports",
    metadata,
    Column("import_id", String(32), primary_key=True),
    Column("dataset", String(40), nullable=False, index=True),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False, index=True),
    Column("file_bytes", BigInteger, nullable=False),
    Column("file_format", String(8), nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_added", BigInteger, nullable=False),
    Column("rows_unchanged", BigInteger, nullable=False),
    Column("rows_replaced", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("equivalence_version", String(64)),
    Column("codelists_version", String(16), nullable=False),
    Column("normalisation_version", String(32), nullable=False),
)

encounters = Table(
    "encounters",
    metadata,
    Column("record_id", String(KEY_LENGTH), primary_key=True),
    Column("person_id", String(KEY_LENGTH), nullable=False, index=True),
    Column("event_type", String(40), nullable=False),
    Column("event_date", Date, nullable=False),
    Column("border_post", String(32)),
    Column("border_post_regional", String(8)),
    Column("nationality", String(3), nullable=False),
    Column("nationality_basis", String(16), nullable=False),
    Column("sex", String(1), nullable=False),
    *_birth(required=False),
    Column("age_group", String(10), nullable=False),
    Column("care_provided", Text),
    Column("vulnerabilities", Text),
    Column("document_number", String(30)),
    Column("document_number_norm", String(22)),
    Column("document_country", String(3)),
    Column("surname", String(80), nullable=False),
    Column("surname_norm", String(320), nullable=False),
    Column("given_names", String(80)),
    Column("given_names_norm", String(320)),
    *_provenance(),
    # Only encounters with a document (most have none): migration 0010.
    Index(
        "ix_encounters_document",
        "document_country",
        "document_number_norm",
        sqlite_where=text("document_number_norm IS NOT NULL"),
        postgresql_where=text("document_number_norm IS NOT NULL"),
    ),
    # Statistics select a period and group by its codes. On PostgreSQL every counted column is
    # included, so a quarter is one index range and the heap is not read (migration 0009).
    Index(
        "ix_encounters_stats",
        "event_date",
        "event_type",
        "nationality",
        postgresql_include=list(STATS_INCLUDE),
    ),
)

#: A view (migration ``0008``), not a table: one row per code of an encounter's ``;``-joined
#: ``care_provided`` (code list ``care``) and ``vulnerabilities`` (``vulnerability``), split from
#: the row itself, so it can never disagree with it. Not part of :data:`metadata`: nothing
#: writes it, and ``create_all`` must not make it a table.
encounter_codes = table(
    "encounter_codes",
    column("record_id", String(KEY_LENGTH)),
    column("codelist", String(16)),
    column("code", String(40)),
)

travel_documents = Table(
    "travel_documents",
    metadata,
    Column("record_id", String(KEY_LENGTH), primary_key=True),
    Column("person_id", String(KEY_LENGTH), nullable=False, index=True),
    Column("document_type", String(1), nullable=False),
    Column("document_number", String(30), nullable=False),
    Column("document_number_norm", String(22), nullable=False),
    Column("issuing_state", String(3), nullable=False),
    Column("nationality", String(3), nullable=False, index=True),
    Column("surname", String(80), nullable=False),
    Column("surname_norm", String(320), nullable=False),
    Column("given_names", String(80)),
    Column("given_names_norm", String(320)),
    *_birth(required=True),
    Column("sex", String(1), nullable=False),
    Column("expiry_date", Date),
    Column("first_seen_date", Date, nullable=False, index=True),
    *_provenance(),
    Index("ix_travel_documents_document", "issuing_state", "document_number_norm"),
)

document_alerts = Table(
    "document_alerts",
    metadata,
    Column("record_id", String(KEY_LENGTH), primary_key=True),
    Column("alert_type", String(40), nullable=False),
    Column("document_number", String(30), nullable=False),
    Column("document_number_norm", String(22), nullable=False),
    Column("issuing_state", String(3), nullable=False),
    Column("reported_date", Date, nullable=False, index=True),
    Column("source", String(20), nullable=False),
    *_provenance(),
    Index("ix_document_alerts_document", "issuing_state", "document_number_norm"),
)

persons_of_interest = Table(
    "persons_of_interest",
    metadata,
    Column("record_id", String(KEY_LENGTH), primary_key=True),
    Column("surname", String(80), nullable=False),
    Column("surname_norm", String(320), nullable=False, index=True),
    Column("given_names", String(80)),
    Column("given_names_norm", String(320)),
    *_birth(required=False),
    Column("nationality", String(3)),
    Column("document_number", String(30)),
    Column("document_number_norm", String(22)),
    Column("issuing_state", String(3)),
    Column("reason", String(40), nullable=False),
    Column("since_date", Date, nullable=False),
    *_provenance(),
    Index("ix_persons_of_interest_document", "issuing_state", "document_number_norm"),
)

biometric_templates = Table(
    "biometric_templates",
    metadata,
    Column("record_id", String(KEY_LENGTH), primary_key=True),
    Column("person_id", String(KEY_LENGTH), nullable=False, index=True),
    Column("modality", String(16), nullable=False),
    Column("capture_date", Date, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32 little-endian, 4 x dimension bytes
    *_provenance(),
)

matrices = Table(
    "matrices",
    metadata,
    Column("natural_key", String(NATURAL_KEY_LENGTH), primary_key=True),
    Column("matrix_id", String(60), nullable=False),
    Column("period", String(7), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("nationality", String(3), nullable=False),
    Column("nationality_basis", String(16)),  # NULL: all bases (a total)
    Column("sex", String(1)),
    Column("age_group", String(10)),
    Column("value", BigInteger, nullable=False),
    *_provenance(),
    Index("ix_matrices_matrix_id_period", "matrix_id", "period"),
)

consular_directory = Table(
    "consular_directory",
    metadata,
    Column("natural_key", String(NATURAL_KEY_LENGTH), primary_key=True),
    Column("origin_country", String(3), nullable=False, index=True),
    Column("host_country", String(3), nullable=False),
    Column("city", String(60), nullable=False),
    Column("consulate_name", String(120), nullable=False),
    Column("address", String(160)),
    Column("phone", String(30)),
    Column("email", String(80)),
    Column("procedures", Text, nullable=False),
    *_provenance(),
)

#: The table of each dataset, by dataset name (:data:`node.records.datasets.DATASETS`).
DATASET_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        encounters,
        travel_documents,
        document_alerts,
        persons_of_interest,
        biometric_templates,
        matrices,
        consular_directory,
    )
}

#: Datasets whose natural key has several columns and is stored in ``natural_key``.
COMPOSITE_KEY_DATASETS = frozenset({"matrices", "consular_directory"})


def key_column(dataset: str) -> str:
    """The column that holds a dataset's natural key (unique on its own)."""
    return "natural_key" if dataset in COMPOSITE_KEY_DATASETS else "record_id"


def dataset_table(dataset: str) -> Table:
    """The table of ``dataset``; :class:`~node.errors.StoreError` naming the known ones."""
    try:
        return DATASET_TABLES[dataset]
    except KeyError:
        raise StoreError(
            f"no table for dataset {dataset!r}",
            hint="datasets are: " + ", ".join(DATASET_TABLES),
        ) from None

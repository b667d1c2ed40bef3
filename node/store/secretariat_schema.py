"""Tables of the Secretariat's work and of what members and the helper keep about it.

The schema is owned by migration ``0006``; this module is the SQLAlchemy description that
:class:`node.store.secretariat_store.SecretariatStore` queries through. Which node uses which
table: the ST ``st_pulls``, ``st_results``, ``st_reminders``, ``st_emergencies``, ``st_rounds``,
``st_round_shares`` (and ``st_schedule_jobs``, managed by APScheduler); a member
``st_notifications`` and ``st_contributions``; the helper ``helper_shares`` and ``helper_sums``.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, Text

from node.store.schema import UtcDateTime, metadata

st_pulls = Table(
    "st_pulls",
    metadata,
    Column("pull_id", String(40), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False, index=True),
    Column("finished_at", UtcDateTime()),
    Column("trigger", String(16), nullable=False),
    Column("purpose", String(100), nullable=False),
    Column("period", String(40), nullable=False),
    Column("items", Text, nullable=False),  # JSON list of pull items
    Column("members", Text, nullable=False),  # JSON list of country codes
    Column("status", String(16), nullable=False, index=True),
    Column("summary", Text, nullable=False),  # JSON: per member outcome
)

st_results = Table(
    "st_results",
    metadata,
    Column("member", String(8), primary_key=True),
    Column("table_id", String(40), primary_key=True),
    Column("period", String(40), primary_key=True),
    Column("status", String(16), nullable=False),  # complete | partial | missing
    Column("dimensions", Text, nullable=False),  # JSON list
    Column("cells", Text),  # JSON list of [key, value|null, obs, conf, perturbed]
    Column("coverage", Text, nullable=False),  # JSON object
    Column("as_of", UtcDateTime()),
    Column("agreement_id", String(200), nullable=False),
    Column("pull_id", String(40), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("received_at", UtcDateTime()),
    Column("last_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=False),
)

st_reminders = Table(
    "st_reminders",
    metadata,
    Column("reminder_id", String(32), primary_key=True),
    Column("member", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("channel", String(8), nullable=False),  # node | email
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # sent | failed
    Column("detail", Text, nullable=False),
    Index("ix_st_reminders_member_period", "member", "period"),
)

st_emergencies = Table(
    "st_emergencies",
    metadata,
    Column("emergency_id", String(32), primary_key=True),
    Column("member", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("matrices", Text, nullable=False),  # JSON list
    Column("reason", Text, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("pull_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),
)

st_notifications = Table(
    "st_notifications",
    metadata,
    Column("notification_id", String(32), primary_key=True),
    Column("sender", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("period", String(40), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("language", String(4), nullable=False),
    Column("reference", String(100), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False, index=True),
    Column("signed_by", String(32), nullable=False),  # sender key id
    Column("nonce", String(32), nullable=False),  # of the signed request (see the audit log)
    Column("acknowledged_at", UtcDateTime()),
)

st_contributions = Table(
    "st_contributions",
    metadata,
    Column("round_id", String(80), primary_key=True),
    Column("requester", String(8), primary_key=True),
    Column("matrix", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("helper", String(8), nullable=False),
    Column("layout_sha256", String(64), nullable=False),
    Column("st_share", LargeBinary, nullable=False),
    Column("helper_share", LargeBinary, nullable=False),
    Column("as_of", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
)

st_rounds = Table(
    "st_rounds",
    metadata,
    Column("round_id", String(80), primary_key=True),
    Column("matrix", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("helper", String(8), nullable=False),
    Column("layout_sha256", String(64), nullable=False),
    Column("cells", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # open | summed | failed
    Column("members", Text, nullable=False),  # JSON list: members summed
    Column("detail", Text, nullable=False),
    Column("result", Text),  # JSON {"dimensions": [...], "cells": [[key, value, n], ...]}
)

st_round_shares = Table(
    "st_round_shares",
    metadata,
    Column("round_id", String(80), primary_key=True),
    Column("member", String(8), primary_key=True),
    Column("share", LargeBinary, nullable=False),
    Column("as_of", UtcDateTime()),
    Column("received_at", UtcDateTime(), nullable=False),
)

helper_shares = Table(
    "helper_shares",
    metadata,
    Column("round_id", String(80), primary_key=True),
    Column("member", String(8), primary_key=True),
    Column("requester", String(8), nullable=False),
    Column("matrix", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("layout_sha256", String(64), nullable=False),
    Column("share", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
)

helper_sums = Table(
    "helper_sums",
    metadata,
    Column("round_id", String(80), primary_key=True),
    Column("requester", String(8), nullable=False),
    Column("matrix", String(8), nullable=False),
    Column("period", String(40), nullable=False),
    Column("members", Text, nullable=False),  # JSON list
    Column("answered_at", UtcDateTime(), nullable=False),
    Index("ix_helper_sums_table", "requester", "matrix", "period"),
)

"""The Secretariat: pulls and results, reminders, emergency updates, notifications received,
regional-only rounds (ST, member and helper sides) and the persistent schedule.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

AT = sa.DateTime(timezone=True)
ROUND = sa.String(80)
PERIOD = sa.String(40)


def upgrade() -> None:
    op.create_table(
        "st_pulls",
        sa.Column("pull_id", sa.String(40), primary_key=True),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("finished_at", AT),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_st_pulls_created_at", "st_pulls", ["created_at"])
    op.create_index("ix_st_pulls_status", "st_pulls", ["status"])
    op.create_table(
        "st_results",
        sa.Column("member", sa.String(8), primary_key=True),
        sa.Column("table_id", sa.String(40), primary_key=True),
        sa.Column("period", PERIOD, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("cells", sa.Text),
        sa.Column("coverage", sa.Text, nullable=False),
        sa.Column("as_of", AT),
        sa.Column("agreement_id", sa.String(200), nullable=False),
        sa.Column("pull_id", sa.String(40), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("received_at", AT),
        sa.Column("last_attempt_at", AT, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_table(
        "st_reminders",
        sa.Column("reminder_id", sa.String(32), primary_key=True),
        sa.Column("member", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("sent_at", AT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_st_reminders_member_period", "st_reminders", ["member", "period"])
    op.create_table(
        "st_emergencies",
        sa.Column("emergency_id", sa.String(32), primary_key=True),
        sa.Column("member", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("matrices", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", AT, nullable=False),
        sa.Column("pull_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "st_notifications",
        sa.Column("notification_id", sa.String(32), primary_key=True),
        sa.Column("sender", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("language", sa.String(4), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("received_at", AT, nullable=False),
        sa.Column("signed_by", sa.String(32), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("acknowledged_at", AT),
    )
    op.create_index("ix_st_notifications_received_at", "st_notifications", ["received_at"])
    op.create_table(
        "st_contributions",
        sa.Column("round_id", ROUND, primary_key=True),
        sa.Column("requester", sa.String(8), primary_key=True),
        sa.Column("matrix", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("helper", sa.String(8), nullable=False),
        sa.Column("layout_sha256", sa.String(64), nullable=False),
        sa.Column("st_share", sa.LargeBinary, nullable=False),
        sa.Column("helper_share", sa.LargeBinary, nullable=False),
        sa.Column("as_of", AT),
        sa.Column("created_at", AT, nullable=False),
    )
    op.create_table(
        "st_rounds",
        sa.Column("round_id", ROUND, primary_key=True),
        sa.Column("matrix", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("helper", sa.String(8), nullable=False),
        sa.Column("layout_sha256", sa.String(64), nullable=False),
        sa.Column("cells", sa.Integer, nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
    )
    op.create_table(
        "st_round_shares",
        sa.Column("round_id", ROUND, primary_key=True),
        sa.Column("member", sa.String(8), primary_key=True),
        sa.Column("share", sa.LargeBinary, nullable=False),
        sa.Column("as_of", AT),
        sa.Column("received_at", AT, nullable=False),
    )
    op.create_table(
        "helper_shares",
        sa.Column("round_id", ROUND, primary_key=True),
        sa.Column("member", sa.String(8), primary_key=True),
        sa.Column("requester", sa.String(8), nullable=False),
        sa.Column("matrix", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("layout_sha256", sa.String(64), nullable=False),
        sa.Column("share", sa.LargeBinary, nullable=False),
        sa.Column("received_at", AT, nullable=False),
    )
    op.create_table(
        "helper_sums",
        sa.Column("round_id", ROUND, primary_key=True),
        sa.Column("requester", sa.String(8), nullable=False),
        sa.Column("matrix", sa.String(8), nullable=False),
        sa.Column("period", PERIOD, nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("answered_at", AT, nullable=False),
    )
    op.create_index("ix_helper_sums_table", "helper_sums", ["requester", "matrix", "period"])
    # APScheduler's SQLAlchemyJobStore layout (node.secretariat.schedule uses this table name).
    op.create_table(
        "st_schedule_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25)),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_st_schedule_jobs_next_run_time", "st_schedule_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index("ix_st_schedule_jobs_next_run_time", table_name="st_schedule_jobs")
    op.drop_table("st_schedule_jobs")
    op.drop_index("ix_helper_sums_table", table_name="helper_sums")
    for table in (
        "helper_sums",
        "helper_shares",
        "st_round_shares",
        "st_rounds",
        "st_contributions",
    ):
        op.drop_table(table)
    op.drop_index("ix_st_notifications_received_at", table_name="st_notifications")
    op.drop_table("st_notifications")
    op.drop_table("st_emergencies")
    op.drop_index("ix_st_reminders_member_period", table_name="st_reminders")
    op.drop_table("st_reminders")
    op.drop_table("st_results")
    op.drop_index("ix_st_pulls_status", table_name="st_pulls")
    op.drop_index("ix_st_pulls_created_at", table_name="st_pulls")
    op.drop_table("st_pulls")

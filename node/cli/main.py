"""Entry point of the ``enlace`` command: mounts one module per command group."""

from __future__ import annotations

import logging
import os

import typer

from node.cli import (
    audit_cmd,
    biometric_cmd,
    demo_cmd,
    directory_cmd,
    doctor_cmd,
    followup_cmd,
    generate_cmd,
    ingest_cmd,
    match_cmd,
    node_cmd,
    ops_cmd,
    policy_cmd,
    screen_cmd,
    st_cmd,
    stats_cmd,
    status_cmd,
)
from node.ops import logging_json

app = typer.Typer(
    name="enlace",
    help="crm-enlace: a node of the CRM federated, privacy-preserving exchange network.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

node_cmd.register(app)
doctor_cmd.register(app)
ops_cmd.register(app)
app.add_typer(directory_cmd.app, name="directory", help="Federation directory (trust anchor).")
app.add_typer(audit_cmd.app, name="audit", help="Hash-chained audit log.")
app.add_typer(policy_cmd.app, name="policy", help="Bilateral sharing agreements.")
demo_cmd.register(app)
ingest_cmd.register(app)
generate_cmd.register(app)
app.add_typer(stats_cmd.app, name="stats", help="Protected statistics and the CRM matrices.")
app.add_typer(match_cmd.app, name="match", help="Private identity matching (OPRF filters).")
app.add_typer(followup_cmd.app, name="followup", help="Follow-ups after a hit (approve, deny).")
biometric_cmd.register_match(match_cmd.app)
app.add_typer(biometric_cmd.app, name="biometric", help="Biometric galleries and probes.")
app.add_typer(screen_cmd.app, name="screen", help="Screen passenger manifests (PAXLST, bus CSV).")
status_cmd.register(app)
app.add_typer(st_cmd.app, name="st", help="Technical Secretariat: pulls, reports, calendar.")


def run() -> None:
    logging.basicConfig(
        level=os.environ.get("ENLACE_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging_json.install()  # ENLACE_LOG_FORMAT=json: one JSON object per line
    app()


if __name__ == "__main__":
    run()

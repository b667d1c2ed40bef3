"""``enlace backup``, ``restore``, ``rotate-signing-key``, ``rotate-tls``, ``health``.

Thin commands over :mod:`node.ops`: each prints a summary (or ``--json``) and exits non-zero
on error with one line on stderr.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crypto.keys import tls_server_name
from node.cli.common import HomeOption, JsonOption, cli_errors, console, print_json
from node.clock import SystemClock
from node.home import NodeHome
from node.ops.backup import backup_node, restore_node
from node.ops.doctor import open_for_checks
from node.ops.rotation import (
    alarm_window,
    expiry_report,
    home_signing_keys,
    own_entry,
    pending_tls,
    rotate_signing_key,
    rotate_tls,
    select_signing_key,
)
from node.trust.member import format_time

NEXT_STEP = (
    "Next: send {member} to the directory administrators; the node switches at {at} if the "
    "directory it holds by then lists the new {what}."
)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("rotate-signing-key")(rotate_signing)
    app.command("rotate-tls")(rotate_certificate)
    app.command("health")(health)


def _emit(summary: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json(summary)
        return
    console.print(title, highlight=False)
    for key, value in summary.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        console.print(f"  {key:18} {shown}", highlight=False)


def backup(
    home: HomeOption,
    out: Annotated[Path, typer.Option("--out", help="Archive to write (.tar.gz, mode 0600).")],
    without_keys: Annotated[
        bool, typer.Option("--without-keys", help="Leave keys/ out of the archive.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Back up the node home and its database (SQLite online backup or pg_dump)."""
    with cli_errors(as_json):
        manifest = backup_node(
            NodeHome(home), out, dt.datetime.now(dt.UTC), include_keys=not without_keys
        )
        summary = {
            "archive": str(out),
            "country": manifest.country,
            "backend": manifest.backend,
            "revision": manifest.revision,
            "audit_seq": manifest.audit_seq,
            "audit_head": manifest.audit_head,
            "files": len(manifest.files),
        }
        _emit(summary, as_json, f"backup written to {out}")


def restore(
    archive: Annotated[Path, typer.Argument(help="Archive written by `enlace backup`.")],
    home: HomeOption,
    database_url: Annotated[
        str,
        typer.Option(
            envvar="ENLACE_DATABASE_URL", help="Empty PostgreSQL database to restore into."
        ),
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Restore a backup into a new home, then verify the audit chain and its checkpoints."""
    with cli_errors(as_json):
        report = restore_node(archive, home, database_url=database_url)
        summary = {
            "home": str(report.home),
            "country": report.country,
            "audit_entries": report.audit_entries,
            "audit_head": report.audit_head,
            "checkpoints": report.checkpoints,
            "revision": report.revision,
        }
        _emit(summary, as_json, f"restored into {home}; the audit log verifies")


def rotate_signing(
    home: HomeOption,
    activate_in_hours: Annotated[
        float, typer.Option(help="Hours until the new key is used (leave time to publish).")
    ] = 48.0,
    retire_after_days: Annotated[
        float, typer.Option(help="Days after activation that the old key stays valid.")
    ] = 7.0,
    as_json: JsonOption = False,
) -> None:
    """Create the next signing key; list both keys, overlapping, in member.json."""
    with cli_errors(as_json):
        node = NodeHome(home)
        rotation = rotate_signing_key(
            node,
            dt.datetime.now(dt.UTC),
            activate_after=dt.timedelta(hours=activate_in_hours),
            retire_after=dt.timedelta(days=retire_after_days),
        )
        summary = {
            "new_key_id": rotation.new_key_id,
            "activates_at": format_time(rotation.activate_at),
            "old_keys_until": {k: format_time(v) for k, v in rotation.retired.items()},
            "member_descriptor": str(rotation.member_path),
        }
        _emit(summary, as_json, "new signing key created")
        if not as_json:
            console.print(
                NEXT_STEP.format(
                    member=rotation.member_path, at=summary["activates_at"], what="key"
                ),
                highlight=False,
            )


def rotate_certificate(
    home: HomeOption,
    activate_in_hours: Annotated[
        float, typer.Option(help="Hours until the new certificate is served.")
    ] = 48.0,
    days: Annotated[int, typer.Option(help="Validity of the new certificate in days.")] = 365,
    as_json: JsonOption = False,
) -> None:
    """Create the next TLS key and certificate; pin both certificates in member.json."""
    with cli_errors(as_json):
        node = NodeHome(home)
        pending = rotate_tls(
            node,
            dt.datetime.now(dt.UTC),
            activate_after=dt.timedelta(hours=activate_in_hours),
            days=days,
        )
        summary = {
            "fingerprint": pending.fingerprint,
            "activates_at": format_time(pending.activate_at),
            "member_descriptor": str(node.member_path),
        }
        _emit(summary, as_json, "new TLS certificate created")
        if not as_json:
            console.print(
                NEXT_STEP.format(
                    member=node.member_path, at=summary["activates_at"], what="certificate"
                ),
                highlight=False,
            )


def _serving(node: NodeHome, address: str, country: str, timeout: float) -> str:
    key_pem, cert_pem = node.keys.load_tls()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=cert_pem, private_key=key_pem, certificate_chain=cert_pem
    )
    options = [("grpc.ssl_target_name_override", tls_server_name(country))]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            return f"unreachable ({code.name if code else 'error'})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def health(
    home: HomeOption,
    address: Annotated[
        str, typer.Option(help="host:port to probe (default: listen, else endpoint).")
    ] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the node.")] = 3.0,
    as_json: JsonOption = False,
) -> None:
    """Is this node serving? Also: the key it should sign with, and what expires soon."""
    with cli_errors(as_json):
        node = NodeHome(home)
        runtime = open_for_checks(node, SystemClock())
        try:
            now = runtime.clock.now()
            config = runtime.config
            directory = runtime.directory.peek()
            target = address or config.listen_address
            status = _serving(node, target, config.country, timeout)
            entry = own_entry(directory, config.country)
            key = select_signing_key(home_signing_keys(node), entry, now, runtime.signing_key)
            pending = pending_tls(node)
            expiring = [
                {
                    "kind": e.kind,
                    "subject": e.subject,
                    "expires_at": format_time(e.expires_at),
                    "days_left": round(e.remaining(now).total_seconds() / 86400, 1),
                }
                for e in expiry_report(node, directory, config.country)
                if e.remaining(now) <= alarm_window(e.kind, runtime)
            ]
        finally:
            runtime.close()
        summary = {
            "address": target,
            "status": status,
            "directory_version": directory.version if directory else 0,
            "signing_key": key.key_id,
            "tls_rotation": format_time(pending.activate_at) if pending else "",
            "expiring": expiring,
        }
        _emit(summary, as_json, f"{config.country} health")
    if status != "SERVING":
        raise typer.Exit(1)

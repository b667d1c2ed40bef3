"""``enlace audit``: verify the chain, show entries, export and check evidence, checkpoint."""

from __future__ import annotations

import collections
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from crypto.envelope import decode_header
from crypto.errors import CryptoError
from node.audit import (
    build_evidence,
    covering_checkpoint,
    verify_chain_with_checkpoints,
    verify_evidence,
)
from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    cli_errors,
    console,
    id_column,
    parse_moment,
    print_json,
    styled,
    text_column,
)
from node.cli.files import read_json_file
from node.errors import AuditIntegrityError, NotFoundError
from node.home import NodeHome
from node.runtime import NodeRuntime, open_runtime
from node.server.jobs import write_checkpoint
from node.store.store import AuditFilter
from node.trust.freshness import read_directory

app = typer.Typer(no_args_is_help=True)


def verify_log(runtime: NodeRuntime) -> dict[str, Any]:
    """Verify the whole chain, every checkpoint, and that the head row matches the chain."""
    directory = runtime.directory.current(runtime.clock.now())
    summary = verify_chain_with_checkpoints(
        runtime.store.iter_audit(),
        runtime.store.checkpoints(),
        directory.signing_key,
        node=runtime.config.country,
    )
    head_seq, head_hash = runtime.store.audit_head()
    if head_seq != summary.last_seq or (head_seq and head_hash != summary.head_hash):
        raise AuditIntegrityError(
            f"the chain ends at entry {summary.last_seq} but the head records entry {head_seq}",
            position=summary.last_seq + 1,
            hint="entries after the last one were deleted; restore from backup or a peer's copy",
        )
    return {
        "entries": summary.count,
        "last_seq": summary.last_seq,
        "head_hash": summary.head_hash,
        "checkpoints": len(runtime.store.checkpoints()),
        "status": "ok",
    }


@app.command("verify")
def verify(home: HomeOption, as_json: JsonOption = False) -> None:
    """Detect any edit, deletion or reordering of the audit log, and say where."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            result = verify_log(runtime)
        finally:
            runtime.close()
        if as_json:
            print_json(result)
        else:
            console.print(
                Text.assemble(
                    ("audit log verifies", "green"),
                    f": {result['entries']} entries, {result['checkpoints']} checkpoints, "
                    f"head {result['head_hash']}",
                ),
                soft_wrap=True,
            )


def _row(entry: Any) -> dict[str, Any]:
    record = entry.record
    header = None
    if record.request_header:
        try:
            header = decode_header(record.request_header)
        except CryptoError:
            # Refused requests are logged as they arrived, garbage included: anyone can send
            # some, and one such entry must not stop an auditor listing the rest.
            header = None
    return {
        "seq": entry.seq,
        "at": record.at.isoformat(),
        "direction": record.direction,
        "peer": record.peer,
        "method": record.method,
        "purpose": header.purpose if header else "",
        "header_parses": header is not None or not record.request_header,
        "decision": record.decision,
        "status": record.status,
        "reason": record.reason,
        "agreement": record.agreement_id,
        "agreement_hash": record.agreement_hash,
        "request_digest": record.request_digest,
        "extra": dict(record.extra),
    }


@app.command("show")
def show(
    home: HomeOption,
    peer: Annotated[str, typer.Option(help="Only exchanges with this ISO3 peer.")] = "",
    since: Annotated[str, typer.Option(help="Only entries at or after this ISO date/time.")] = "",
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List audit entries (newest last)."""
    with cli_errors(as_json):
        since_at = parse_moment(since, "--since") if since else None
        runtime = open_runtime(NodeHome(home))
        try:
            filt = AuditFilter(peer=peer.upper() or None, since=since_at, limit=None)
            # Only the last ``limit`` entries are kept and read: a log of millions stays cheap.
            rows = [_row(e) for e in collections.deque(runtime.store.iter_audit(filt), limit)]
        finally:
            runtime.close()
        if as_json:
            print_json(rows)
            return
        console.print(audit_table(rows))


def audit_table(rows: list[dict[str, Any]]) -> FittedTable:
    """Audit entries (``_row``), one a row. On a narrow terminal the direction, then the
    method, give way (``--json`` has them)."""
    table = FittedTable(title="Audit log (UTC)")
    text_column(table, "seq")
    text_column(table, "at")
    text_column(table, "dir", drop=2)
    text_column(table, "peer")
    text_column(table, "method", drop=1)
    text_column(table, "status")
    id_column(table, "agreement")
    for r in rows:
        table.add_row(
            str(r["seq"]),
            r["at"][:19].replace("T", " "),
            "in" if r["direction"] == "inbound" else "out",
            r["peer"],
            r["method"].rsplit("/", 1)[-1],
            r["status"] if r["status"] == "OK" else styled(r["status"], "red"),
            r["agreement"] or "—",
        )
    return table


@app.command("checkpoint")
def checkpoint(home: HomeOption, as_json: JsonOption = False) -> None:
    """Sign a checkpoint over the current head now (the server also does it every minute)."""
    with cli_errors(as_json):
        runtime = open_runtime(NodeHome(home))
        try:
            seq = write_checkpoint(runtime)
        finally:
            runtime.close()
        if as_json:
            print_json({"checkpoint_seq": seq, "written": bool(seq)})  # 0: nothing new
        else:
            console.print(f"checkpoint at entry {seq}" if seq else "no new entries to checkpoint")


@app.command("export")
def export(
    home: HomeOption,
    seq: Annotated[int, typer.Argument(help="Audit entry number (see `enlace audit show`).")],
    out: Annotated[Path, typer.Option(help="Evidence file to write.")] = Path("evidence.json"),
) -> None:
    """Write the evidence for one exchange, verifiable by a third party with the directory."""
    with cli_errors():
        runtime = open_runtime(NodeHome(home))
        try:
            entry = runtime.store.audit_entry(seq)
            if entry is None:
                raise NotFoundError(f"no audit entry {seq}", hint="see `enlace audit show`")
            cp = covering_checkpoint(runtime.store.checkpoints(), seq)
            if cp is None:
                write_checkpoint(runtime)
                cp = covering_checkpoint(runtime.store.checkpoints(), seq)
            assert cp is not None
            segment = list(
                runtime.store.iter_audit(AuditFilter(after_seq=seq - 1, limit=cp.seq - seq + 1))
            )
            evidence = build_evidence(entry, segment, cp)
        finally:
            runtime.close()
        out.write_text(json.dumps(evidence, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        console.print(f"evidence for entry {seq} written to {out}")


@app.command("check-evidence")
def check_evidence(
    evidence: Annotated[Path, typer.Argument(help="Evidence file from `enlace audit export`.")],
    directory: Annotated[Path, typer.Option(help="Federation directory JSON to verify with.")],
    as_json: JsonOption = False,
) -> None:
    """Verify exported evidence with the federation directory alone (no node needed)."""
    with cli_errors(as_json):
        trusted = read_directory(directory)
        report = verify_evidence(read_json_file(evidence), trusted.signing_key)
        result = {
            k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in vars(report).items()
        }
        if as_json:
            print_json(result)
        else:
            console.print(styled("evidence verifies", "green"))
            for key, value in result.items():
                console.print(f"  {key:16} {value}")

"""A child process that writes to a node's store and says what was acknowledged.

Why a separate process: SIGKILL must hit a real writer between any two instructions, which
only a process of its own allows; the parent then opens the same database and checks that
everything acknowledged is there and that the chain still verifies.

``python -m faults.worker audit HOME`` appends audit entries in a loop and signs a checkpoint
after every few of them (so about half the transactions are checkpoints); after each commit it
prints ``entry SEQ HASH`` or ``checkpoint SEQ HASH`` and flushes: a printed line is an
acknowledged write. It stops after ``--limit`` entries (bounded) or when killed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

from node.audit import AuditRecord
from node.home import NodeHome
from node.runtime import open_runtime
from node.server.jobs import write_checkpoint


def record(n: int, at: dt.datetime) -> AuditRecord:
    header = json.dumps({"n": n, "kind": "request"}, sort_keys=True).encode()
    return AuditRecord(
        at=at,
        direction="inbound",
        peer="CRI",
        method="/enlace.v1.NodeService/Ping",
        request_header=header,
        request_signature=b"\x00" * 64,
        request_digest=hashlib.sha256(header).hexdigest(),
        decision="allowed",
        status="OK",
        reason="",
        agreement_id="",
        agreement_hash="",
        extra={"n": n, "padding": "x" * 200},
    )


def audit_loop(home: Path, limit: int, every: int) -> int:
    runtime = open_runtime(NodeHome(home))
    try:
        for n in range(limit):
            entry = runtime.store.append_audit(record(n, runtime.clock.now()))
            print(f"entry {entry.seq} {entry.entry_hash}", flush=True)
            if n % every == every - 1:
                seq = write_checkpoint(runtime)
                if seq:
                    print(f"checkpoint {seq}", flush=True)
    finally:
        runtime.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faults.worker")
    parser.add_argument("what", choices=["audit"])
    parser.add_argument("home", type=Path)
    parser.add_argument("--limit", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=2)
    args = parser.parse_args(argv)
    return audit_loop(args.home, args.limit, args.every)


if __name__ == "__main__":
    sys.exit(main())

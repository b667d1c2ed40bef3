"""OpenMined PSI, the anchor of ``bench_match.py``: its server process and its query rounds.

Why: the issue measures our matching against OpenMined PSI (``pip install --no-deps
openmined-psi``: ECDH-PSI over P-256 with a GCS filter at the same 1e-9 false-positive rate)
on the same sets, through the same kind of channel (gRPC on loopback, a server process of its
own). The server (``python bench/_psi.py --port … --items … --stats … --queries …``) builds
its setup message for the holder's items before it says it is ready, and writes how long that
took; the client fetches the setup once, then each round sends one request for all its items
and intersects. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent import futures
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import ChildProcess, process_cpu_seconds
from bench.bench_match import STATES, Round, number, query_set, round_figures

PSI_FPR = 1e-9
GRPC_LIMIT = 512 * 1024 * 1024


def psi_server(items_path: Path, port: int, stats_path: Path, queries: int) -> None:
    import grpc
    import private_set_intersection.python as psi

    from bench._util import serve_until_stdin_closes

    items = items_path.read_text(encoding="utf-8").split("\n")
    server = psi.server.CreateWithNewKey(True)
    cpu, started = time.process_time(), time.perf_counter()
    setup = server.CreateSetupMessage(PSI_FPR, queries, items, psi.DataStructure.GCS)
    setup_bytes = setup.SerializeToString()
    stats = {
        "setup_wall_s": time.perf_counter() - started,
        "setup_cpu_s": time.process_time() - cpu,
        "setup_bytes": len(setup_bytes),
    }
    stats_path.write_text(json.dumps(stats), encoding="utf-8")

    def get_setup(_request: bytes, _context: Any) -> bytes:
        return setup_bytes

    def process(request: bytes, _context: Any) -> bytes:
        message = psi.Request()
        message.ParseFromString(request)
        return bytes(server.ProcessRequest(message).SerializeToString())

    handlers = {
        "Setup": grpc.unary_unary_rpc_method_handler(get_setup),
        "Process": grpc.unary_unary_rpc_method_handler(process),
    }
    options = [("grpc.max_receive_message_length", GRPC_LIMIT),
               ("grpc.max_send_message_length", GRPC_LIMIT)]  # fmt: skip
    app = grpc.server(futures.ThreadPoolExecutor(4), options=options)
    app.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Psi", handlers),))
    app.add_insecure_port(f"127.0.0.1:{port}")
    app.start()
    serve_until_stdin_closes()
    app.stop(0)


def psi_side(
    root: Path, holder: int, queries: int, stack: ExitStack
) -> tuple[dict[str, Any], Round]:
    """Start the PSI server (it builds its setup message), fetch the setup once."""
    import grpc
    import private_set_intersection.python as psi

    items_path, stats_path = root / "psi-items.txt", root / "psi-stats.json"
    items_path.write_text(
        "\n".join(f"{STATES[i % 12]}|{number(i)}" for i in range(holder)), encoding="utf-8"
    )
    docs, held = query_set(holder, queries)
    mine = [f"{s}|{n}" for n, s in docs]
    port = 20000 + os.getpid() % 20000
    argv = [sys.executable, __file__, "--port", str(port), "--items", str(items_path),
            "--stats", str(stats_path), "--queries", str(queries)]  # fmt: skip
    child = ChildProcess(argv)
    child.start(timeout=1800)  # ready only once the setup message is built
    stack.callback(child.stop)
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    options = [("grpc.max_receive_message_length", GRPC_LIMIT),
               ("grpc.max_send_message_length", GRPC_LIMIT)]  # fmt: skip
    channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}", options=options))
    get_setup = channel.unary_unary("/bench.Psi/Setup")
    process = channel.unary_unary("/bench.Psi/Process")
    started = time.perf_counter()
    setup = psi.ServerSetup()
    setup.ParseFromString(get_setup(b"", timeout=600))
    stats["setup_transfer_wall_s"] = time.perf_counter() - started

    def one_round() -> dict[str, Any]:
        client = psi.client.CreateWithNewKey(True)
        server_cpu = process_cpu_seconds(child.pid) or 0.0
        cpu, started = time.process_time(), time.perf_counter()
        request = client.CreateRequest(mine)
        answer = psi.Response()
        answer.ParseFromString(process(request.SerializeToString(), timeout=600))
        found = client.GetIntersection(setup, answer)
        wall, client_cpu = time.perf_counter() - started, time.process_time() - cpu
        server_cpu = (process_cpu_seconds(child.pid) or 0.0) - server_cpu
        return {"hits": len(found), **round_figures(queries, wall, client_cpu, server_cpu)}

    return stats | {"queries": queries, "expected_hits": held}, one_round


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--items", type=Path, required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--queries", type=int, required=True)
    args = parser.parse_args(argv)
    psi_server(args.items, args.port, args.stats, args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())

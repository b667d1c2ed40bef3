"""Helpers of the backup and restore tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enlace.v1 import node_pb2
from node.home import NodeHome
from node.runtime import NodeRuntime, open_runtime
from node.server.factory import build_server

PING = "/enlace.v1.NodeService/Ping"


@contextmanager
def serving_in_place_of_pan(live: Any, target: Path) -> Iterator[NodeRuntime]:
    """The original PAN stops; the node restored at ``target`` serves in its place and answers
    CRI's signed Ping (its runtime is yielded while it serves)."""
    live.servers.pop("PAN").stop(grace=0.5)
    restored = open_runtime(NodeHome(target), live.clocks["PAN"])
    server = build_server(restored)
    server.start()
    try:
        with live.client("CRI", "PAN") as client:
            assert client.call(PING, node_pb2.PingRequest(), node_pb2.PingResponse).message
        yield restored
    finally:
        server.stop(grace=0.5)
        restored.close()

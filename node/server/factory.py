"""Assemble a node server with every service this node offers.

One place lists the services and the authoriser rule of each, so adding a capability means
adding its method table and its rule here — never a handler that skips the pipeline.
"""

from __future__ import annotations

from node.runtime import NodeRuntime
from node.server.app import NodeServer
from node.server.authorize import default_authorizer


def build_server(runtime: NodeRuntime, *, listen: str | None = None) -> NodeServer:
    return NodeServer(runtime, authorizer=default_authorizer(), listen=listen)

"""``enlace.v1.NodeService``: self-description, reachability and the directory this node holds."""

from __future__ import annotations

from crypto.envelope import format_time
from enlace.v1 import node_pb2
from node import PROTOCOL_VERSION, __version__
from node.server.pipeline import CallContext, MethodSpec

SERVICE = "enlace.v1.NodeService"
MAX_PING_PAYLOAD = 64 * 1024


def get_info(ctx: CallContext, request: node_pb2.GetInfoRequest) -> node_pb2.GetInfoResponse:
    config = ctx.runtime.config
    directory = ctx.runtime.directory.peek()
    response = node_pb2.GetInfoResponse(
        country=config.country,
        name=config.name,
        roles=list(config.roles),
        software_version=__version__,
        protocol_version=PROTOCOL_VERSION,
        directory_version=directory.version if directory else 0,
    )
    for provider in ctx.runtime.info_providers:
        provider(response)
    return response


def ping(ctx: CallContext, request: node_pb2.PingRequest) -> node_pb2.PingResponse:
    from node.errors import InvalidArgumentError

    if len(request.payload) > MAX_PING_PAYLOAD:
        raise InvalidArgumentError(
            f"payload of {len(request.payload)} bytes exceeds {MAX_PING_PAYLOAD}", field="payload"
        )
    return node_pb2.PingResponse(payload=request.payload, server_time=format_time(ctx.now))


def get_directory(
    ctx: CallContext, request: node_pb2.GetDirectoryRequest
) -> node_pb2.GetDirectoryResponse:
    directory = ctx.runtime.directory.current(ctx.now)
    if request.known_version >= directory.version:
        return node_pb2.GetDirectoryResponse(version=directory.version)
    return node_pb2.GetDirectoryResponse(
        version=directory.version, directory_json=directory.to_json().encode()
    )


def method_specs() -> list[MethodSpec]:
    return [
        MethodSpec(f"/{SERVICE}/GetInfo", "node", node_pb2.GetInfoRequest, get_info),
        MethodSpec(f"/{SERVICE}/Ping", "node", node_pb2.PingRequest, ping),
        MethodSpec(f"/{SERVICE}/GetDirectory", "node", node_pb2.GetDirectoryRequest, get_directory),
    ]

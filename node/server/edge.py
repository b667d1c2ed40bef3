"""The gRPC edge: the only place where domain errors become status codes.

Refusals carry the node's signed response header in the ``enlace-response-bin`` trailing
metadata, so a caller can prove what it was told and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from crypto.envelope import Sealed
from enlace.v1 import envelope_pb2
from node.errors import EnlaceError
from node.server.pipeline import MethodSpec, Outcome, Pipeline

RESPONSE_TRAILER = "enlace-response-bin"
log = logging.getLogger("node.server")

STATUS = {
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "DEADLINE_EXCEEDED": grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: EnlaceError) -> grpc.StatusCode:
    return STATUS.get(error.status_name, grpc.StatusCode.INTERNAL)


def to_proto(sealed: Sealed) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(header=sealed.header, signature=sealed.signature, body=sealed.body)


def from_proto(message: envelope_pb2.Envelope) -> Sealed:
    return Sealed(bytes(message.header), bytes(message.signature), bytes(message.body))


def peer_certificate(context: grpc.ServicerContext) -> bytes | None:
    """The PEM client certificate of the TLS session, or None on a plaintext channel."""
    auth = context.auth_context()
    certs = auth.get("x509_pem_cert")
    return bytes(certs[0]) if certs else None


def abort(context: grpc.ServicerContext, error: EnlaceError, response: Sealed) -> NoReturn:
    context.set_trailing_metadata(((RESPONSE_TRAILER, to_proto(response).SerializeToString()),))
    context.abort(status_code(error), str(error))


def _handle(
    pipeline: Pipeline,
    spec: MethodSpec,
    request: envelope_pb2.Envelope,
    context: grpc.ServicerContext,
) -> Outcome:
    """The pipeline's outcome; if even the refusal could not be audited (the database or the
    disk failed), UNAVAILABLE without details: gRPC would otherwise answer UNKNOWN with the
    exception's text, SQL and connection details included."""
    tls = peer_certificate(context) if pipeline.require_tls else None
    try:
        return pipeline.handle(spec, from_proto(request), tls)
    except Exception:
        log.exception("%s could not be answered nor audited", spec.full_name)
        context.abort(
            grpc.StatusCode.UNAVAILABLE,
            "this node cannot answer now: its store failed and nothing was recorded — retry later",
        )


def unary_handler(
    pipeline: Pipeline, spec: MethodSpec
) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], envelope_pb2.Envelope]:
    """Bind ``spec`` to the pipeline as a gRPC unary behaviour."""

    def behaviour(
        request: envelope_pb2.Envelope, context: grpc.ServicerContext
    ) -> envelope_pb2.Envelope:
        outcome = _handle(pipeline, spec, request, context)
        if outcome.error is not None:
            abort(context, outcome.error, outcome.response)
        return to_proto(outcome.response)

    return behaviour


def stream_handler(
    pipeline: Pipeline, spec: MethodSpec
) -> Callable[[envelope_pb2.Envelope, grpc.ServicerContext], Iterator[envelope_pb2.Envelope]]:
    """Bind a streaming ``spec``: the same single pass through the pipeline, then each signed
    message in order; a refusal is raised before anything is sent."""

    def behaviour(
        request: envelope_pb2.Envelope, context: grpc.ServicerContext
    ) -> Iterator[envelope_pb2.Envelope]:
        outcome = _handle(pipeline, spec, request, context)
        if outcome.error is not None:
            abort(context, outcome.error, outcome.response)
        for response in outcome.responses or [outcome.response]:
            yield to_proto(response)

    return behaviour


def generic_handler(
    pipeline: Pipeline, service_name: str, specs: list[MethodSpec]
) -> grpc.GenericRpcHandler:
    handlers: dict[str, Any] = {}
    for spec in specs:
        method = spec.full_name.rsplit("/", 1)[1]
        if spec.streaming:
            handlers[method] = grpc.unary_stream_rpc_method_handler(
                stream_handler(pipeline, spec),
                request_deserializer=envelope_pb2.Envelope.FromString,
                response_serializer=envelope_pb2.Envelope.SerializeToString,
            )
            continue
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            unary_handler(pipeline, spec),
            request_deserializer=envelope_pb2.Envelope.FromString,
            response_serializer=envelope_pb2.Envelope.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service_name, handlers)

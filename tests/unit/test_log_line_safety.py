"""What a peer sent reaches the node's log without control characters that would act on its
reader: ESC and CSI (a terminal running ``tail -f`` obeys them), line separators (forged
lines) and the bidirectional overrides (text shown in another order than it is)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from crypto.envelope import EncodingError, decode_header
from node.ops import logging_json
from node.peer_checks import printable, text_problem

HOSTILE = "PAN\x1b]0;owned\x07\x1b[2J\u202eNAP\u2028forged line\x9b\x7f"


@pytest.fixture
def captured() -> Iterator[logging.Handler]:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    kept = {h: (h.formatter, list(h.filters)) for h in root.handlers}  # install() changes them
    yield handler
    for other, (formatter, filters) in kept.items():
        other.setFormatter(formatter)
        other.filters[:] = filters
    root.removeHandler(handler)


def _written(handler: logging.Handler) -> str:
    stream = handler.stream  # type: ignore[attr-defined]
    return str(stream.getvalue())


def test_text_lines_keep_line_feeds_and_lose_the_rest(captured: logging.Handler) -> None:
    logging_json.install({})
    logging.getLogger("node.test").warning("refused %s:\n\tsecond line", HOSTILE)
    line = _written(captured)
    assert "refused PAN" in line and ":\n\tsecond line" in line
    for bad in ("\x1b", "\x07", "\u202e", "\u2028", "\x9b", "\x7f"):
        assert bad not in line, repr(bad)
    assert line.count("\ufffd") == 7


def test_json_lines_escape_them(captured: logging.Handler) -> None:
    logging_json.install({"ENLACE_LOG_FORMAT": "json"})
    logging.getLogger("node.test").warning("refused %s", HOSTILE)
    line = _written(captured).strip()
    assert json.loads(line)["message"] == f"refused {HOSTILE}"  # nothing lost
    assert all(ch.isprintable() for ch in line), line
    assert "\\u202e" in line and "\\u009b" in line and "\\u2028" in line


def test_peer_text_with_invisible_controls_is_refused_or_replaced() -> None:
    for sneaky in ("\u202e", "\u2066", "\u2028"):
        assert "control character" in text_problem("code", f"NIC{sneaky}A", 40)
        assert sneaky not in printable(f"NIC{sneaky}A")
    assert text_problem("code", "Ñandú — São Tomé", 40) == ""  # letters are letters
    # A right-to-left mark is part of ordinary Hebrew and Arabic text: kept.
    address = "\u200fרחוב הירקון 1\u200f, Tel Aviv"
    assert text_problem("address", address, 80) == "" and printable(address) == address


def test_a_header_field_name_is_quoted_escaped() -> None:
    header = b'{"\\u001b[2Jx":"1"}'
    with pytest.raises(EncodingError) as caught:
        decode_header(header)
    assert "\x1b" not in str(caught.value) and "\\x1b[2Jx" in str(caught.value)

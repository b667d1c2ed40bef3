"""Structured logs: one JSON object per line, carrying the request id when there is one.

Why: log collectors (Loki, Elasticsearch, journald exporters) index fields, not prose. With
``ENLACE_LOG_FORMAT=json`` every record becomes a single line like::

    {"time": "2026-11-28T12:00:00.123Z", "level": "INFO", "logger": "node.access",
     "message": "…", "request_id": "3f2a…", "method": "/enlace.v1.NodeService/Ping",
     "peer": "CRI", "status": "OK", "seconds": 0.004}

The request id is the first 16 hex digits of the request digest — the SHA-256 of the signed
request header, the same value the audit log stores as ``request_digest`` — so a log line,
an audit entry and the caller's own records point at the same exchange.

Invariants: a record always serialises (values that are not JSON become strings); fields set
with ``extra=`` win over the call context; nothing here reads request bodies or keys.

Third-party libraries log at INFO what means nothing to an operator (alembic's "Context impl
SQLiteImpl.", faiss's "Loading faiss with AVX2 support."). :func:`install` puts a
:class:`ThirdPartyFilter` on the root handlers, so the log holds the node's own records at the
configured level and other libraries' records from WARNING up; at ``DEBUG`` it holds them all.

A log line may quote what a peer sent before it was authenticated (a refused header's
method, a peer's error text). Neither format lets it act on whoever reads the log: in text,
:class:`SafeText` replaces every control character but line feeds and tabs (ESC, CSI, the
bidirectional overrides) with U+FFFD, so ``tail -f`` in a terminal obeys no escape sequence
and no line is forged; in JSON the same characters are written as ``\\u`` escapes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from node.peer_checks import CONTROL_IN_TEXT

#: (request digest, method) of the call this thread is handling, for log records. Set by the
#: server's request pipeline; defined here so that logging needs nothing of the server.
CURRENT_CALL: ContextVar[tuple[str, str]] = ContextVar("enlace_current_call", default=("", ""))


FORMAT_VARIABLE = "ENLACE_LOG_FORMAT"
#: The top-level loggers of this project; every other logger is a third-party library's.
OWN_LOGGERS = ("node", "crypto", "policies", "enlace")
REQUEST_ID_LENGTH = 16
ACCESS_LOGGER = "node.access"

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def request_id(digest: str) -> str:
    return digest[:REQUEST_ID_LENGTH]


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        out: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        digest, method = CURRENT_CALL.get()
        if digest:
            out["request_id"] = request_id(digest)
            out["method"] = method
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        line = json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))
        # json escapes C0 controls itself; DEL, C1 and the bidirectional controls it keeps.
        return CONTROL_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def own_logger(name: str) -> bool:
    """True for this project's loggers (``node``, ``node.server``, ``crypto.…``)."""
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class ThirdPartyFilter(logging.Filter):
    """Pass every record of the node's own loggers (their level decides), and third-party
    records only from WARNING up, unless the root logger is at DEBUG or below.

    The root level is read at each record, so ``enlace serve`` setting it from ``node.toml``
    after start-up is followed; the libraries' own levels are left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or own_logger(record.name):
            return True
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


def install(environ: Mapping[str, str] | None = None) -> bool:
    """Set up the root handlers: third-party records below WARNING left out unless the level
    is DEBUG (:class:`ThirdPartyFilter`), and JSON when ``ENLACE_LOG_FORMAT=json``.
    True if switched to JSON."""
    env = os.environ if environ is None else environ
    wanted = env.get(FORMAT_VARIABLE, "text").strip().lower()
    root = logging.getLogger()
    if wanted == "json" and not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not any(isinstance(f, ThirdPartyFilter) for f in handler.filters):
            handler.addFilter(ThirdPartyFilter())
    if wanted not in ("json", "text", ""):
        logging.getLogger("node").warning(
            "%s=%r is unknown; use json or text", FORMAT_VARIABLE, wanted
        )
    if wanted != "json":
        for handler in root.handlers:
            if not isinstance(handler.formatter, SafeText):
                handler.setFormatter(SafeText(handler.formatter))
        return False
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    return True


class SafeText(logging.Formatter):
    """Another formatter's lines with control characters (but line feeds and tabs) replaced."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return CONTROL_IN_TEXT.sub("\ufffd", self.inner.format(record))


class AccessLog:
    """A call observer writing one ``node.access`` record per call (INFO; refusals too)."""

    def __init__(self) -> None:
        self.log = logging.getLogger(ACCESS_LOGGER)

    def __call__(self, method: str, status: str, peer: str, seconds: float, digest: str) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        self.log.info(
            "%s %s from %s in %.1f ms",
            method,
            status,
            peer or "?",
            seconds * 1000,
            extra={
                "request_id": request_id(digest),
                "method": method,
                "peer": peer,
                "status": status,
                "seconds": round(seconds, 6),
            },
        )

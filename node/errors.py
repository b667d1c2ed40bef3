"""The one exception hierarchy of :mod:`node`.

Domain code raises these; only the gRPC edge (:mod:`node.server.edge`) translates them into
status codes, and only the peer client turns ``grpc.RpcError`` back into :class:`PeerError`.
Each error carries a ``hint``: what the operator or the caller should do about it.

::

    EnlaceError                          (status)
    ├── AuthenticationError              UNAUTHENTICATED   bad signature, unknown key, replay, skew
    ├── PermissionDeniedError            PERMISSION_DENIED no agreement / not granted
    ├── ResourceExhaustedError           RESOURCE_EXHAUSTED quota or privacy budget spent
    ├── InvalidArgumentError             INVALID_ARGUMENT  malformed input (names the field)
    ├── FailedPreconditionError          FAILED_PRECONDITION stale epoch, expired directory
    ├── NotFoundError                    NOT_FOUND
    ├── UnavailableError                 UNAVAILABLE       peer down or unreachable
    ├── InternalError                    INTERNAL          a bug; details only in the node's log
    ├── ConfigError                      (local) node home or configuration is unusable
    ├── StoreError                       (local) the database refused or is inconsistent
    │   └── AuditIntegrityError          the audit chain does not verify
    └── PeerError                        (client side) a peer call failed; carries the status
"""

from __future__ import annotations


class EnlaceError(Exception):
    """Base of every error the node raises on purpose."""

    status_name = "UNKNOWN"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class AuthenticationError(EnlaceError):
    status_name = "UNAUTHENTICATED"


class PermissionDeniedError(EnlaceError):
    status_name = "PERMISSION_DENIED"


class ResourceExhaustedError(EnlaceError):
    status_name = "RESOURCE_EXHAUSTED"


class InvalidArgumentError(EnlaceError):
    status_name = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str = "", hint: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, hint=hint)
        self.field = field


class FailedPreconditionError(EnlaceError):
    status_name = "FAILED_PRECONDITION"


class NotFoundError(EnlaceError):
    status_name = "NOT_FOUND"


class UnavailableError(EnlaceError):
    status_name = "UNAVAILABLE"


class InternalError(EnlaceError):
    """A bug or an unexpected failure at this node; the details stay in its log."""

    status_name = "INTERNAL"


class ConfigError(EnlaceError):
    status_name = "FAILED_PRECONDITION"


class StoreError(EnlaceError):
    status_name = "INTERNAL"


class AuditIntegrityError(StoreError):
    """The audit chain was edited, truncated or reordered; ``position`` says where."""

    def __init__(self, message: str, *, position: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.position = position


class PeerError(EnlaceError):
    """A call to a peer failed. ``status_name`` is the gRPC status the peer (or transport) gave."""

    def __init__(self, message: str, *, peer: str, status_name: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.peer = peer
        self.status_name = status_name


_BY_STATUS: dict[str, type[EnlaceError]] = {
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "RESOURCE_EXHAUSTED": ResourceExhaustedError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "FAILED_PRECONDITION": FailedPreconditionError,
}


def from_policy(error: Exception) -> EnlaceError:
    """Carry an error of :mod:`policies` (which has its own hierarchy) into the node's."""
    status = getattr(error, "status_name", "PERMISSION_DENIED")
    kind = _BY_STATUS.get(status, PermissionDeniedError)
    message = getattr(error, "message", str(error))
    hint = getattr(error, "hint", "")
    translated = kind(message, hint=hint)
    translated.__cause__ = error
    return translated

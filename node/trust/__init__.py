"""Trust anchor of the federation: member descriptors and the signed federation directory.

* :mod:`node.trust.member` — the public descriptor of one node (``HOME/member.json``).
* :mod:`node.trust.directory` — the directory document, its canonical bytes, threshold
  verification of roots and updates (TUF-style key rotation), and lookups; a
  :class:`~node.trust.directory.Directory` is the ``KeyResolver`` envelope checks use.
* :mod:`node.trust.authoring` — building, editing and signing a directory (the key holders'
  side, ``enlace directory …``).
* :mod:`node.trust.freshness` — warning / grace / expired states and the atomic
  installation of a new copy into the node home.

Everything here except :mod:`node.trust.freshness`'s file helpers is pure; time is passed in.
"""

from __future__ import annotations

from node.trust.authoring import add_member, new_directory, remove_member, sign_directory
from node.trust.directory import (
    FEDERATION,
    FORMAT,
    SIGNATURE_CONTEXT,
    Directory,
    DirectoryExpiredError,
    DirectoryKey,
    DirectoryLookupError,
    DirectoryRollbackError,
    DirectorySignature,
    DirectorySignatureError,
    KeyResolver,
    SignatureCount,
    count_signatures,
    directory_hash,
    parse_directory_json,
    verify_chain,
    verify_root,
    verify_update,
)
from node.trust.freshness import (
    DEFAULT_GRACE,
    DEFAULT_WARN_BEFORE,
    DIRECTORY_FILE,
    Freshness,
    FreshnessState,
    check_freshness,
    install_directory,
    load_trusted,
    read_directory,
)
from node.trust.member import (
    ROLES,
    SECRETARIAT_COUNTRY,
    DirectoryError,
    DirectoryFormatError,
    FocalPoint,
    MemberDescriptor,
    MemberSigningKey,
    tls_fingerprint,
    tls_fingerprint_der,
)

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_WARN_BEFORE",
    "DIRECTORY_FILE",
    "FEDERATION",
    "FORMAT",
    "ROLES",
    "SECRETARIAT_COUNTRY",
    "SIGNATURE_CONTEXT",
    "Directory",
    "DirectoryError",
    "DirectoryExpiredError",
    "DirectoryFormatError",
    "DirectoryKey",
    "DirectoryLookupError",
    "DirectoryRollbackError",
    "DirectorySignature",
    "DirectorySignatureError",
    "FocalPoint",
    "Freshness",
    "FreshnessState",
    "KeyResolver",
    "MemberDescriptor",
    "MemberSigningKey",
    "SignatureCount",
    "add_member",
    "check_freshness",
    "count_signatures",
    "directory_hash",
    "install_directory",
    "load_trusted",
    "new_directory",
    "parse_directory_json",
    "read_directory",
    "remove_member",
    "sign_directory",
    "tls_fingerprint",
    "tls_fingerprint_der",
    "verify_chain",
    "verify_root",
    "verify_update",
]

"""Building and signing the federation directory: the key holders' side.

Why apart from :mod:`node.trust.directory`: every node parses and verifies directories on
every start and refresh, but only the holders of directory keys (the Secretariat and the
members it names) write them, with ``enlace directory …``. Keeping the writing here leaves the
verifying module to what every node runs.

Invariants:
* Any change to the body returns an **unsigned** directory: the old signatures covered the old
  bytes, so they are dropped rather than left to fail verification later.
* :func:`sign_directory` signs the canonical body under the directory's signature context; a
  key signs at most once (signing again replaces its signature).
* Members are kept sorted by country, so the same membership always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from crypto.signing import SigningKey
from node.trust.directory import (
    FEDERATION,
    FORMAT,
    SIGNATURE_CONTEXT,
    Directory,
    DirectoryKey,
    DirectorySignature,
)
from node.trust.member import MemberDescriptor, country_code, format_time


def new_directory(
    *,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    threshold: int,
    directory_keys: Sequence[DirectoryKey],
    members: Sequence[MemberDescriptor] = (),
    federation: str = FEDERATION,
) -> Directory:
    """An unsigned directory; collect ``threshold`` signatures with :func:`sign_directory`."""
    return Directory.from_dict(
        {
            "format": FORMAT,
            "federation": federation,
            "version": version,
            "issued_at": format_time(issued_at),
            "expires_at": format_time(expires_at),
            "threshold": threshold,
            "directory_keys": [k.to_dict() for k in directory_keys],
            "members": [m.to_dict() for m in sorted(members, key=lambda m: m.country)],
        }
    )


def _with_members(directory: Directory, members: Iterable[MemberDescriptor]) -> Directory:
    body = json.loads(directory.body)
    body["members"] = [m.to_dict() for m in sorted(members, key=lambda m: m.country)]
    return Directory.from_dict(body)  # signatures dropped: they covered the old body


def add_member(directory: Directory, member: MemberDescriptor) -> Directory:
    """Add or replace (same country) a member. The result is unsigned: the body changed."""
    others = [m for m in directory.members if m.country != member.country]
    return _with_members(directory, [*others, member])


def remove_member(directory: Directory, country: str) -> Directory:
    """Drop a member (e.g. revocation). The result is unsigned: the body changed."""
    directory.member(country_code(country))
    return _with_members(directory, [m for m in directory.members if m.country != country])


def sign_directory(directory: Directory, signing_key: SigningKey) -> Directory:
    """Append (or refresh) this key's signature over the canonical body."""
    signature = DirectorySignature(
        signing_key.key_id, signing_key.sign(SIGNATURE_CONTEXT, directory.body)
    )
    kept = [s for s in directory.signatures if s.key_id != signing_key.key_id]
    data = directory.to_dict()
    data["signatures"] = [s.to_dict() for s in [*kept, signature]]
    return Directory.from_dict(data)

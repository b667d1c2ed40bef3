"""What :func:`node.ops.backup.restore_node` checks before it writes a single byte.

Why a module of its own: a restore that fails half-way leaves an operator with a home that is
neither the old node nor the restored one, and every retry refused. So everything that can be
known from the archive and the target alone is checked first — the target's state, the
backend, the configuration, and, for a backup made ``--without-keys``, the keys the operator
put in place. Only then does the restore write, into a staging folder it can throw away.

Invariants:

* A target is usable when it does not exist or is an empty folder; for a backup without keys
  it must hold ``keys/`` and nothing else (the keys are kept elsewhere, e.g. an HSM export or
  a sealed copy, precisely so that the archive does not carry them).
* Keys provided for a keyless backup must be the node's: the signing key is one that the
  backup's ``member.json`` and its directory entry list for the node, the X25519 key is the
  one published there, the TLS key belongs to the backed-up certificate (and the pending
  rollover certificate, if a TLS rotation was under way). Another node's keys, or a set with
  a key missing, are refused — a node restored with them would sign as someone it is not, or
  not at all.
* Every error names the file and says how to fix it; none of these functions writes.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.errors import CryptoError
from crypto.keys import read_hex_key, tls_key_matches
from crypto.signing import SigningKey
from node.errors import ConfigError, EnlaceError
from node.trust.directory import DirectoryLookupError, parse_directory_json
from node.trust.member import MemberDescriptor

KEYS = "keys"
# Every key `enlace init` creates; a node missing one would create a different one silently
# (matching filters, cell keys) or fail to start.
REQUIRED_KEY_FILES = ("signing.key", "x25519.key", "oprf-master.key", "cellkey.key", "tls.key")
_HINT_KEYS = "put back the node's own keys/ folder, as kept when the backup was made"


def keys_excluded(files: dict[str, str]) -> bool:
    """Whether the backup was made ``--without-keys`` (its manifest lists no key file)."""
    return not any(name.startswith(f"home/{KEYS}/") for name in files)


def check_target(root: Path, without_keys: bool, archive: Path) -> None:
    """Refuse a target that holds anything a restore could clobber or mix with."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="restore into a new, empty --home")
    present = sorted(p.name for p in root.iterdir()) if root.exists() else []
    if without_keys:
        if present == [KEYS] and (root / KEYS).is_dir():
            return
        if KEYS not in present:
            raise ConfigError(
                f"{archive} was made without keys and {root / KEYS} is missing",
                hint=f"create {root} holding only the node's keys/ folder (mode 0600 files), "
                "then run restore again",
            )
        others = ", ".join(name for name in present if name != KEYS)
        raise ConfigError(
            f"{root} already holds a node ({others} next to keys/); refusing to restore over it",
            hint=f"restore into a folder that holds only keys/; move {others} away first",
        )
    if present:
        raise ConfigError(
            f"{root} already holds a node ({', '.join(present)}); refusing to restore over it",
            hint="restore into a new, empty --home (this backup brings its own keys)",
        )


def restored_settings(contents: dict[str, bytes], database_url: str) -> dict[str, Any]:
    """The restored ``node.toml``: the archive's, pointed at the database restored into."""
    raw = contents.get("home/node.toml")
    if raw is None:
        raise ConfigError("the backup holds no home/node.toml", hint="use another backup")
    try:
        settings: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the backup's node.toml does not parse ({exc})") from None
    settings.pop("database_url", None)  # the old location is not this node's any more
    if database_url:
        settings["database_url"] = database_url
    return settings


def _descriptor(contents: dict[str, bytes]) -> MemberDescriptor:
    raw = contents.get("home/member.json")
    if raw is None:
        raise ConfigError("the backup holds no home/member.json", hint="use another backup")
    try:
        return MemberDescriptor.from_json(raw)
    except EnlaceError as exc:
        raise ConfigError(f"the backup's member.json is not valid ({exc.message})") from None


def _listed_in_directory(contents: dict[str, bytes], country: str, kid: str) -> bool:
    raw = contents.get("home/directory.json")
    if raw is None:
        return True  # a node not yet in a directory: member.json is all there is
    try:
        entry = parse_directory_json(raw).member(country)
    except DirectoryLookupError:
        return True
    except EnlaceError as exc:
        raise ConfigError(f"the backup's directory.json is not valid ({exc.message})") from None
    return entry.signing_key(kid) is not None


def _private_file(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        raise ConfigError(
            f"key file {path} is readable by other users", hint=f"run chmod 600 {path}"
        )
    return path.read_bytes()


def _check_tls(keys: Path, contents: dict[str, bytes], key_name: str, cert_name: str) -> None:
    cert = contents.get(f"home/{cert_name}")
    if cert is None:
        raise ConfigError(f"the backup holds no home/{cert_name}", hint="use another backup")
    path = keys / key_name
    if not path.is_file():
        raise ConfigError(f"{path} is missing", hint=_HINT_KEYS)
    try:
        matches = tls_key_matches(_private_file(path), cert)
    except CryptoError as exc:
        raise ConfigError(f"{path} is not a TLS private key ({exc})", hint=_HINT_KEYS) from None
    if not matches:
        raise ConfigError(
            f"{path} is not the key of the backed-up certificate {cert_name}",
            hint=f"these are not this node's keys; {_HINT_KEYS}",
        )


def check_provided_keys(keys: Path, contents: dict[str, bytes]) -> None:
    """The keys an operator put in ``keys`` are this node's, complete and private."""
    member = _descriptor(contents)
    missing = [name for name in REQUIRED_KEY_FILES if not (keys / name).is_file()]
    if missing:
        raise ConfigError(f"{keys} lacks {', '.join(missing)}", hint=_HINT_KEYS)
    try:
        signing = SigningKey(read_hex_key(keys / "signing.key"))
        x_private = read_hex_key(keys / "x25519.key")
        for secret in ("oprf-master.key", "cellkey.key"):
            read_hex_key(keys / secret)
        for archived in sorted(keys.glob("signing-*.key")):
            read_hex_key(archived)
    except CryptoError as exc:
        raise ConfigError(str(exc), hint=_HINT_KEYS) from None
    listed = member.signing_key(signing.key_id)
    if (
        listed is None
        or listed.public_key != signing.public_key
        or not _listed_in_directory(contents, member.country, signing.key_id)
    ):
        known = ", ".join(k.key_id for k in member.signing_keys)
        raise ConfigError(
            f"{keys / 'signing.key'} holds key {signing.key_id}, which is not a signing key of "
            f"{member.country} in the backup (it lists {known})",
            hint=f"these are not this node's keys; {_HINT_KEYS}",
        )
    x_public = (
        x25519.X25519PrivateKey.from_private_bytes(x_private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    if x_public != member.x25519_public_key:
        raise ConfigError(
            f"{keys / 'x25519.key'} is not the X25519 key {member.country} publishes",
            hint=f"these are not this node's keys; {_HINT_KEYS}",
        )
    _check_tls(keys, contents, "tls.key", "tls.crt")
    if "home/tls-next.json" in contents:  # a TLS rotation was pending at backup time
        _check_tls(keys, contents, "tls-next.key", "tls-next.crt")

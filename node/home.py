"""The node home: one directory holding a node's configuration, keys, directory and database.

Layout::

    HOME/node.toml          configuration (ENLACE_* variables override it)
    HOME/keys/signing.key   Ed25519 seed, hex, 0600
    HOME/keys/x25519.key    X25519 private key, hex, 0600
    HOME/keys/oprf-master.key  OPRF master secret (matching filters), hex, 0600
    HOME/keys/cellkey.key   cell-key perturbation secret, hex, 0600
    HOME/keys/tls.key       TLS private key (PEM), 0600
    HOME/tls.crt            self-signed TLS certificate (public)
    HOME/member.json        public descriptor to send to the directory administrators
    HOME/directory.json     the last verified federation directory
    HOME/enlace.db          SQLite database (unless ENLACE_DATABASE_URL names another)

Invariants: :func:`init_home` never overwrites key material, and writes the configuration only
after every key exists, so a half-initialised home is detected and reported on next use.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import CryptoError
from crypto.keys import KeyPaths, make_tls_certificate
from crypto.signing import SigningKey
from node.config import CONFIG_FILE, NodeConfig, load_config
from node.errors import ConfigError, EnlaceError
from node.store.database import default_sqlite_url
from node.trust.member import MemberDescriptor

SIGNING_KEY_VALIDITY = dt.timedelta(days=730)


@dataclass(frozen=True)
class NodeHome:
    """A node home directory; loading is lazy so commands touch only what they need."""

    root: Path

    @property
    def keys(self) -> KeyPaths:
        return KeyPaths(self.root)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def member_path(self) -> Path:
        return self.root / "member.json"

    @property
    def directory_path(self) -> Path:
        return self.root / "directory.json"

    def config(self) -> NodeConfig:
        return load_config(self.root)

    def database_url(self, config: NodeConfig | None = None) -> str:
        cfg = config or self.config()
        return cfg.database_url or default_sqlite_url(self.root)

    def signing_key(self) -> SigningKey:
        try:
            return self.keys.load_signing_key()
        except CryptoError as exc:
            raise ConfigError(str(exc), hint="check the node home or run `enlace init`") from exc

    def member(self) -> MemberDescriptor:
        try:
            return MemberDescriptor.from_dict(json.loads(self.member_path.read_text("utf-8")))
        except FileNotFoundError as exc:
            raise ConfigError(f"{self.member_path} is missing", hint="run `enlace init`") from exc


def _check_descriptor_rules(
    config: NodeConfig, host: str, now: dt.datetime, focal_points: tuple[tuple[str, str], ...]
) -> None:
    """Build a throwaway descriptor first, so rules peers enforce (the Secretariat is CRM and
    only CRM, endpoints without spaces…) fail before any key is written."""
    _, cert_pem = make_tls_certificate(config.country, now, days=1, extra_hosts=(host,))
    try:
        MemberDescriptor.build(
            country=config.country,
            name=config.name,
            endpoint=config.endpoint,
            roles=config.roles,
            signing_public_keys=[SigningKey.generate().public_key],
            not_before=now,
            not_after=now + SIGNING_KEY_VALIDITY,
            x25519_public_key=bytes(32),
            tls_certificate_pem=cert_pem.decode("ascii"),
            focal_points=focal_points,
        )
    except EnlaceError as exc:
        raise ConfigError(
            exc.message, hint=exc.hint or "fix the option and run init again"
        ) from exc


def init_home(
    root: Path,
    *,
    country: str,
    name: str,
    endpoint: str,
    roles: tuple[str, ...],
    now: dt.datetime,
    database_url: str = "",
    directory_source: str = "",
    focal_points: tuple[tuple[str, str], ...] = (),
) -> NodeHome:
    """Create a node home with fresh keys; refuse if keys or a configuration already exist."""
    config = NodeConfig(
        country=country.upper(),
        name=name,
        endpoint=endpoint,
        roles=roles,
        database_url=database_url,
        directory_source=directory_source,
        focal_points=tuple(email for _, email in focal_points),
    ).validate()
    home = NodeHome(root)
    if home.config_path.exists():
        raise ConfigError(
            f"{home.config_path} already exists; refusing to re-initialise this node",
            hint="choose another --home, or remove the old home after backing it up",
        )
    host = endpoint.rpartition(":")[0]
    _check_descriptor_rules(config, host, now, focal_points)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    try:
        home.keys.create_all(config.country, now, hosts=(host, "localhost"))
    except CryptoError as exc:
        raise ConfigError(
            str(exc), hint="this home already holds keys; use another --home"
        ) from exc
    signing = home.keys.load_signing_key()
    _, cert_pem = home.keys.load_tls()
    member = MemberDescriptor.build(
        country=config.country,
        name=name,
        endpoint=endpoint,
        roles=roles,
        signing_public_keys=[signing.public_key],
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + SIGNING_KEY_VALIDITY,
        x25519_public_key=home.keys.x25519_public(),
        tls_certificate_pem=cert_pem.decode("ascii"),
        focal_points=focal_points,
    )
    home.member_path.write_text(
        json.dumps(member.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    tmp = home.config_path.with_suffix(".tmp")
    tmp.write_text(config.to_toml(), encoding="utf-8")
    os.replace(tmp, home.config_path)
    return home

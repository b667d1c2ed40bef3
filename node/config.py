"""Node configuration: ``node.toml`` in the node home, every value overridable by environment.

Why both: operators keep a reviewed file under configuration management, while containers and
CI set ``ENLACE_*`` variables (``ENLACE_DATABASE_URL``, ``ENLACE_LISTEN``…) without editing it.
The environment wins over the file; the file wins over the defaults.

Invariants: a loaded :class:`NodeConfig` has an upper-case ISO3 country, a ``host:port``
endpoint, known roles and positive windows; anything else raises :class:`ConfigError` naming
the key and the source it came from.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from node.errors import ConfigError

CONFIG_FILE = "node.toml"
KNOWN_ROLES = frozenset({"member", "secretariat", "helper"})


@dataclass(frozen=True)
class NodeConfig:
    """Everything a node needs to know about itself that is not key material."""

    country: str
    name: str
    endpoint: str
    roles: tuple[str, ...] = ("member",)
    listen: str = ""
    database_url: str = ""
    skew_seconds: int = 120
    directory_source: str = ""
    directory_refresh_seconds: int = 3600
    directory_grace_days: int = 7
    directory_warn_days: int = 14
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: int = 60
    max_message_bytes: int = 4 * 1024 * 1024
    log_level: str = "INFO"
    focal_points: tuple[str, ...] = field(default_factory=tuple)
    metrics_listen: str = ""  # host:port of the Prometheus endpoint; empty: no endpoint

    @property
    def listen_address(self) -> str:
        return self.listen or self.endpoint

    def validate(self, sources: Mapping[str, str] | None = None) -> NodeConfig:
        """Refuse values that cannot be meant; errors name the key and where it came from."""
        where = sources or {}

        def fail(name: str, problem: str, hint: str = "") -> ConfigError:
            origin = where.get(name)
            prefix = f"{origin}: " if origin else ""
            return ConfigError(f"{prefix}{name} {problem}", hint=hint)

        if (
            len(self.country) != 3
            or not (self.country.isascii() and self.country.isalpha())
            or not self.country.isupper()
        ):
            raise fail(
                "country",
                f"{self.country!r} is not an upper-case ISO 3166 alpha-3 code",
                "use e.g. PAN, CRI, HND, MEX; the Secretariat uses CRM",
            )
        for name in ("endpoint", "listen"):
            value = getattr(self, name)
            if name == "listen" and not value:
                continue
            if not _is_host_port(value):
                raise fail(name, f"{value!r} is not host:port", "e.g. 127.0.0.1:7001")
        unknown = set(self.roles) - KNOWN_ROLES
        if unknown or not self.roles:
            raise fail(
                "roles",
                f"{list(self.roles)} are not valid",
                f"choose from {', '.join(sorted(KNOWN_ROLES))}",
            )
        for name, minimum in _MINIMA.items():
            if getattr(self, name) < minimum:
                raise fail(name, f"must be at least {minimum}, not {getattr(self, name)}")
        if self.skew_seconds > MAX_SKEW_SECONDS:
            raise fail(
                "skew_seconds",
                f"must be at most {MAX_SKEW_SECONDS}, not {self.skew_seconds}",
                "synchronise the clocks (NTP) rather than widen the window",
            )
        if self.log_level.upper() not in _LOG_LEVELS:
            raise fail(
                "log_level", f"{self.log_level!r} is unknown", f"one of {', '.join(_LOG_LEVELS)}"
            )
        return self

    def to_toml(self) -> str:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v not in ("", ())}
        data["roles"] = list(self.roles)
        if self.focal_points:
            data["focal_points"] = list(self.focal_points)
        return tomli_w.dumps(data)


_FIELDS = {f.name: f for f in dataclasses.fields(NodeConfig)}
#: The widest clock window a node accepts. The replay cache keeps every nonce at least this
#: long (``node.server.pipeline``), so widening ``skew_seconds`` up to it, even between two
#: purges, can never readmit a request whose nonce was already forgotten.
MAX_SKEW_SECONDS = 600
_MINIMA = {
    "skew_seconds": 1,
    "directory_refresh_seconds": 1,
    "directory_grace_days": 0,
    "directory_warn_days": 0,
    "audit_checkpoint_every": 1,
    "audit_checkpoint_seconds": 1,
    "max_message_bytes": 1024,
}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _is_host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return (
        bool(host)
        and " " not in host
        and port.isascii()
        and port.isdigit()
        and 0 < int(port) < 65536
    )


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            # Only whole numbers: 1.9 or true are mistakes, not 1.
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise TypeError(name)
            if isinstance(value, str) and not _INTEGER.fullmatch(value.strip()):
                raise ValueError(name)
            return int(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {name} has an invalid value {value!r}") from exc


def load_config(home: Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
    """Read ``home/node.toml`` and apply ``ENLACE_<FIELD>`` overrides."""
    env = os.environ if environ is None else environ
    path = home / CONFIG_FILE
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no node configuration at {path}",
            hint="run `enlace init --home DIR --country ISO3` or set ENLACE_HOME",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in data.items():
        if key not in _FIELDS:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[key] = _coerce(key, value, str(path))
        sources[key] = str(path)
    for name in _FIELDS:
        env_value = env.get(f"ENLACE_{name.upper()}")
        if env_value is not None:
            values[name] = _coerce(name, env_value, f"ENLACE_{name.upper()}")
            sources[name] = f"ENLACE_{name.upper()}"
    for required in ("country", "name", "endpoint"):
        if required not in values:
            raise ConfigError(f"{path}: missing required setting {required!r}")
    return NodeConfig(**values).validate(sources)

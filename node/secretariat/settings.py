"""The Secretariat's settings: ``HOME/secretariat.toml``, each value overridable by environment.

Why a file of its own: only the ST node (and, for SMTP, nobody else) needs these values, and
the node configuration (``node.toml``) refuses unknown keys. The same precedence applies as
for ``node.toml``: environment (``ENLACE_ST_<NAME>``) over file over defaults.

Invariants: every value is checked on load; a bad one raises :class:`ConfigError` naming the
key and its source. The SMTP password is never stored in the file, only a path to a file
holding it (mode 0600 recommended).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import ConfigError
from node.stats.matrices import MATRICES

SETTINGS_FILE = "secretariat.toml"
ENV_PREFIX = "ENLACE_ST_"


@dataclass(frozen=True)
class SecretariatSettings:
    # pulls
    node_deadline_seconds: float = 30.0
    call_timeout_seconds: float = 20.0
    attempts: int = 3
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    max_workers: int = 12
    matrices: tuple[str, ...] = ("M01", "M02", "M03", "M04", "M05", "M06", "M07", "M08")
    regional_only: tuple[str, ...] = ("M05",)
    helper: str = ""
    # freshness and reminders
    grace_days: int = 30
    remind_every_days: int = 7
    # publication rule
    min_countries: int = 3
    min_persons: int = 5
    # outputs
    language: str = "es"
    out_dir: str = ""
    # e-mail to focal points
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password_file: str = ""
    smtp_timeout_seconds: float = 10.0

    def output_dir(self, home: Path) -> Path:
        return Path(self.out_dir) if self.out_dir else home / "secretariat"

    def validate(self, sources: Mapping[str, str] | None = None) -> SecretariatSettings:
        where = sources or {}

        def fail(name: str, problem: str) -> ConfigError:
            origin = where.get(name, "default")
            return ConfigError(f"{origin}: {name} {problem}", hint=f"fix it in {SETTINGS_FILE}")

        for name in ("node_deadline_seconds", "call_timeout_seconds", "smtp_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise fail(name, "must be positive")
        for name in ("attempts", "max_workers", "min_countries", "min_persons", "smtp_port"):
            if getattr(self, name) < 1:
                raise fail(name, "must be at least 1")
        if self.backoff_seconds < 0 or self.backoff_max_seconds < self.backoff_seconds:
            raise fail("backoff_seconds", "must be >= 0 and <= backoff_max_seconds")
        if self.grace_days < 0 or self.remind_every_days < 1:
            raise fail("grace_days", "must be >= 0 (and remind_every_days >= 1)")
        unknown = [m for m in (*self.matrices, *self.regional_only) if m not in MATRICES]
        if unknown:
            raise fail("matrices", f"name unknown matrices {unknown}")
        if self.language not in ("es", "en"):
            raise fail("language", "must be es or en")
        return self


_FIELDS = {f.name: f for f in dataclasses.fields(SecretariatSettings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = str(_FIELDS[name].type)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(name)
            return text in ("1", "true", "yes", "on")
        if kind == "int":
            if isinstance(value, (bool, float)):
                raise TypeError(name)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise TypeError(name)
            return float(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip().upper() for v in value.split(",") if v.strip())
            return tuple(str(v).upper() for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {name} has an invalid value {value!r}") from exc


def load_settings(home: Path, environ: Mapping[str, str] | None = None) -> SecretariatSettings:
    """Read ``HOME/secretariat.toml`` (optional) and apply ``ENLACE_ST_*`` overrides."""
    env = os.environ if environ is None else environ
    path = home / SETTINGS_FILE
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, value, str(path))
            sources[key] = str(path)
    for name in _FIELDS:
        variable = f"{ENV_PREFIX}{name.upper()}"
        if variable in env:
            values[name] = _coerce(name, env[variable], variable)
            sources[name] = variable
    return SecretariatSettings(**values).validate(sources)


def smtp_password(settings: SecretariatSettings) -> str:
    if not settings.smtp_password_file:
        return ""
    try:
        return Path(settings.smtp_password_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read smtp_password_file {settings.smtp_password_file}: {exc}"
        ) from exc

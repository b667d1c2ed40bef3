"""Node configuration: the file, ``ENLACE_*`` overrides, and refusal of anything invalid.

Why: containers and CI configure nodes through the environment while operators review
``node.toml``; a setting that is silently misread (an ignored typo, a truncated number) shows
up much later as a refused peer or an expired directory. Every test passes ``environ=`` so the
developer's own environment never leaks in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.config import CONFIG_FILE, NodeConfig, load_config
from node.errors import ConfigError

MINIMAL = 'country = "PAN"\nname = "Servicio Nacional de Migración"\nendpoint = "10.0.0.5:7001"\n'


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write(tmp_path, MINIMAL)
    return tmp_path


# --- the file --------------------------------------------------------------------------------


def test_minimal_file_gets_defaults(home: Path) -> None:
    config = load_config(home, environ={})
    assert config == NodeConfig(
        country="PAN", name="Servicio Nacional de Migración", endpoint="10.0.0.5:7001"
    )
    assert config.roles == ("member",)
    assert config.skew_seconds == 120
    assert config.listen_address == "10.0.0.5:7001"


def test_listen_overrides_endpoint_for_binding(home: Path) -> None:
    write(home, MINIMAL + 'listen = "0.0.0.0:7001"\n')
    config = load_config(home, environ={})
    assert config.listen_address == "0.0.0.0:7001"
    assert config.endpoint == "10.0.0.5:7001"


def test_to_toml_round_trips_every_field(tmp_path: Path) -> None:
    original = NodeConfig(
        country="CRM",
        name="Secretaría Técnica",
        endpoint="st.example.org:443",
        roles=("secretariat",),
        listen="0.0.0.0:7443",
        database_url="postgresql://enlace@db/enlace",
        skew_seconds=45,
        directory_source="peer:PAN",
        directory_refresh_seconds=600,
        directory_grace_days=3,
        directory_warn_days=10,
        audit_checkpoint_every=250,
        max_message_bytes=1 << 20,
        log_level="DEBUG",
        focal_points=("st@example.org", "guardia@example.org"),
    ).validate()
    write(tmp_path, original.to_toml())
    assert load_config(tmp_path, environ={}) == original


def test_to_toml_omits_empty_values() -> None:
    text = NodeConfig(country="PAN", name="n", endpoint="h:1").to_toml()
    assert "listen" not in text
    assert "database_url" not in text
    assert "focal_points" not in text
    assert 'roles = [\n    "member",\n]' in text or 'roles = ["member"]' in text


def test_missing_file_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="enlace init") as info:
        load_config(tmp_path, environ={})
    assert str(tmp_path / CONFIG_FILE) in info.value.message


def test_malformed_toml_names_the_file(home: Path) -> None:
    path = write(home, MINIMAL + "skew_seconds = \n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(home, environ={})


@pytest.mark.parametrize("key", ["colour", "skew", "Country", "database-url"])
def test_unknown_keys_are_refused(home: Path, key: str) -> None:
    write(home, MINIMAL + f'{key} = "x"\n')
    with pytest.raises(ConfigError, match=f"unknown setting '{key}'"):
        load_config(home, environ={})


def test_unknown_table_is_refused(home: Path) -> None:
    write(home, MINIMAL + '[tls]\ncert = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'tls'"):
        load_config(home, environ={})


@pytest.mark.parametrize("required", ["country", "name", "endpoint"])
def test_missing_required_setting_is_named(tmp_path: Path, required: str) -> None:
    lines = [line for line in MINIMAL.splitlines() if not line.startswith(required)]
    write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=f"missing required setting '{required}'"):
        load_config(tmp_path, environ={})


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('skew_seconds = "two minutes"', "skew_seconds"),
        ("skew_seconds = 0", "skew_seconds"),
        ("skew_seconds = 601", "skew_seconds"),
        ("directory_refresh_seconds = -60", "directory_refresh_seconds"),
        ("max_message_bytes = 0", "max_message_bytes"),
        ("roles = []", "roles"),
        ('roles = ["member", "auditor"]', "roles"),
        ('roles = "admin"', "roles"),
    ],
)
def test_invalid_file_values_name_the_key(home: Path, line: str, key: str) -> None:
    write(home, MINIMAL + line + "\n")
    with pytest.raises(ConfigError, match=key):
        load_config(home, environ={})


@pytest.mark.parametrize(
    ("replace", "key"),
    [
        ('country = "pan"', "country"),
        ('country = "PANA"', "country"),
        ('country = "P4N"', "country"),
        ("country = 507", "country"),
        ('endpoint = "10.0.0.5"', "endpoint"),
        ('endpoint = ":7001"', "endpoint"),
        ('endpoint = "10.0.0.5:0"', "endpoint"),
        ('endpoint = "10.0.0.5:65536"', "endpoint"),
        ('endpoint = "10.0.0.5:http"', "endpoint"),
    ],
)
def test_invalid_identity_names_the_key(tmp_path: Path, replace: str, key: str) -> None:
    lines = [line for line in MINIMAL.splitlines() if not line.startswith(key)]
    write(tmp_path, "\n".join([*lines, replace]) + "\n")
    with pytest.raises(ConfigError, match=key):
        load_config(tmp_path, environ={})


# --- ENLACE_* overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("ENLACE_LISTEN", "0.0.0.0:9000", "listen", "0.0.0.0:9000"),
        ("ENLACE_DATABASE_URL", "postgresql://db/x", "database_url", "postgresql://db/x"),
        ("ENLACE_SKEW_SECONDS", "30", "skew_seconds", 30),
        ("ENLACE_ROLES", "member, helper", "roles", ("member", "helper")),
        (
            "ENLACE_FOCAL_POINTS",
            "a@pa.example,b@pa.example",
            "focal_points",
            ("a@pa.example", "b@pa.example"),
        ),
        ("ENLACE_ENDPOINT", "pan.example:443", "endpoint", "pan.example:443"),
        ("ENLACE_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
        ("ENLACE_DIRECTORY_GRACE_DAYS", "2", "directory_grace_days", 2),
    ],
)
def test_environment_overrides_file(
    home: Path, variable: str, value: str, attribute: str, expected: object
) -> None:
    write(home, MINIMAL + 'listen = "127.0.0.1:1"\nskew_seconds = 99\nroles = ["member"]\n')
    before = load_config(home, environ={})
    assert getattr(before, attribute) != expected
    after = load_config(home, environ={variable: value})
    assert getattr(after, attribute) == expected


def test_environment_can_supply_required_settings(tmp_path: Path) -> None:
    write(tmp_path, 'name = "n"\n')
    config = load_config(
        tmp_path, environ={"ENLACE_COUNTRY": "HND", "ENLACE_ENDPOINT": "127.0.0.1:7003"}
    )
    assert (config.country, config.endpoint) == ("HND", "127.0.0.1:7003")


def test_explicit_environ_ignores_process_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENLACE_LISTEN", "0.0.0.0:1234")
    assert load_config(home, environ={}).listen == ""
    assert load_config(home).listen == "0.0.0.0:1234"


def test_unrelated_variables_are_ignored(home: Path) -> None:
    environ = {"ENLACE_HOME": "/elsewhere", "LISTEN": "x", "enlace_listen": "y"}
    assert load_config(home, environ=environ) == load_config(home, environ={})


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("ENLACE_SKEW_SECONDS", "soon", "skew_seconds"),
        ("ENLACE_MAX_MESSAGE_BYTES", "4MB", "max_message_bytes"),
        ("ENLACE_AUDIT_CHECKPOINT_EVERY", "1e3", "audit_checkpoint_every"),
    ],
)
def test_unparsable_environment_value_names_variable_and_key(
    home: Path, variable: str, value: str, key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(home, environ={variable: value})
    assert variable in str(info.value)
    assert key in str(info.value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("ENLACE_SKEW_SECONDS", "0", "skew_seconds"),
        ("ENLACE_COUNTRY", "Panama", "country"),
        ("ENLACE_ENDPOINT", "localhost", "endpoint"),
        ("ENLACE_ROLES", "member,observer", "roles"),
        ("ENLACE_ROLES", "", "roles"),
    ],
)
def test_invalid_environment_value_names_the_key(
    home: Path, variable: str, value: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(home, environ={variable: value})


def test_semantic_error_from_environment_names_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError, match="ENLACE_SKEW_SECONDS"):
        load_config(home, environ={"ENLACE_SKEW_SECONDS": "0"})


@pytest.mark.parametrize(
    "line",
    [
        "skew_seconds = 1.9",
        "skew_seconds = true",
        "directory_grace_days = -3",
        "directory_warn_days = -1",
        "audit_checkpoint_every = 0",
        'log_level = "CHATTY"',
        'listen = "nonsense"',
    ],
)
def test_other_invalid_values_are_refused(home: Path, line: str) -> None:
    write(home, MINIMAL + line + "\n")
    with pytest.raises(ConfigError, match=line.split(" =", maxsplit=1)[0]):
        load_config(home, environ={})


# --- NodeConfig.validate directly -----------------------------------------------------------


@pytest.mark.parametrize(
    "roles", [("member",), ("secretariat",), ("helper",), ("member", "helper")]
)
def test_known_roles_validate(roles: tuple[str, ...]) -> None:
    NodeConfig(country="CRM", name="n", endpoint="h:1", roles=roles).validate()


def test_validate_returns_self() -> None:
    config = NodeConfig(country="GTM", name="n", endpoint="[::1]:7001")
    assert config.validate() is config


def test_config_error_carries_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        NodeConfig(country="XX", name="n", endpoint="h:1").validate()
    assert info.value.hint
    assert info.value.status_name == "FAILED_PRECONDITION"

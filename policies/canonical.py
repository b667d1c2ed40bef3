"""Document encodings: strict YAML/JSON in, canonical JSON and readable YAML out.

Why: both parties sign the *same bytes* for an agreement although each keeps its own YAML
copy, written by hand, re-indented by an editor or converted to JSON on the way. The
signatures therefore cover a canonical JSON encoding of the parsed document, never the YAML
text, and that encoding must not depend on key order, whitespace, quoting or how a
timestamp was written.

Canonical JSON (``canonical_json``), in the spirit of RFC 8785 restricted to what
agreements need:

* objects with string keys sorted by code point, no whitespace, UTF-8 without escapes for
  non-ASCII, strings in Unicode NFC;
* integers only, within ±(2**53 - 1); floats, NaN and infinities are refused (decimal
  quantities such as a privacy epsilon are carried as decimal strings, ``decimal_text``);
* ``datetime`` values become RFC 3339 UTC strings ``YYYY-MM-DDTHH:MM:SSZ`` (with
  ``.ffffff`` only when there are microseconds); naive datetimes are refused.

Strict loading (``load_document``):

* YAML 1.1 surprises are switched off: timestamps stay strings, only ``true``/``false``
  are booleans (``no``, ``on``, ``NO``… stay strings);
* duplicate keys and aliases are refused (a signed document must mean one thing, and
  aliases allow exponential expansion);
* documents larger than :data:`MAX_DOCUMENT_BYTES` are refused.

Schema validation (``check_schema``) uses the published JSON Schema (draft 2020-12) in
``policies/schema/agreement.schema.json`` with one tightening: ``integer`` means a JSON
integer, never ``1.0``. Every failure here raises :class:`policies.errors.AgreementFormatError`
naming the JSON path of the first problem and listing all of them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

import jsonschema
import jsonschema.validators
import yaml
import yaml.composer
import yaml.constructor
import yaml.events
import yaml.nodes

from policies.errors import AgreementFormatError

MAX_DOCUMENT_BYTES = 1 << 20
MAX_SAFE_INTEGER = (1 << 53) - 1

_RFC3339_UTC = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|\+00:00)$", re.ASCII
)


# --- timestamps ---------------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """The canonical RFC 3339 UTC form of an aware datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def parse_timestamp(text: str, *, path: str = "$") -> datetime:
    """Parse an RFC 3339 timestamp in UTC (``Z`` or ``+00:00``), at most microseconds."""
    match = _RFC3339_UTC.match(text)
    if match is None:
        raise AgreementFormatError(
            f"{text!r} is not an RFC 3339 UTC timestamp",
            path=path,
            hint="write e.g. 2026-01-01T00:00:00Z (UTC, 'Z' suffix)",
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise AgreementFormatError(f"{text!r} is not a valid date/time: {exc}", path=path) from exc


def require_utc(now: datetime, name: str = "now") -> datetime:
    """Refuse naive datetimes (time is injected and must be unambiguous); return it in UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC)")
    return now.astimezone(UTC)


# --- canonical JSON -----------------------------------------------------------------------


def _prepare(value: object, path: str) -> object:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{path}: integer {value} is outside ±(2**53 - 1)")
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: object keys must be strings, got {key!r}")
            nkey = unicodedata.normalize("NFC", key)
            if nkey in out:
                raise ValueError(f"{path}: duplicate key {nkey!r} after normalisation")
            out[nkey] = _prepare(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_prepare(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise ValueError(f"{path}: {type(value).__name__} has no canonical encoding (ints only)")


def canonical_json(value: object) -> bytes:
    """Deterministic JSON bytes of ``value``; raise :class:`ValueError` if not encodable."""
    prepared = _prepare(value, "$")
    text = json.dumps(
        prepared, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("string is not valid Unicode (lone surrogate)") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- decimals ----------------------------------------------------------------------------


def parse_decimal(value: object, *, path: str = "$") -> Decimal:
    """A finite decimal quantity from a string, int or float, normalised (``0.50`` → ``0.5``).

    Floats go through their shortest ``repr``, so YAML ``0.1`` means exactly ``0.1``.
    """
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise AgreementFormatError(f"{value!r} is not a decimal quantity", path=path) from exc
    else:
        raise AgreementFormatError(f"{value!r} is not a decimal quantity", path=path)
    if not number.is_finite():
        raise AgreementFormatError(f"{value!r} is not a finite decimal quantity", path=path)
    return number.normalize() if number else Decimal(0)


def decimal_text(value: Decimal) -> str:
    """The canonical text of a decimal: plain notation, no exponent, no trailing zeros."""
    return format(value.normalize() if value else Decimal(0), "f")


# --- base64 -------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64 (with padding); raise :class:`ValueError` otherwise."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not standard base64: {exc}") from exc


# --- strict YAML --------------------------------------------------------------------------


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without timestamps, YAML 1.1 booleans, aliases or duplicate keys.

    Public because other hand-written YAML the node trusts (the equivalence table,
    ``node.records.equivalence``) must mean one thing too; its refusals are
    ``yaml.MarkedYAMLError`` with the line of the offending key.
    """

    def compose_node(self, parent: yaml.nodes.Node | None, index: int) -> yaml.nodes.Node | None:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # '? [a]': not a field name
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping",
                    key_node.start_mark,
                )  # fmt: skip
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_document(text: str | bytes) -> object:
    """Parse one YAML (or JSON) document strictly; raise :class:`AgreementFormatError`."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise AgreementFormatError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AgreementFormatError(f"document is not UTF-8: {exc}") from exc
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise AgreementFormatError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise AgreementFormatError(
            f"not a valid YAML/JSON document{where}: {problem}",
            hint="fix the syntax at the line and column shown",
        ) from exc


def dump_document(document: Mapping[str, object]) -> str:
    """Readable YAML in the key order given (block style, UTF-8 text, strings quoted as needed)."""
    return yaml.safe_dump(
        _plain(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


# --- JSON paths ---------------------------------------------------------------------------


def json_path(parts: Iterable[str | int]) -> str:
    """``["grants", 0, "datasets"]`` → ``$.grants[0].datasets``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# --- JSON Schema ---------------------------------------------------------------------------


@functools.cache
def schema() -> Mapping[str, Any]:
    """The published JSON Schema (draft 2020-12), read once from the package."""
    text = resources.files("policies.schema").joinpath("agreement.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _strict_integer(_checker: object, instance: object) -> bool:
    # JSON Schema counts 1.0 as an integer; canonical bytes carry integers only.
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@functools.cache
def _validator(definition: str | None) -> Any:
    full = dict(schema())
    if definition is not None:
        full = {"$defs": full["$defs"], "$ref": f"#/$defs/{definition}"}
    return _Validator(full)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    # For oneOf/anyOf, report the most relevant alternative's error (e.g. the bad enum value)
    # rather than "is not valid under any of the given schemas".
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    return error


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "not" and isinstance(error.schema, Mapping):
        return f"not allowed here: {error.schema.get('description', 'forbidden field')}"
    if error.validator == "pattern" and isinstance(error.schema, Mapping):
        described = error.schema.get("description")  # what to write, not the expression
        if described:
            return f"{error.instance!r} is not valid here: {described}"
    return error.message


def check_schema(document: object, definition: str | None = None) -> None:
    """Validate ``document`` against the schema (or one of its ``$defs``); raise on failure."""
    errors = list(_validator(definition).iter_errors(document))
    if not errors:
        return
    deepest = sorted(
        (_deepest(e) for e in errors), key=lambda e: (json_path(e.absolute_path), e.message)
    )
    problems = [f"{json_path(e.absolute_path)}: {_message(e)}" for e in deepest]
    first = _deepest(jsonschema.exceptions.best_match(errors))
    raise AgreementFormatError(
        _message(first),
        path=json_path(first.absolute_path),
        problems=problems,
        hint="see docs/agreements.md for the document format",
    )

"""The node's equivalence table ("cuadro de equivalencias"): local codes → regional codes.

Why: each migration directorate keeps its own codes ("APREHENDIDO", "2" for women, "LAJAS
BLANCAS"...). Before anything is counted or matched, the node translates them to the regional
code lists, and it publishes the table so peers and the Secretariat can see exactly how each
national category was counted — the transparency the members asked for when they proposed the
cuadro de equivalencias.

Invariants:
* Every regional code in a table is validated against the packaged code lists *when the table
  is loaded*; a bad entry raises :class:`EquivalenceError` naming its YAML key
  (``mappings.event_type.APREH``), so a node never starts with a table it cannot apply.
* :meth:`EquivalenceTable.translate` never guesses: an unmapped local code raises
  :class:`~node.records.codelists.UnknownCodeError` (lists named in ``passthrough`` accept
  local codes that already are regional codes, still validated).
* :meth:`EquivalenceTable.to_public_dict` is stable (sorted keys) and JSON-serialisable, and
  :meth:`EquivalenceTable.from_mapping` reads it back to an equal table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

import yaml
import yaml.composer
import yaml.constructor

from node.errors import ConfigError
from node.records.codelists import (
    CODELIST_NAMES,
    CODELISTS_VERSION,
    UnknownCodeError,
    codelist,
    suggest_codes,
)
from policies.canonical import StrictLoader

PUBLIC_FORMAT = "crm-enlace/equivalence-table"
PUBLIC_FORMAT_VERSION = 1

BorderPostKind = Literal["land", "air", "sea"]
BORDER_POST_KINDS: tuple[str, ...] = ("land", "air", "sea")

_TOP_LEVEL_KEYS = frozenset(
    {"format", "format_version", "codelists_version", "node", "version", "description",
     "passthrough", "mappings", "border_posts"}
)  # fmt: skip
_POST_KEYS = frozenset({"name", "kind", "regional_code"})
_POST_CODE_RE = re.compile(r"^[A-Z]{3}-[A-Z0-9]{3}$")


class EquivalenceError(ConfigError):
    """An equivalence table that cannot be used; ``key`` is the dotted YAML key at fault."""

    def __init__(self, key: str, message: str, *, hint: str = "") -> None:
        super().__init__(f"{key}: {message}", hint=hint)
        self.key = key


@dataclass(frozen=True)
class BorderPost:
    """A local border post (or airport, or port) and its regional code, e.g. ``PAN-LAJ``."""

    local_id: str
    name: str
    kind: BorderPostKind
    regional_code: str

    def to_public_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "regional_code": self.regional_code}


def _local_code(key: str, raw: object) -> str:
    """A local code as text; YAML numbers become text, booleans and floats are refused."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, float):
        raise EquivalenceError(
            key,
            f"local code {raw!r} was read by YAML as {type(raw).__name__}",
            hint="quote the local code in the YAML file (e.g. 'NO': ..., '1.0': ...)",
        )
    if isinstance(raw, int):
        return str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise EquivalenceError(key, f"local code {raw!r} must be non-empty text")
    return raw


def _text(key: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise EquivalenceError(key, f"must be non-empty text, got {raw!r}", hint="quote it")
    return raw


def _mapping(key: str, raw: object) -> Mapping[object, object]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise EquivalenceError(key, f"must be a mapping, got {type(raw).__name__}")
    return cast("Mapping[object, object]", raw)


def _parse_mappings(raw: object) -> dict[str, Mapping[str, str]]:
    result: dict[str, Mapping[str, str]] = {}
    for raw_list, raw_entries in _mapping("mappings", raw).items():
        list_key = f"mappings.{raw_list}"
        if raw_list not in CODELIST_NAMES:
            close = suggest_codes(str(raw_list), CODELIST_NAMES)
            hint = f"did you mean {' or '.join(close)}?" if close else "see docs/code-lists.md"
            raise EquivalenceError(list_key, "is not a regional code list", hint=hint)
        regional = codelist(str(raw_list))
        entries: dict[str, str] = {}
        for raw_local, raw_code in _mapping(list_key, raw_entries).items():
            local = _local_code(f"{list_key}.{raw_local}", raw_local)
            entry_key = f"{list_key}.{local}"
            if local in entries:
                raise EquivalenceError(entry_key, "local code appears twice")
            try:
                entries[local] = regional.validate(raw_code)
            except UnknownCodeError as exc:
                raise EquivalenceError(entry_key, exc.message, hint=exc.hint) from exc
        result[regional.name] = MappingProxyType(dict(sorted(entries.items())))
    return result


def _parse_border_posts(node: str, raw: object) -> dict[str, BorderPost]:
    posts: dict[str, BorderPost] = {}
    seen_codes: dict[str, str] = {}
    for raw_id, raw_post in _mapping("border_posts", raw).items():
        local_id = _local_code(f"border_posts.{raw_id}", raw_id)
        key = f"border_posts.{local_id}"
        if local_id in posts:
            raise EquivalenceError(key, "border post appears twice")
        post = _mapping(key, raw_post)
        unknown = sorted(str(k) for k in post if k not in _POST_KEYS)
        if unknown:
            raise EquivalenceError(
                f"{key}.{unknown[0]}",
                "is not a border-post field",
                hint="use name, kind, regional_code",
            )
        name = _text(f"{key}.name", post.get("name"))
        kind = post.get("kind")
        if kind not in BORDER_POST_KINDS:
            raise EquivalenceError(f"{key}.kind", f"{kind!r} is not land, air or sea")
        code = _text(f"{key}.regional_code", post.get("regional_code"))
        if not _POST_CODE_RE.match(code) or not code.startswith(f"{node}-"):
            raise EquivalenceError(
                f"{key}.regional_code",
                f"{code!r} must be '{node}-' followed by three letters or digits",
                hint=f"e.g. '{node}-LAJ'",
            )
        if code in seen_codes:
            raise EquivalenceError(
                f"{key}.regional_code",
                f"{code!r} is already used by border post {seen_codes[code]!r}",
            )
        seen_codes[code] = local_id
        posts[local_id] = BorderPost(local_id, name, cast("BorderPostKind", kind), code)
    return dict(sorted(posts.items()))


def _rebuild_table(
    node: str,
    version: str,
    mappings: dict[str, dict[str, str]],
    passthrough: frozenset[str],
    border_posts: dict[str, BorderPost],
    description: str,
) -> EquivalenceTable:
    views = {name: MappingProxyType(codes) for name, codes in mappings.items()}
    return EquivalenceTable(node, version, views, passthrough, border_posts, description)


@dataclass(frozen=True)
class EquivalenceTable:
    """One node's translation of its local codes and border posts to the regional lists."""

    node: str
    version: str
    mappings: Mapping[str, Mapping[str, str]] = field(hash=False)
    passthrough: frozenset[str] = frozenset()
    border_posts: Mapping[str, BorderPost] = field(default_factory=dict, hash=False)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mappings", MappingProxyType(dict(sorted(self.mappings.items()))))
        object.__setattr__(self, "border_posts", MappingProxyType(dict(self.border_posts)))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as plain dictionaries (read-only views cannot be): an import's helper
        processes receive the table (:mod:`node.ingest.parallel`)."""
        mappings = {name: dict(codes) for name, codes in self.mappings.items()}
        return (
            _rebuild_table,
            (self.node, self.version, mappings, self.passthrough, dict(self.border_posts),
             self.description),
        )  # fmt: skip

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EquivalenceTable:
        """Validate and build a table from parsed YAML (or from :meth:`to_public_dict`)."""
        top = _mapping("(top level)", data)
        unknown = sorted(str(k) for k in top if k not in _TOP_LEVEL_KEYS)
        if unknown:
            raise EquivalenceError(
                unknown[0], "is not a field of an equivalence table",
                hint="fields: " + ", ".join(sorted(_TOP_LEVEL_KEYS)),
            )  # fmt: skip
        if "format" in top and top["format"] != PUBLIC_FORMAT:
            raise EquivalenceError("format", f"{top['format']!r} is not {PUBLIC_FORMAT!r}")
        node = _text("node", top.get("node"))
        try:
            codelist("member").validate(node)
        except UnknownCodeError as exc:
            raise EquivalenceError("node", exc.message, hint=exc.hint) from exc
        version = _text("version", top.get("version"))
        raw_pass = top.get("passthrough") or []
        if not isinstance(raw_pass, list):
            raise EquivalenceError("passthrough", "must be a list of code-list names")
        for position, name in enumerate(raw_pass):
            if name not in CODELIST_NAMES:
                raise EquivalenceError(f"passthrough[{position}]", f"{name!r} is not a code list")
        description = top.get("description", "")
        if not isinstance(description, str):
            raise EquivalenceError("description", "must be text")
        return cls(
            node=node,
            version=version,
            mappings=_parse_mappings(top.get("mappings")),
            passthrough=frozenset(str(n) for n in raw_pass),
            border_posts=_parse_border_posts(node, top.get("border_posts")),
            description=description,
        )

    def translate(self, list_name: str, local_code: str | int) -> str:
        """The regional code for ``local_code`` of list ``list_name``; raises if unmapped."""
        regional = codelist(list_name)
        local = str(local_code)
        entries = self.mappings.get(list_name, {})
        if local in entries:
            return entries[local]
        if list_name in self.passthrough:
            return regional.validate(local)
        raise UnknownCodeError(
            f"{list_name} (local codes of {self.node} table {self.version})",
            local,
            suggest_codes(local, entries),
        )

    def border_post(self, local_id: str | int) -> BorderPost:
        local = str(local_id)
        if local not in self.border_posts:
            raise UnknownCodeError(
                f"border_posts (table {self.node} {self.version})",
                local,
                suggest_codes(local, self.border_posts),
            )
        return self.border_posts[local]

    def translate_border_post(self, local_id: str | int) -> str:
        return self.border_post(local_id).regional_code

    def to_public_dict(self) -> dict[str, Any]:
        """The table as published to peers: stable order, JSON-serialisable."""
        public: dict[str, Any] = {
            "format": PUBLIC_FORMAT,
            "format_version": PUBLIC_FORMAT_VERSION,
            "codelists_version": CODELISTS_VERSION,
            "node": self.node,
            "version": self.version,
            "passthrough": sorted(self.passthrough),
            "mappings": {name: dict(entries) for name, entries in self.mappings.items()},
            "border_posts": {k: p.to_public_dict() for k, p in self.border_posts.items()},
        }
        if self.description:
            public["description"] = self.description
        return dict(sorted(public.items()))


class _TableLoader(StrictLoader):
    """The strict loader of signed documents (no duplicate keys, no YAML 1.1 booleans or
    timestamps), which also refuses a number not written as its own decimal text (``01``,
    ``0x1F``, ``1_000``, ``+1``): as a local code it would silently become ``1``, ``31``...
    while ``08`` stays text."""


def _decimal_int(loader: _TableLoader, node: yaml.ScalarNode) -> int:
    value = loader.construct_yaml_int(node)
    if str(value) != node.value:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} would be read as the number {value}", node.start_mark
        )
    return value


_TableLoader.add_constructor("tag:yaml.org,2002:int", _decimal_int)

_STRICT_HINTS = {
    "duplicate key": "write each key once (a local code maps to one regional code): "
    "keep the right line and delete the other",
    "would be read as the number": "quote the local code in the YAML file (e.g. '01': F)",
}


def load_equivalence(path: str | Path) -> EquivalenceTable:
    """Read and validate an equivalence table from a YAML file.

    Read strictly (:class:`policies.canonical.StrictLoader`): a key written twice, which plain
    YAML loading would resolve silently in favour of the last, is an error naming the file,
    the line and the key, as is a code YAML would turn into another (``01`` → ``1``).
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise EquivalenceError(str(source), f"cannot be read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise EquivalenceError(
            str(source), f"is not UTF-8: {exc}", hint="save it as UTF-8"
        ) from exc
    try:
        data = yaml.load(text, Loader=_TableLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.constructor.ConstructorError, yaml.composer.ComposerError) as exc:
        raise _strict_error(source, text, exc) from exc
    except yaml.YAMLError as exc:
        raise EquivalenceError(str(source), f"is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise EquivalenceError(str(source), "must hold a YAML mapping at the top level")
    return EquivalenceTable.from_mapping(data)


def _strict_error(source: Path, text: str, exc: yaml.MarkedYAMLError) -> EquivalenceError:
    """``file:line:key: problem`` for what the strict loader refuses (the key dotted, as in
    the table's other errors)."""
    mark = exc.problem_mark
    problem = exc.problem or str(exc)
    hint = next((h for start, h in _STRICT_HINTS.items() if start in problem), "")
    if mark is None:  # pragma: no cover - the strict loader always marks its refusals
        return EquivalenceError(str(source), problem, hint=hint)
    key = _key_at(text, mark.line, mark.column) or "-"
    return EquivalenceError(f"{source}:{mark.line + 1}:{key}", problem, hint=hint)


def _key_at(text: str, line: int, column: int) -> str | None:
    """The dotted path of the mapping key written at ``line``, ``column`` (0-based)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    pending: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())] if root is not None else []
    while pending:
        node, path = pending.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                if (key.start_mark.line, key.start_mark.column) == (line, column):
                    return ".".join(here)
                pending.append((value, here))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*path, str(i))) for i, item in enumerate(node.value))
    return None

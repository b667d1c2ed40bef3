"""Entry point of the ``enlace`` command: mounts one module per command group.

Why lazily: the command groups between them import the whole node (SQLAlchemy, gRPC, SciPy,
FAISS…), about a second and a half before anything runs. ``enlace match document`` needs only
its own group, and so does every worker process a command spawns (a spawned child imports the
``enlace`` script again). :func:`run` therefore mounts only the group named by the first
argument; ``enlace --help``, an unknown command and ``node.cli.main.app`` (what the tests drive)
mount all of them, in the order of :data:`GROUPS`.

Invariant: :data:`COMMANDS` names, for every top-level command, the groups that register it; a
test builds the full application and checks that each command is mounted by exactly the groups
listed, so a command added to a group without a line here fails the suite instead of becoming
unreachable from the shell.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Iterable
from types import ModuleType

import typer

#: Command groups in the order ``enlace --help`` lists them: module, then the name and help of
#: its sub-application, or ``None`` for a module that registers top-level commands itself.
GROUPS: tuple[tuple[str, tuple[str, str] | None], ...] = (
    ("node_cmd", None),
    ("doctor_cmd", None),
    ("ops_cmd", None),
    ("directory_cmd", ("directory", "Federation directory (trust anchor).")),
    ("audit_cmd", ("audit", "Hash-chained audit log.")),
    ("policy_cmd", ("policy", "Bilateral sharing agreements.")),
    ("demo_cmd", None),
    ("ingest_cmd", None),
    ("generate_cmd", None),
    ("stats_cmd", ("stats", "Protected statistics and the CRM matrices.")),
    ("match_cmd", ("match", "Private identity matching (OPRF filters).")),
    ("followup_cmd", ("followup", "Follow-ups after a hit (approve, deny).")),
    ("biometric_cmd", ("biometric", "Biometric galleries and probes.")),
    ("screen_cmd", ("screen", "Screen passenger manifests (PAXLST, bus CSV).")),
    ("status_cmd", None),
    ("st_cmd", ("st", "Technical Secretariat: pulls, reports, calendar.")),
)

#: The groups each top-level command needs (``match biometric`` lives in biometric_cmd).
COMMANDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("init", "serve", "peers"), ("node_cmd",)),
    "doctor": ("doctor_cmd",),
    **dict.fromkeys(
        ("backup", "restore", "rotate-signing-key", "rotate-tls", "health"), ("ops_cmd",)
    ),
    "directory": ("directory_cmd",),
    "audit": ("audit_cmd",),
    "policy": ("policy_cmd",),
    "demo": ("demo_cmd",),
    "ingest": ("ingest_cmd",),
    "records": ("ingest_cmd",),
    "generate": ("generate_cmd",),
    "stats": ("stats_cmd",),
    "match": ("match_cmd", "biometric_cmd"),
    "followup": ("followup_cmd",),
    "biometric": ("biometric_cmd",),
    "screen": ("screen_cmd",),
    "status": ("status_cmd",),
    "st": ("st_cmd",),
}

_HELP = "crm-enlace: a node of the CRM federated, privacy-preserving exchange network."


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"node.cli.{name}")


def _root() -> None:
    pass


def build_app(groups: Iterable[str] | None = None) -> typer.Typer:
    """A Typer application with ``groups`` mounted (all of them when ``None``)."""
    wanted = set(groups) if groups is not None else {name for name, _ in GROUPS}
    app = typer.Typer(
        name="enlace", help=_HELP, no_args_is_help=True, add_completion=False,
        pretty_exceptions_enable=False,
    )  # fmt: skip
    # A root callback keeps the application a group even when one command is mounted (Typer
    # would otherwise run that lone command as the root, and ``enlace doctor`` would fail).
    app.callback()(_root)
    for name, sub in GROUPS:
        if name not in wanted:
            continue
        module = _module(name)
        if sub is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=sub[0], help=sub[1])
    if "match_cmd" in wanted:
        _module("match_holder_cmd").register(_module("match_cmd").app)
    if {"match_cmd", "biometric_cmd"} <= wanted:
        _module("biometric_cmd").register_match(_module("match_cmd").app)
    return app


@functools.cache
def full_app() -> typer.Typer:
    """Every group mounted, built once per process."""
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    """``node.cli.main.app``: the full application, built on first use."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return full_app()


def _groups_for(argv: list[str]) -> tuple[str, ...] | None:
    """The groups the command line needs, or ``None`` (help, or an unknown command) for all."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return COMMANDS.get(first) if first is not None else None


def run() -> None:
    logging.basicConfig(
        level=os.environ.get("ENLACE_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from node.ops import logging_json

    logging_json.install()  # ENLACE_LOG_FORMAT=json: one JSON object per line
    groups = _groups_for(sys.argv[1:])
    (build_app(groups) if groups is not None else full_app())()


if __name__ == "__main__":
    run()

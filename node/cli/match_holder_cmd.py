"""``enlace match`` holder commands: this node's OPRF keys, filters and what peers asked.

``rebuild`` and ``rotate-epoch`` (re)build the filters this node publishes, ``status`` shows
them, ``usage`` what each peer evaluated under which agreement and purpose (from the audit log,
which holds no input). They join the querier commands of :mod:`node.cli.match_cmd` in one
group (``node.cli.main`` registers both). Thin by design: parse, call, print.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated

import typer
from rich.progress import (
    TaskID,
)

from node.cli.common import (
    FittedTable,
    HomeOption,
    JsonOption,
    ProgressOption,
    cli_errors,
    console,
    id_column,
    node_runtime,
    print_json,
    progress_bar,
    text_column,
)
from node.cli.match_cmd import DatasetOption, chosen_datasets, print_rows
from node.cli.progress import CommandProgress
from node.errors import InvalidArgumentError
from node.matching.filters import Holder, UpdateReport
from node.matching.peers import EVALUATE, FOLLOW_UP
from node.matching.sources import (
    MATCH_DATASETS,
)
from node.runtime import NodeRuntime


def _holder(runtime: NodeRuntime) -> Holder:
    return Holder(runtime.store, runtime.home, runtime.config.country, runtime.signing_key)


def _reports(reports: list[UpdateReport], title: str, as_json: bool) -> None:
    """A rebuild's or rotation's reports. Every record is evaluated afresh and every filter
    published, so the table keeps what varies (JSON has every field); headers wrap at
    spaces, datasets are shown whole, and it fits 80 columns."""
    if as_json:
        print_json([r.to_dict() for r in reports])
        return
    epochs = sorted({r.epoch for r in reports})
    table = FittedTable(title=f"{title} (key epoch {', '.join(map(str, epochs))})")
    id_column(table, "dataset")
    for column in ("version", "records keyed", "keys", "seconds"):
        text_column(table, column, justify="right")
    for r in reports:
        table.add_row(
            r.dataset, str(r.version), f"{r.records_keyed:,}", f"{r.entries:,}", f"{r.seconds:.1f}"
        )
    console.print(table)


class _RebuildBar:
    """A rebuild's progress on stderr: one bar per dataset, records evaluated of its records,
    then "writing" while its entries are stored and its filter published. Off a terminal, a
    line per dataset every tenth ("identities: 120,000 of 600,000 records evaluated (20%,
    9 s)"), then "identities: writing, publishing"."""

    def __init__(self, enabled: bool) -> None:
        self.bar = progress_bar(disable=not enabled, unit="records evaluated")
        self.plain = isinstance(self.bar, CommandProgress) and self.bar.plain
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _RebuildBar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, dataset: str, done: int, total: int) -> None:
        task = self.tasks.get(dataset)
        if task is None:
            task = self.tasks[dataset] = self.bar.add_task(dataset, total=total)
        writing = done >= total
        if self.plain:  # the line names the dataset, and says what follows the count
            status = "writing, publishing" if writing else ""
            self.bar.update(task, completed=done, total=total, status=status)
            return
        description = f"{dataset}: writing, publishing" if writing else dataset
        self.bar.update(task, completed=done, total=total, description=description)


def rebuild(
    home: HomeOption,
    dataset: DatasetOption = None,
    workers: Annotated[int, typer.Option(help="Evaluation processes (0: one per core).")] = 0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Re-evaluate every record under the current key and publish new filter versions."""
    with cli_errors(as_json), node_runtime(home) as runtime, _RebuildBar(progress) as bar:
        reports = _holder(runtime).rebuild(
            dt.datetime.now(dt.UTC),
            chosen_datasets(dataset, MATCH_DATASETS),
            workers=workers,
            progress=bar,
        )
    _reports(reports, "Filters rebuilt", as_json)


def rotate_epoch(
    home: HomeOption,
    mode: Annotated[str | None, typer.Option(help="oprf or voprf (default: unchanged).")] = None,
    workers: Annotated[int, typer.Option(help="Evaluation processes (0: one per core).")] = 0,
    as_json: JsonOption = False,
    progress: ProgressOption = True,
) -> None:
    """Move to a new key epoch: old outputs and filters stop matching; peers must resync."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        if mode not in (None, "oprf", "voprf"):
            raise InvalidArgumentError("must be oprf or voprf", field="--mode")
        with _RebuildBar(progress) as bar:
            reports = _holder(runtime).rotate(
                dt.datetime.now(dt.UTC),
                mode="voprf" if mode == "voprf" else "oprf" if mode else None,
                workers=workers,
                progress=bar,
            )
    _reports(reports, "New key epoch", as_json)


def status(home: HomeOption, as_json: JsonOption = False) -> None:
    """This node's key epoch and published filters, and the peers' filters it holds."""
    with cli_errors(as_json), node_runtime(home) as runtime:
        holder = _holder(runtime)
        state = holder.state()
        published = []
        for name in MATCH_DATASETS:
            stored = holder.published(name, state)
            if stored is not None:
                manifest = json.loads(stored.manifest)
                published.append({"dataset": name, "version": stored.version,
                                  "entries": manifest["count"], "bytes": manifest["size"],
                                  "created_at": manifest["created_at"]})  # fmt: skip
        peers = [
            {"peer": f.peer, "dataset": f.dataset, "epoch": f.epoch, "version": f.version,
             "fetched_at": f.at.isoformat()}
            for f in runtime.store.matching.peer_filters()
        ]  # fmt: skip
    if as_json:
        print_json({"epoch": state.epoch, "mode": state.mode, "published": published,
                    "peer_filters": peers})  # fmt: skip
        return
    console.print(f"key epoch {state.epoch} ({state.mode})")
    print_rows(published, "Published filters", False)
    print_rows(peers, "Peers' filters held", False)


def usage(home: HomeOption, as_json: JsonOption = False) -> None:
    """From the audit log: elements each peer had evaluated, per agreement, purpose, dataset."""
    totals: Counter[tuple[str, str, str, str, str]] = Counter()
    with cli_errors(as_json), node_runtime(home) as runtime:
        for entry in runtime.store.iter_audit():
            r = entry.record
            if r.direction != "inbound" or r.method not in (EVALUATE, FOLLOW_UP):
                continue
            if r.status != "OK":
                continue
            what = "elements" if r.method == EVALUATE else "follow-ups"
            count = int(r.extra.get("elements", 0)) if r.method == EVALUATE else 1
            purpose = str(r.extra.get("purpose", "")) or _purpose(r.request_header)
            key = (r.peer, r.agreement_id or "-", purpose, str(r.extra.get("dataset", "")), what)
            totals[key] += count
    rows = [
        {"peer": p, "agreement": a, "purpose": u, "dataset": d, "what": w, "count": n}
        for (p, a, u, d, w), n in sorted(totals.items())
    ]
    print_rows(rows, "Matching served, from the audit log", as_json)


def _purpose(header: bytes) -> str:
    try:
        return str(json.loads(header).get("purpose", ""))
    except (ValueError, AttributeError):
        return ""


def register(app: typer.Typer) -> None:
    """Add the holder commands to the ``enlace match`` group."""
    app.command("rebuild")(rebuild)
    app.command("rotate-epoch")(rotate_epoch)
    app.command("status")(status)
    app.command("usage")(usage)

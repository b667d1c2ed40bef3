"""The holder's side of matching: OPRF keys per epoch, filter entries, published filters.

Why: a holder must publish, per matchable dataset and key epoch, a signed manifest and a filter
of the truncated OPRF outputs of all its identity keys, keep it current as records are
imported, and rotate keys. Evaluating a million records costs about a minute of CPU, so updates
are incremental: :meth:`Holder.update` compares each record's content hash with the one its
entries were made from and evaluates only new or changed records (and drops the entries of
deleted or changed ones). Each change publishes a new filter version; the last
:data:`KEEP_VERSIONS` are kept so peers can sync by delta.

The evaluation itself, in worker processes for large datasets, is
:mod:`node.matching.evaluation`.

The OPRF master secret is ``HOME/keys/oprf-master.key`` (32 bytes, hex, mode 0600), created on
first use. The epoch and mode live in ``node_state`` (``match.epoch``, ``match.mode``); epoch 1
is the first. Rotation (:meth:`Holder.rotate`) evaluates every record under the next epoch's
key and publishes its filters, then moves to that epoch and forgets the old epoch's entries
and filters: outputs computed under the old key match nothing any more.

Invariants:
* Entries of a record are replaced together with its content hash (one transaction), so a
  record is either keyed as stored or not at all; a filter version is published only after its
  entries are committed, and always from the entries of its own (dataset, epoch).
* Published filters are canonical (:func:`crypto.filter.encode_filter`), widened as needed to
  keep the false-positive rate at most 1e-9 per lookup, and signed (:mod:`crypto.match_keys`).
* Epoch and mode are written together, in one transaction (:meth:`Store.put_states`), and
  read together, in one statement (:meth:`Holder.state`): every Evaluate uses a consistent
  (epoch, mode, key), and the current epoch has its filters published before it is current.
* Time is injected: every method that records or signs takes ``now``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crypto.errors import KeyError_
from crypto.filter import (
    MAX_TRUNCATION,
    encode_filter,
)
from crypto.keys import read_hex_key, write_private
from crypto.match_keys import ModeName, describe_filter, oprf_key_for, sign_manifest
from crypto.oprf import Mode, OprfServerKey
from crypto.signing import SigningKey
from node.errors import ConfigError, FailedPreconditionError, InvalidArgumentError
from node.home import NodeHome
from node.matching.evaluation import EVALUATED, Item, evaluate_records, filter_of, prefixes_of
from node.matching.keys import NORMALISATION_VERSIONS
from node.matching.sources import (
    MATCH_DATASETS,
    check_dataset,
    count_records,
    iter_records,
)
from node.store import Store
from node.store.matching_store import EntryRow, StoredFilter

MASTER_KEY_FILE = "oprf-master.key"
EPOCH_STATE, MODE_STATE = "match.epoch", "match.mode"
FIRST_EPOCH = 1
KEEP_VERSIONS = 8
#: Below this many records, keys are built and evaluated in the calling process.
_MODES: dict[str, Mode] = {"oprf": Mode.OPRF, "voprf": Mode.VOPRF}


def master_secret_path(home: NodeHome) -> Path:
    return home.root / "keys" / MASTER_KEY_FILE


def load_master_secret(home: NodeHome) -> bytes:
    """The node's OPRF master secret; created (0600) on first use, never overwritten."""
    path = master_secret_path(home)
    if not path.exists():
        # If another process created it first, read theirs.
        with contextlib.suppress(KeyError_):
            write_private(path, secrets.token_bytes(32).hex().encode("ascii") + b"\n")
    try:
        return read_hex_key(path)
    except Exception as exc:
        raise ConfigError(
            f"cannot read the OPRF master secret: {exc}",
            hint=f"restore {path} from the node's backup (32 bytes, hex, mode 0600)",
        ) from exc


#: The words of a holder's refusal to sync a dataset it has no filter for; a querier
#: recognises that answer by them (:data:`node.matching.client.UNPUBLISHED_TTL`).
NOT_PUBLISHED = "has not published a"

#: ``progress(dataset, records evaluated, records of the dataset)`` of a rebuild: called with 0
#: when a dataset starts, then after each chunk of records; after its last call (done equal to
#: the total) the dataset's entries are written and its filter is published.
RebuildProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class KeyState:
    epoch: int
    mode: ModeName

    @property
    def oprf_mode(self) -> Mode:
        return _MODES[self.mode]


@dataclass(frozen=True)
class UpdateReport:
    """What one update changed in one dataset."""

    dataset: str
    epoch: int
    version: int
    records_keyed: int
    keys_added: int
    records_removed: int
    entries: int
    published: bool
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Holder:
    """Matching state of one node as a holder. Cheap to build; keys are cached per epoch."""

    def __init__(self, store: Store, home: NodeHome, country: str, signing_key: SigningKey) -> None:
        self.store = store
        self.home = home
        self.country = country
        self.signing_key = signing_key
        self._master: bytes | None = None
        self._keys: dict[tuple[str, int, str], OprfServerKey] = {}

    @property
    def master(self) -> bytes:
        if self._master is None:
            self._master = load_master_secret(self.home)
        return self._master

    # -- epoch and keys --------------------------------------------------------------------
    def state(self) -> KeyState:
        values = self.store.matching.states((EPOCH_STATE, MODE_STATE))
        name: ModeName = "voprf" if values.get(MODE_STATE) == "voprf" else "oprf"
        return KeyState(int(values.get(EPOCH_STATE, FIRST_EPOCH)), name)

    def key(self, dataset: str, state: KeyState) -> OprfServerKey:
        cache_key = (dataset, state.epoch, state.mode)
        key = self._keys.get(cache_key)
        if key is None:
            key = oprf_key_for(self.master, check_dataset(dataset), state.epoch, state.oprf_mode)
            self._keys[cache_key] = key
        return key

    def require_epoch(self, epoch: int, state: KeyState) -> None:
        """FAILED_PRECONDITION unless ``epoch`` is the current one."""
        if epoch != state.epoch:
            raise FailedPreconditionError(
                f"key epoch {epoch} is not current; this node's matching epoch is {state.epoch}",
                hint="resync the filter (enlace match sync) and query again",
            )

    # -- building --------------------------------------------------------------------------
    def update(
        self,
        now: dt.datetime,
        datasets: Sequence[str] = MATCH_DATASETS,
        *,
        workers: int = 0,
        force_publish: bool = False,
    ) -> list[UpdateReport]:
        """Bring the entries of ``datasets`` in line with the stored records; publish changes."""
        state = self.state()
        return [
            self._update_one(check_dataset(d), state, now, workers, force_publish) for d in datasets
        ]

    def _update_one(
        self,
        dataset: str,
        state: KeyState,
        now: dt.datetime,
        workers: int,
        force: bool,
        *,
        replace_all: bool = False,
        progress: RebuildProgress | None = None,
    ) -> UpdateReport:
        started = time.perf_counter()
        matching = self.store.matching
        evaluated_progress: Callable[[int], None] | None = None
        if progress is not None:
            total = count_records(self.store.engine, dataset)
            progress(dataset, 0, total)

            def evaluated_progress(done: int) -> None:
                progress(dataset, min(done, total), total)

        known = {} if replace_all else matching.entry_states(dataset, state.epoch)
        seen: set[tuple[str, str]] = set()
        removed: list[tuple[str, str]] = []
        todo: list[tuple[str, str, str]] = []

        def changed_records() -> Iterator[Item]:
            for record in iter_records(self.store.engine, dataset):
                ref = (record.source, record.record_id)
                seen.add(ref)
                stored = known.get(ref)
                if stored == record.content_hash:
                    continue
                if stored is not None:
                    removed.append(ref)
                todo.append((record.source, record.record_id, record.content_hash))
                yield record.source, record.row

        # Read while the workers evaluate; nothing is written before every record was read.
        counts, evaluated = evaluate_records(
            self.master,
            dataset,
            state.epoch,
            state.oprf_mode,
            changed_records(),
            workers,
            evaluated_progress,
        )
        if progress is not None:
            progress(dataset, total, total)
        removed.extend(ref for ref in known if ref not in seen)
        rows: list[EntryRow] = []
        offset = 0
        for (source, record_id, content_hash), count in zip(todo, counts, strict=True):
            for key_no in range(count):
                chunk = evaluated[offset : offset + EVALUATED]
                prefix, digest = chunk[:MAX_TRUNCATION], chunk[MAX_TRUNCATION:]
                rows.append((source, record_id, key_no, prefix, digest, content_hash))
                offset += EVALUATED
        changed = bool(rows or removed or replace_all)
        if changed:
            matching.apply_changes(dataset, state.epoch, removed, rows, replace_all=replace_all)
        version = matching.latest_version(dataset, state.epoch)
        publish = changed or force or version == 0
        if publish:
            # After replace_all the entries are exactly the ones just evaluated: their prefixes
            # are at hand, and reading 1M back from the table took 1.2 s of a 1M build.
            prefixes = prefixes_of(evaluated) if replace_all else None
            version = self._publish(dataset, state, version + 1, now, prefixes).version
        return UpdateReport(
            dataset,
            state.epoch,
            version,
            sum(1 for c in counts if c),
            len(rows),
            len(removed),
            matching.count_entries(dataset, state.epoch),
            publish,
            time.perf_counter() - started,
        )

    def _publish(
        self,
        dataset: str,
        state: KeyState,
        version: int,
        now: dt.datetime,
        prefixes: bytes | None = None,
    ) -> StoredFilter:
        """Sign and store the filter of every entry of (``dataset``, epoch); ``prefixes``, when
        given, must be those entries' 16-byte prefixes (any order, repeats allowed)."""
        if prefixes is None:
            prefixes = self.store.matching.prefixes(dataset, state.epoch)
        filt = filter_of(prefixes, version)
        encoded = encode_filter(filt)
        public_key = self.key(dataset, state).public_key if state.mode == "voprf" else None
        manifest = describe_filter(
            encoded,
            holder=self.country,
            dataset=dataset,
            epoch=state.epoch,
            created_at=now,
            normalisation=NORMALISATION_VERSIONS,
            oprf_public_key=public_key,
        )
        signed = sign_manifest(manifest, self.signing_key)
        stored = StoredFilter(
            dataset,
            state.epoch,
            version,
            signed.body,
            signed.signature,
            signed.key_id,
            encoded,
            now,
        )
        self.store.matching.save_filter(stored, keep=KEEP_VERSIONS)
        return stored

    def rebuild(
        self,
        now: dt.datetime,
        datasets: Sequence[str] = MATCH_DATASETS,
        *,
        workers: int = 0,
        progress: RebuildProgress | None = None,
    ) -> list[UpdateReport]:
        """Recompute every entry of ``datasets`` from scratch under the current key; report
        to ``progress`` (:data:`RebuildProgress`) as records are evaluated."""
        return self._rebuild(self.state(), now, datasets, workers, progress)

    def _rebuild(
        self,
        state: KeyState,
        now: dt.datetime,
        datasets: Sequence[str],
        workers: int,
        progress: RebuildProgress | None,
    ) -> list[UpdateReport]:
        return [
            self._update_one(
                check_dataset(d), state, now, workers, True, replace_all=True, progress=progress
            )
            for d in datasets
        ]

    def rotate(
        self,
        now: dt.datetime,
        *,
        mode: ModeName | None = None,
        workers: int = 0,
        progress: RebuildProgress | None = None,
    ) -> list[UpdateReport]:
        """Build the next epoch (optionally in another mode), switch to it, forget the old one.

        Why in this order: every entry and filter names its epoch, so the new epoch's filters
        are built and published while the old epoch keeps answering; then epoch and mode
        change in one transaction. An Evaluate reads both in one statement, so it sees the old
        (epoch, mode) or the new one, never a mix that would make every true hit a silent
        miss. A rotation that fails before the switch leaves the old epoch fully in place (its
        half-built successor is rebuilt from scratch by the next attempt); after the switch,
        the new epoch's filters already exist.
        """
        if mode is not None and mode not in _MODES:
            raise InvalidArgumentError("mode must be 'oprf' or 'voprf'", field="mode")
        old = self.state()
        new = KeyState(old.epoch + 1, mode or old.mode)
        reports = self._rebuild(new, now, MATCH_DATASETS, workers, progress)
        self.store.put_states({EPOCH_STATE: str(new.epoch), MODE_STATE: new.mode}, now)
        self.store.matching.drop_other_epochs(new.epoch)
        return reports

    # -- reading ---------------------------------------------------------------------------
    def published(
        self, dataset: str, state: KeyState, version: int | None = None
    ) -> StoredFilter | None:
        return self.store.matching.published(check_dataset(dataset), state.epoch, version)

    def require_published(self, dataset: str, state: KeyState) -> StoredFilter:
        published = self.published(dataset, state)
        if published is None:
            raise FailedPreconditionError(
                f"{self.country} {NOT_PUBLISHED} {dataset} filter for epoch {state.epoch}",
                hint=f"the operator of {self.country} must run `enlace match rebuild`",
            )
        return published


def refresh_after_ingest(
    home: NodeHome, store: Store, table: str, now: dt.datetime
) -> list[UpdateReport]:
    """The ingest hook: update the match datasets fed by ``table``.

    Matching is switched on by the first ``enlace match rebuild`` (or rotation): until this node
    has published a filter in its current epoch, imports do not evaluate anything.
    """
    from node.matching.sources import datasets_fed_by

    datasets = datasets_fed_by(table)
    if not datasets:
        return []
    config = home.config()
    holder = Holder(store, home, config.country, home.signing_key())
    if not store.matching.latest_versions(holder.state().epoch):
        return []
    return holder.update(now, datasets)

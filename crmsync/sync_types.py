"""What the sync planner (crmsync/sync.py) reads and returns: a copy's rows, the store's view of
them, and the plan (updates, creates, delete requests, conflicts, refusals, what to write back).
Plain data, no behaviour beyond building a row's values on first use; re-exported by sync.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


# ---- inputs --------------------------------------------------------------------------------------

class CopyRow:
    """One row of a copy's entity sheet, as read.

    ``values`` (editable field key → cell value as read: labels, 是/否, Excel dates) is built on
    first use from ``cells`` and ``keys``: most rows of a large copy are unchanged and never need it.
    """

    __slots__ = ("row", "record_id", "version", "client_key", "_values", "cells", "keys", "reason", "digest")

    def __init__(self, row: int, record_id: str | None, version: int | None, client_key: str | None,
                 values: dict | None = None, reason: str | None = None, digest: str = "", *,
                 cells: tuple = (), keys: tuple = ()):
        self.row, self.record_id, self.version, self.client_key = row, record_id, version, client_key
        self._values, self.cells, self.keys, self.reason, self.digest = values, cells, keys, reason, digest

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            self._values = dict(zip(self.keys, self.cells))
        return self._values

    def __repr__(self) -> str:
        return f"CopyRow(row={self.row}, id={self.record_id!r}, version={self.version}, key={self.client_key!r})"


def digest(values: Sequence) -> str:
    """The digest of a row's cell values (a tuple in column order): stable across processes."""
    return hashlib.blake2b(repr(tuple(values)).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class SyncPolicy:
    """Options of one sync.

    :param delete_missing: a record the copy held at its last sync and no longer holds is a delete
        request (off: rows gone from a copy are ignored).
    :param match_threshold: how similar (share of equal non-empty values; a row still in the same
        place counts extra) a keyless row must be to the row last seen, to be taken as that record.
    """

    delete_missing: bool = True
    match_threshold: float = 0.5


@dataclass
class StoreView:
    """What the planner needs from the store, for one entity (gathered by sync_apply)."""

    versions: Mapping[str, tuple[int, bool]]  # id → (current version, deleted); absent: as ``known``
    current: Mapping[str, dict]  # current records of the rows that need a merge
    base: Mapping[str, dict]  # records at the copy's base version, where that is not current
    known: Mapping[str, tuple[int, str]]  # id → (version, digest) of the copy's row at its last sync
    keys: Mapping[str, tuple[str, int]]  # client key → (record id, version)
    parents: Mapping[str, dict] = field(default_factory=dict)  # customer id → customer (children)
    resolved: Mapping[tuple[str, str, str], Any] = field(default_factory=dict)
    #   (record id, field, local value as JSON) → the store value a resolved conflict settled on
    open_conflicts: set = field(default_factory=set)  # (record id, field, local value as JSON)
    remembered: Sequence[tuple] = ()  # keyless rows this copy sent: see match_keyless
    sent: Mapping[str, dict] = field(default_factory=dict)  # id → values its row had when last sent


# ---- outputs -------------------------------------------------------------------------------------

@dataclass
class Update:
    record_id: str
    row: int
    version: int  # the current version the change is based on (checked again when applied)
    changes: dict[str, Any]
    reason: str | None
    old: dict[str, Any] = field(default_factory=dict)  # the current values the changes replace


@dataclass
class Create:
    row: int
    client_key: str
    values: dict[str, Any]
    reason: str | None
    keyless: bool  # the row had no client key: remember it by content and position
    row_values: dict[str, Any] = field(default_factory=dict)
    base_values: dict[str, Any] = field(default_factory=dict)  # the row's own values, store form


@dataclass
class DeleteRequest:
    record_id: str
    version: int


@dataclass
class Conflict:
    record_id: str
    row: int | None
    field: str
    base: Any
    local: Any
    store: Any
    base_version: int | None
    store_version: int
    store_user: str | None
    store_time: str | None


@dataclass
class Refusal:
    row: int | None
    record_id: str | None
    field: str | None
    value: Any
    reason: str


@dataclass
class RowWrite:
    """What to write back into one copy row: incoming values, the id, version and client key."""

    row: int
    record_id: str | None = None
    version: int | None = None
    client_key: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # field key → store value
    clear_reason: bool = False


@dataclass
class Plan:
    entity: str
    updates: list[Update] = field(default_factory=list)
    creates: list[Create] = field(default_factory=list)
    deletes: list[DeleteRequest] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    writes: dict[int, RowWrite] = field(default_factory=dict)  # Excel row → what to write back
    warnings: list[Refusal] = field(default_factory=list)  # reported, not refused (likely duplicates)
    unchanged: int = 0
    seen: dict[str, tuple[int, str]] = field(default_factory=dict)  # id → (row, digest) of rows held
    sent: dict[str, dict] = field(default_factory=dict)  # id → the row's values (store form) this time
    matched: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # row → (key, id, version)

    def write(self, row: int) -> RowWrite:
        return self.writes.setdefault(row, RowWrite(row))

"""Conflicts a sync kept for a manager: list them, resolve them (audited).

    for c in list_conflicts(store, status="open", user="wang"): ...
    resolve_conflict(store, 3, "mine", user="wang")      # the copy's value wins
    resolve_conflict(store, 4, "theirs", user="wang")    # the store keeps its value
    resolve_conflict(store, 5, "VALUE", user="wang", value="13900001111")

A conflict holds both values (the copy's, "mine"; the store's, "theirs"), both users and times,
the base value and the copy.  Resolving with mine or a value writes that value to the record as
an ordinary audited change; every resolution writes an audit entry ``resolve_conflict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from . import access, audit
from .errors import InvalidInput, NotFound, PermissionDenied
from .i18n import tr
from .sync import DELETED_FIELD
from .tables import sync_conflicts

__all__ = ["ConflictInfo", "list_conflicts", "resolve_conflict", "TAKES"]

TAKES = ("mine", "theirs", "value")


@dataclass
class ConflictInfo:
    id: int
    entity: str
    record_id: str
    field: str
    base: Any
    local: Any
    store: Any
    local_user: str | None
    local_time: str | None
    store_user: str | None
    store_time: str | None
    copy_id: str | None
    sheet_row: int | None
    status: str
    resolution: Any = None
    resolved_by: str | None = None
    resolved_at: str | None = None


def _info(r) -> ConflictInfo:
    return ConflictInfo(r["id"], r["entity"], r["record_id"], r["field"], audit.load_value(r["base_value"]),
                        audit.load_value(r["local_value"]), audit.load_value(r["store_value"]),
                        r["local_user"], r["local_time"], r["store_user"], r["store_time"], r["copy_id"],
                        r["sheet_row"], r["status"], audit.load_value(r["resolution"]), r["resolved_by"],
                        r["resolved_at"])


def list_conflicts(store, *, status: str | None = "open", user: str | None = None) -> list[ConflictInfo]:
    """Conflicts (open ones by default), oldest first; with ``user``, only those on records the user
    may view."""
    stmt = select(sync_conflicts).order_by(sync_conflicts.c.id)
    if status:
        stmt = stmt.where(sync_conflicts.c.status == status)
    with store.engine.connect() as conn:
        rows = [_info(r) for r in conn.execute(stmt).mappings()]
    if user is None:
        return rows
    who = store.user(user)
    return [c for c in rows if access.check(who, "view", _customer_of(store, c.entity, c.record_id) or {})]


def _customer_of(store, entity_key: str, record_id: str) -> dict | None:
    rec = store.get(entity_key, record_id)
    if rec is None or entity_key == "customer":
        return rec
    return store.get("customer", rec.get("customer_id"))


def resolve_conflict(store, conflict_id: int, take: str, *, user: str, value: Any = None) -> ConflictInfo:
    """Settle a conflict: ``take`` is mine (the copy's value), theirs (the store's) or value.

    Raises NotFound (no such conflict), InvalidInput (already resolved, or a bad value),
    PermissionDenied (the user may not resolve conflicts on that customer).
    """
    if take not in TAKES:
        raise InvalidInput(tr(f"--take 只能是 mine、theirs 或一个值，收到 {take}", f"--take is mine, theirs or a value; got {take}"))
    with store.transaction(user, "cli") as tx:
        row = tx.conn.execute(select(sync_conflicts).where(sync_conflicts.c.id == conflict_id)).mappings().first()
        if row is None:
            raise NotFound(tr(f"冲突 #{conflict_id} 不存在", f"conflict #{conflict_id} does not exist"))
        c = _info(row)
        if c.status != "open":
            raise InvalidInput(tr(f"冲突 #{conflict_id} 已于 {c.resolved_at} 由 {c.resolved_by} 处理",
                                  f"conflict #{conflict_id} was resolved by {c.resolved_by} at {c.resolved_at}"))
        current = tx.require_record(c.entity, c.record_id)
        owner = current if c.entity == "customer" else tx.get("customer", current.get("customer_id"))
        decision = access.check(tx.user, "resolve_conflict", owner)
        if not decision:
            raise PermissionDenied(decision.reason)
        reason = tr(f"处理冲突 #{conflict_id}", f"conflict #{conflict_id} resolved")
        chosen = {"mine": c.local, "theirs": current.get(c.field) if c.field != DELETED_FIELD else current.get("deleted"),
                  "value": value}[take]
        if c.field == DELETED_FIELD:
            if take == "mine" and c.local:
                tx.delete(c.entity, c.record_id, reason=reason)
            elif take == "mine" and not c.local and current.get("deleted"):
                tx.restore(c.entity, c.record_id, reason=reason)
            elif take == "value":
                raise InvalidInput(tr("删除冲突只能选 mine 或 theirs", "a delete conflict takes mine or theirs"))
        elif take != "theirs":
            tx.update(c.entity, c.record_id, {c.field: chosen}, reason=reason)
            chosen = tx.get(c.entity, c.record_id).get(c.field)
        resolution = {"take": take, "value": chosen}
        tx.conn.execute(sync_conflicts.update().where(sync_conflicts.c.id == conflict_id).values(
            status="resolved", resolution=audit.dump_value(resolution), resolved_by=tx.user.name,
            resolved_at=tx.now))
        tx.log("resolve_conflict", entity=c.entity, record_id=c.record_id, field=c.field,
               old={"mine": c.local, "theirs": c.store}, new=resolution, reason=reason)
    c.status, c.resolution, c.resolved_by = "resolved", resolution, user
    return c


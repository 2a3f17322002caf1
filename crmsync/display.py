"""Values as people read them: enumeration labels, yes/no, money, audit rows for tables."""

from __future__ import annotations

from sqlalchemy import select

from .audit import load_value
from .i18n import lang, tr
from .schema import Field, entity
from .tables import audit_log


def display_value(store, f: Field, value) -> str:
    """Return the text a person sees for a stored value (labels in the current language)."""
    if value is None or value == "":
        return ""
    if f.type == "enum" and f.enum:
        return store.enums().label(f.enum, value, lang())
    if f.type == "bool":
        return tr("是", "yes") if value else tr("否", "no")
    if f.type == "money":
        return f"{value:,.2f}"
    return str(value)


def _value_text(store, entity_key: str | None, field: str | None, value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return tr(f"（新建，{len(value)} 个字段）", f"(created, {len(value)} fields)")
    try:
        f = entity(entity_key).get(field) if entity_key and field else None
    except KeyError:
        f = None
    return display_value(store, f, value) if f else str(value)


def history_rows(store, entity_key: str, entries: list[dict]) -> list[tuple[str, ...]]:
    """Rows for a history table: seq, time, user, source, action, version, field, old, new, reason."""
    ent = store.entity(entity_key)
    rows = []
    for e in entries:
        field = e["field"]
        try:
            label = ent.get(field).label(lang()) if field and field != "*" else (field or "")
        except KeyError:
            label = field
        rows.append((str(e["seq"]), e["at"], e["user"] or "", e["source"] or "", e["action"],
                     "" if e["version"] is None else str(e["version"]), label,
                     _value_text(store, entity_key, field, e["old_value"]),
                     _value_text(store, entity_key, field, e["new_value"]), e["reason"] or ""))
    return rows


def recent_audit_rows(store, limit: int) -> list[tuple[str, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)).mappings().all()
    out = []
    for r in reversed(rows):
        old, new = load_value(r["old_value"]), load_value(r["new_value"])
        known = r["entity"] in ("customer", "contact", "followup", "service", "deal")
        out.append((str(r["seq"]), r["at"], r["user"] or "", r["source"] or "", r["action"],
                    f"{r['entity'] or ''} {r['record_id'] or ''}".strip(),
                    "" if r["version"] is None else str(r["version"]), r["field"] or "",
                    _value_text(store, r["entity"] if known else None, r["field"], old),
                    _value_text(store, r["entity"] if known else None, r["field"], new), r["reason"] or ""))
    return out

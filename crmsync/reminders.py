"""Reminders: follow-ups due within N days, overdue ones, customers with no contact for M days,
and the dates the admin marks as remindable.  Part of crmsync.reports, which re-exports it.

Each list is one SQL statement over an index (the owner's due follow-ups, the dates in the
window), never a scan of every customer: one user's list stays within ~100 ms at a million
customers (bench/bench_reports.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from . import clock
from .access import User
from .errors import InvalidInput
from .i18n import tr
from .reports import LOST, Scope, _lang, _run, _settings, _text_time, scope_for


# ---- reminders ---------------------------------------------------------------------------------

@dataclass
class Reminder:
    kind: str  # overdue | due | date | no_contact
    customer_id: str
    customer_name: str
    owner: str | None
    priority: str | None
    when: str | None  # the due time / date
    last_contact: str | None
    days_overdue: int | None
    detail: str = ""


KIND_ORDER = {"overdue": 0, "due": 1, "date": 2, "no_contact": 3}
KIND_LABELS = {"overdue": ("已逾期", "Overdue"), "due": ("即将到期", "Due soon"),
               "date": ("重要日期", "Date"), "no_contact": ("长期未联系", "No contact")}

#: Remindable dates when the admin has marked none: a deal's contract end and a contact's birthday
#: (yearly: its month and day).  Setting ``remind_dates``: a list of {"field": "entity.field", "yearly": bool}.
DEFAULT_REMIND_DATES = ({"field": "deal.contract_end", "yearly": False},
                       {"field": "contact.birthday", "yearly": True})


def followups_due_query(scope: Scope, now: datetime, days: int, limit: int | None = None) -> tuple[str, dict]:
    """Customers whose 下次跟进时间 has passed or falls within ``days`` days, earliest first (the
    index on owner and next follow-up gives that order).  A follow-up planned for a time before the
    customer's last contact has happened: it is not overdue."""
    end = datetime.combine(now.date() + timedelta(days=days + 1), datetime.min.time())
    sql = ("SELECT c.customer_id, c.customer_name, c.owner, c.priority, c.next_follow_up, c.last_contact_at "
           "FROM customers c WHERE NOT c.deleted AND c.status <> :lost AND c.next_follow_up IS NOT NULL "
           "AND c.next_follow_up < :due_end AND (c.last_contact_at IS NULL OR c.last_contact_at < c.next_follow_up)"
           f"{scope.sql} ORDER BY c.next_follow_up" + (" LIMIT :lim" if limit else ""))
    return sql, {"lost": LOST, "due_end": _text_time(end), "lim": limit, **scope.params}


def no_contact_query(scope: Scope, now: datetime, no_contact_days: int, limit: int | None = None) -> tuple[str, dict]:
    """Open customers not contacted (or, never contacted, not created) for ``no_contact_days`` days
    and with no follow-up planned ahead."""
    cutoff = _text_time(now - timedelta(days=no_contact_days))
    sql = ("SELECT c.customer_id, c.customer_name, c.owner, c.priority, c.next_follow_up, c.last_contact_at, "
           "COALESCE(c.last_contact_at, c.created_at) FROM customers c WHERE NOT c.deleted AND c.status <> :lost "
           "AND COALESCE(c.last_contact_at, c.created_at) < :cutoff AND (c.next_follow_up IS NULL OR c.next_follow_up < :now)"
           f"{scope.sql}" + (" LIMIT :lim" if limit else ""))
    return sql, {"lost": LOST, "cutoff": cutoff, "now": _text_time(now), "lim": limit, **scope.params}


def remind_dates_query(store, spec: dict, scope: Scope, today: date, days: int) -> tuple[str, dict]:
    """Records whose remindable date (``spec``: {"field": "deal.contract_end", "yearly": …}) falls
    within today … today + days."""
    from .schema import entity

    entity_key, _, field_key = str(spec.get("field", "")).partition(".")
    try:
        ent = store.entity(entity_key)
        f = ent.get(field_key)
    except KeyError:
        raise InvalidInput(tr(f"设置 remind_dates 中的“{spec.get('field')}”不是已知的日期字段",
                              f"remind_dates: '{spec.get('field')}' is not a known date field")) from None
    if f.type not in ("date", "datetime") or f.custom:
        raise InvalidInput(tr(f"设置 remind_dates 中的“{spec.get('field')}”不是日期字段",
                              f"remind_dates: '{spec.get('field')}' is not a date field"))
    end = today + timedelta(days=days)
    params = {"d_start": today.isoformat(), "d_end": end.isoformat(), "lost": LOST, **scope.params}
    col = f"t.{f.key}"
    if spec.get("yearly"):
        col = f"substr(t.{f.key}, 6, 5)"  # the expression of ix_contacts_birthday_md, written the same way
        params.update(d_start=today.strftime("%m-%d"), d_end=end.strftime("%m-%d"))
        cond = (f"{col} >= :d_start AND {col} <= :d_end" if params["d_start"] <= params["d_end"]
                else f"({col} >= :d_start OR {col} <= :d_end)")  # the window crosses new year
    else:
        if f.type == "datetime":
            params["d_end"] = end.isoformat() + " 23:59:59"
        cond = f"{col} >= :d_start AND {col} <= :d_end"
    ent_def = entity(entity_key)
    label = "t.name" if "name" in ent_def.keys else f"t.{ent_def.id_field}"
    key = ent_def.id_field if ent_def.key == "customer" else "customer_id"
    deleted = "" if ent_def.key == "customer" else " AND NOT t.deleted"
    # The dates in the window first (an index on the date), then their customers: a handful of
    # look-ups instead of one per customer of the owner.
    sql = (f"WITH d AS MATERIALIZED (SELECT t.{key} AS cid, t.{f.key} AS at, {label} AS label FROM {ent_def.table} t "
           f"WHERE t.{f.key} IS NOT NULL AND {cond}{deleted}) "
           "SELECT c.customer_id, c.customer_name, c.owner, c.priority, d.at, c.last_contact_at, d.label "
           f"FROM d JOIN customers c ON c.customer_id = d.cid WHERE NOT c.deleted AND c.status <> :lost{scope.sql}")
    return sql, params


def reminders(store, user: User | None = None, *, days: int | None = None, no_contact_days: int | None = None,
              owner: str | None = None, settings: dict | None = None, limit: int | None = None) -> list[Reminder]:
    """The reminder list for what ``user`` may see: per owner, overdue first (most overdue first),
    then due soon, then dates, then customers with no recent contact.

    :param days: follow-ups due within this many days (default: setting ``remind_days``, 3).
    :param no_contact_days: flag customers not contacted for this long (setting ``no_contact_days``).
    :param owner: only this owner's customers.
    :param limit: at most this many follow-up reminders and as many no-contact ones (setting
        ``remind_limit``, default 200; 0 = all): a list longer than a person can work through is
        cut, the most overdue kept.
    """
    cfg = _settings(store, settings)
    days = int(cfg.get("remind_days", 3) if days is None else days)
    no_contact_days = int(cfg.get("no_contact_days", 30) if no_contact_days is None else no_contact_days)
    if days < 0 or no_contact_days < 0:
        raise InvalidInput(tr("天数不能为负数", "days cannot be negative"))
    now = clock.now()
    today = now.date()
    now_text = _text_time(now)
    limit = int(cfg.get("remind_limit", 200) if limit is None else limit) or None
    scope = scope_for(user, owner)
    out: list[Reminder] = []
    for cid, name, own, prio, due, last in _run(store, followups_due_query(scope, now, days, limit)):
        overdue = due < now_text
        late = (today - date.fromisoformat(due[:10])).days if overdue else None
        out.append(Reminder("overdue" if overdue else "due", cid, name, own, prio, due, last, late))
    for spec in cfg.get("remind_dates", DEFAULT_REMIND_DATES):
        f = str(spec.get("field"))
        ent_key, _, key = f.partition(".")
        what = _field_label(store, ent_key, key)
        for cid, name, own, prio, when, last, label in _run(store, remind_dates_query(store, spec, scope, today, days)):
            when = str(when)[:10]
            out.append(Reminder("date", cid, name, own, prio, when, last, None, f"{what}: {label}"))
    for cid, name, own, prio, due, last, since in _run(store, no_contact_query(scope, now, no_contact_days, limit)):
        quiet = (today - date.fromisoformat(since[:10])).days
        out.append(Reminder("no_contact", cid, name, own, prio, due, last, None,
                            tr(f"{quiet} 天未联系", f"no contact for {quiet} days")))
    out.sort(key=lambda r: (r.owner or "", KIND_ORDER[r.kind], -(r.days_overdue or 0),
                            _next_yearly(r, today), r.customer_id))
    return out


def _next_yearly(r: Reminder, today: date) -> str:
    if r.kind == "date" and r.when and len(r.when) >= 10:
        md = r.when[5:10]
        year = today.year + (1 if md < today.strftime("%m-%d") else 0)
        return f"{year}-{md}"
    return r.when or ""


def _field_label(store, entity_key: str, key: str) -> str:
    try:
        ent = store.entity(entity_key)
        return f"{ent.label(_lang())}{ent.get(key).label(_lang())}"
    except KeyError:
        return f"{entity_key}.{key}"

"""Reminders and reports, each one SQL aggregation over the store (no per-row Python).

Every report takes the store and the user it is for: a sales rep sees their own customers, a
manager the team's, an admin everything (access.visible_filter).  Soft-deleted records never count.
Times are the store's text times ('2024-05-21 10:00:00'); "now" is crmsync.clock.

- ``reminders``: follow-ups due within N days (setting ``remind_days``), overdue ones, customers
  with no contact for M days (``no_contact_days``), and the dates the admin marks as remindable
  (``remind_dates``: a deal's contract end, a contact's birthday, …); in crmsync/reminders.py.
- ``status_funnel`` / ``deal_funnel``: how many are at / have reached each stage, the conversion
  from each stage to the next, and the median days spent in each (completed stays only, from the
  stage stays the store keeps as each change is audited: crmsync/report_tables.py); the deal
  funnel names its slowest step.
- ``distribution``: customers by industry, region (province/city), source or level.
- ``owner_activity``: per owner, follow-ups, new customers and conversions (→ 成交客户) in a period.
- ``segments``: 高价值客户 / 潜力客户 / 普通客户 / 流失风险客户 by amount, tenure and contact
  frequency, thresholds in the ``segments`` setting (rules: see SEGMENT_RULES).
- ``data_quality``: missing contact, invalid fields, not verified (updated) for N months.
- ``new_customers_by_month``: the trend of new customers.

Everyone's (an admin's) counts by status, industry, source, level, region and month come from the
counters the store keeps (crmsync/report_tables.py); a scoped user's are counted from their customers.

The SQL of each report is built by a ``*_query`` function returning (sql, params), so the benchmark
can run exactly the same statements with bare sqlite3 and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import orjson
from sqlalchemy import text

from . import clock, report_tables
from .access import User, visible_filter
from .errors import InvalidInput
from .i18n import tr

LOST = "lost"  # the status key that leaves the funnel (seed data: customer_status.lost)
UNSET = "（未填）"


# ---- plumbing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """Which customers a report covers (alias ``c``), as an SQL fragment and its parameters."""

    sql: str = ""
    params: dict = field(default_factory=dict)


def scope_for(user: User | None, owner: str | None = None) -> Scope:
    """The customers ``user`` may view (all for None), optionally only ``owner``'s."""
    parts, params = [], {}
    filt = visible_filter(user) if user is not None else None
    for col, value in (filt or {}).items():
        parts.append(f"c.{col} = :scope_{col}")
        params[f"scope_{col}"] = value
    if owner:
        parts.append("c.owner = :only_owner")
        params["only_owner"] = owner
    return Scope("".join(f" AND {p}" for p in parts), params)


def _customers_by_id(dialect: str) -> str:
    """The customer table joined by id (by its primary key: no covering index on the customers,
    each would cost every bulk insert; see tables.py migration 5)."""
    return "customers c"


def _fence(dialect: str) -> str:
    """Ends a subquery the outer aggregate must not flatten (it would repeat its CASE per SUM)."""
    return " LIMIT -1" if dialect == "sqlite" else " OFFSET 0"


def _run(store, query: tuple[str, dict]) -> list[tuple]:
    sql, params = query
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def _dialect(store) -> str:
    return store.engine.dialect.name


def _text_time(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d") + " 00:00:00"


def _settings(store, settings: dict | None) -> dict:
    return settings if settings is not None else store.settings()


def _label(enums, list_key: str, key) -> str:
    return UNSET if key in (None, "") else enums.label(list_key, key, _lang())


def _lang() -> str:
    from .i18n import lang

    return lang()


# ---- funnels -----------------------------------------------------------------------------------

@dataclass
class Stage:
    key: str
    label: str
    current: int  # records at this stage now
    reached: int  # records that got at least this far
    conversion: float | None  # reached(next) / reached(this); None for the last stage
    median_days: float | None  # median days spent in this stage by those who left it
    left: int = 0  # how many stays the median is taken over


@dataclass
class Funnel:
    stages: list[Stage]
    lost: int = 0  # customers now lost (status funnel)
    slowest: str | None = None  # "报价 → 签约" (deal funnel: the stage with the longest median stay)

    def stage(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)


def _stays_where(scope: Scope, entity: str) -> tuple[str, str, dict]:
    """(join, condition, params) of the completed stays of ``entity`` in scope (alias s).  A scope
    joins the customers (a deal's through the deal)."""
    join = ""
    if scope.sql:
        join = (" JOIN customers c ON c.customer_id = s.record_id" if entity == "customer" else
                " JOIN deals r ON r.deal_id = s.record_id JOIN customers c ON c.customer_id = r.customer_id")
    where = f"s.entity = :entity AND s.deleted = false AND s.stage IS NOT NULL AND s.days IS NOT NULL{scope.sql}"
    return join, where, {"entity": entity, **scope.params}


def stage_medians_query(dialect: str, scope: Scope, entity: str,
                        stays: dict[str, int] | None = None) -> tuple[str, dict]:
    """Median days spent per stage (status for customers, stage for deals): (stage, median, stays).

    Read from the completed stays crmsync.report_tables keeps (each logged change ends a stay in
    the old stage, which began at the change before it or at the record's creation).  PostgreSQL:
    percentile_cont.  SQLite has no median: given the stays per stage (stage_stays_query), it
    reads the middle one or two of each stage in the order of ix_stage_stays_median (entity,
    deleted, stage, days): an offset into an index, no sort.
    """
    join, where, params = _stays_where(scope, entity)
    if dialect == "postgresql":
        sql = (f"SELECT s.stage, percentile_cont(0.5) WITHIN GROUP (ORDER BY s.days), COUNT(*) "
               f"FROM stage_stays s{join} WHERE {where} GROUP BY s.stage")
        return sql, params
    parts = []
    for i, (stage, m) in enumerate(sorted((stays or {}).items())):
        params.update({f"stage_{i}": stage, f"m_{i}": m, f"take_{i}": 2 - m % 2, f"skip_{i}": (m - 1) // 2})
        parts.append(f"SELECT :stage_{i}, AVG(x.days), :m_{i} FROM (SELECT s.days AS days FROM stage_stays s{join} "
                     f"WHERE {where} AND s.stage = :stage_{i} ORDER BY s.days LIMIT :take_{i} OFFSET :skip_{i}) x")
    return (" UNION ALL ".join(parts) or "SELECT NULL, NULL, NULL WHERE 1 = 0"), params


def stage_stays_query(scope: Scope, entity: str) -> tuple[str, dict]:
    """Completed stays per stage, (stage, stays): what the SQLite medians need first."""
    join, where, params = _stays_where(scope, entity)
    return f"SELECT s.stage, COUNT(*) FROM stage_stays s{join} WHERE {where} GROUP BY s.stage", params


def stage_medians(store, scope: Scope, entity: str) -> dict[str, tuple[float, int]]:
    """Stage key → (median days in it, completed stays) for ``entity`` (customer | deal)."""
    dialect = _dialect(store)
    stays = None if dialect == "postgresql" else {k: int(n) for k, n in _run(store, stage_stays_query(scope, entity))}
    if stays == {}:
        return {}
    return {k: (d, int(m)) for k, d, m in _run(store, stage_medians_query(dialect, scope, entity, stays))}


def lost_from_query(scope: Scope, dialect: str = "sqlite") -> tuple[str, dict]:
    """Lost customers by the status they were lost from: the customers whose last stay ended in
    流失客户, by the stage of that stay (ix_stage_stays_next, then ix_stage_stays_record to see
    that no later stay exists: index look-ups only).  A scope joins the customers."""
    join = " JOIN customers c ON c.customer_id = s.record_id" if scope.sql else ""
    # `|| ''`: group by the value, not in the order of ix_stage_stays_median, which the planner
    # would otherwise walk whole to save a sort of two or three groups
    sql = f"""
SELECT s.stage || '', COUNT(*) FROM stage_stays s{join}
WHERE s.entity = 'customer' AND s.next_stage = :lost AND s.deleted = false{scope.sql}
  AND NOT EXISTS (SELECT 1 FROM stage_stays t WHERE t.entity = 'customer' AND t.record_id = s.record_id AND t.id > s.id)
GROUP BY s.stage || ''"""
    return sql, {"lost": LOST, **scope.params}


#: The list fields the customer summary counts by (every value of each list in one pass).
SUMMARY_LISTS = (("status", "customer_status"), ("industry", "industry"), ("source", "source"),
                 ("customer_level", "customer_level"))


def month_keys(today: date, months: int = 12) -> list[str]:
    """'YYYY-MM' of the last ``months`` months up to today's, oldest first."""
    keys = []
    y, m = today.year, today.month
    for _ in range(months):
        keys.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return keys[::-1]


#: What the summary groups the customers by: the summary lists, then region.
SUMMARY_GROUPS = tuple(col for col, _ in SUMMARY_LISTS) + ("province", "city")


def customer_summary_query(scope: Scope, now: datetime, days: int) -> tuple[str, dict]:
    """One pass over the customers, grouped by every summary list and region: customers per group
    and, per group, how many have their next follow-up before now / before the end of the due
    window.  A few thousand groups, rolled up by customer_summary; a CASE per list value and row
    cost more than the whole grouped read."""
    end = datetime.combine(now.date() + timedelta(days=days + 1), datetime.min.time())
    cols = ", ".join(f"c.{col}" for col in SUMMARY_GROUPS)
    sql = (f"SELECT {cols}, COUNT(*), SUM(CASE WHEN c.next_follow_up < :now THEN 1 ELSE 0 END), "
           "SUM(CASE WHEN c.next_follow_up < :due_end THEN 1 ELSE 0 END), MIN(c.customer_id) "
           f"FROM customers c WHERE NOT c.deleted{scope.sql} GROUP BY {cols}")
    return sql, {"now": _text_time(now), "due_end": _text_time(end), **scope.params}


def counts_query() -> tuple[str, dict]:
    """The customer counters crmsync.report_tables keeps: (field, value as JSON, customers), all
    but the per-day ones (activity per owner reads those for its period)."""
    fields = [name for name, _, _ in report_tables.COUNTED["customer"] if not name.endswith("_day")]
    names = [f"f{i}" for i in range(len(fields))]
    return (f"SELECT field, value, n FROM report_counts WHERE field IN ({', '.join(':' + n for n in names)}) AND n <> 0",
            dict(zip(names, fields)))


def due_counts_query(scope: Scope, now: datetime, days: int) -> tuple[str, dict]:
    """Open customers whose next follow-up is before now, and before the end of the due window."""
    end = datetime.combine(now.date() + timedelta(days=days + 1), datetime.min.time())
    sql = ("SELECT SUM(CASE WHEN c.next_follow_up < :now THEN 1 ELSE 0 END), COUNT(*) FROM customers c "
           f"WHERE NOT c.deleted AND c.status <> :lost AND c.next_follow_up < :due_end{scope.sql}")
    return sql, {"now": _text_time(now), "due_end": _text_time(end), "lost": LOST, **scope.params}


def new_customers_query(scope: Scope, today: date, months: int = 12) -> tuple[str, dict]:
    """Customers created in each of the last ``months`` months: (YYYY-MM, count), one pass."""
    keys = month_keys(today, months)
    nxt = date.fromisoformat(keys[-1] + "-01") + timedelta(days=32)
    sql = ("SELECT SUBSTR(c.created_at, 1, 7), COUNT(*) FROM customers c "
           f"WHERE c.created_at >= :start AND c.created_at < :end AND NOT c.deleted{scope.sql} "
           "GROUP BY SUBSTR(c.created_at, 1, 7)")
    return sql, {"start": keys[0] + "-01 00:00:00", "end": nxt.strftime("%Y-%m") + "-01 00:00:00",
                 **scope.params}


@dataclass
class Summary:
    total: int
    counts: dict[str, dict[str | None, int]]  # list field → key (None: empty, "?": not in the list) → customers
    overdue: int
    due: int
    months: list[tuple[str, int]]
    regions: dict[tuple[str | None, str | None], int] = field(default_factory=dict)  # (province, city) → customers
    #: list field → stored value (as is, in the list or not) → (customers, smallest customer id):
    #: what the data-quality list checks count without another pass
    values: dict[str, dict[str | None, tuple[int, str]]] = field(default_factory=dict)


def customer_summary(store, user: User | None = None, *, days: int | None = None, months: int = 12) -> Summary:
    """Counts per value of each summary list and region, the due counts and the monthly trend.

    Everyone's (an admin's): from the counters crmsync.report_tables keeps, plus one pass for the
    due counts.  A scope (a manager's team, a rep's own): two statements over those customers (the
    grouped pass and the months), rolled up over the groups here."""
    enums = store.enums()
    if days is None:
        days = int(store.settings().get("remind_days", 3))
    now = clock.now()
    scope = scope_for(user)
    if not scope.sql:
        return _kept_summary(store, enums, now, days, months)
    keys, counts, values = _empty_counts(enums)
    regions: dict[tuple, int] = {}
    total = overdue = before_end = 0
    n_lists = len(SUMMARY_LISTS)
    for row in _run(store, customer_summary_query(scope, now, days)):
        n, late, soon, first = int(row[-4]), int(row[-3] or 0), int(row[-2] or 0), row[-1]
        total += n
        for (col, _), value in zip(SUMMARY_LISTS, row):
            key = value if value is None or value in keys[col] else "?"
            counts[col][key] += n
            had, example = values[col].get(value, (0, first))
            values[col][value] = (had + n, min(example, first))
        place = (row[n_lists], row[n_lists + 1])
        regions[place] = regions.get(place, 0) + n
        status = row[0]
        if status is not None and status != LOST:  # open customers only (as `status <> lost`)
            overdue += late
            before_end += soon
    trend = dict(_run(store, new_customers_query(scope, now.date(), months)))
    month_list = [(key, int(trend.get(key, 0))) for key in month_keys(now.date(), months)]
    return Summary(total, counts, overdue, before_end - overdue, month_list, regions, values)


def _empty_counts(enums) -> tuple[dict, dict, dict]:
    """Per summary list: its keys; a zero count for every key, for empty (None) and for values not
    in the list ("?"); and an empty map of stored value → (customers, example id)."""
    keys = {col: set(enums.keys(list_key)) for col, list_key in SUMMARY_LISTS}
    counts = {col: {**{k: 0 for k in enums.keys(list_key)}, None: 0, "?": 0} for col, list_key in SUMMARY_LISTS}
    return keys, counts, {col: {} for col, _ in SUMMARY_LISTS}


def _kept_summary(store, enums, now: datetime, days: int, months: int) -> Summary:
    """customer_summary of every customer, from the kept counters (crmsync.report_tables)."""
    keys, counts, values = _empty_counts(enums)
    regions: dict[tuple, int] = {}
    trend: dict[str, int] = {}
    for name, value, n in _run(store, counts_query()):
        value, n = orjson.loads(value), int(n)
        if name == "month":
            trend[value] = trend.get(value, 0) + n
        elif name == "region":
            regions[tuple(value)] = n
        elif name in counts:
            counts[name][value if value is None or value in keys[name] else "?"] += n
            values[name][value] = (n, None)  # no example kept: data_quality finds its own
    total = sum(counts["status"].values())
    overdue, before_end = (int(v or 0) for v in _run(store, due_counts_query(Scope(), now, days))[0])
    month_list = [(key, trend.get(key, 0)) for key in month_keys(now.date(), months)]
    return Summary(total, counts, overdue, before_end - overdue, month_list, regions, values)


def deal_counts_query(scope: Scope, dialect: str = "sqlite") -> tuple[str, dict]:
    sql = (f"SELECT r.stage, COUNT(*), SUM(COALESCE(r.amount, 0)) FROM deals r JOIN {_customers_by_id(dialect)} "
           "ON c.customer_id = r.customer_id "
           f"WHERE NOT r.deleted AND NOT c.deleted{scope.sql} GROUP BY r.stage")
    return sql, dict(scope.params)


def _build_funnel(order: list[str], labels: dict[str, str], current: dict[str, int], furthest: dict[str, int],
                  medians: dict[str, tuple[float, int]]) -> list[Stage]:
    stages = []
    reached = []
    for i, key in enumerate(order):
        reached.append(sum(n for k, n in furthest.items() if k in order and order.index(k) >= i))
    for i, key in enumerate(order):
        conv = (reached[i + 1] / reached[i] if reached[i] else None) if i + 1 < len(order) else None
        med = medians.get(key)
        stages.append(Stage(key, labels[key], current.get(key, 0), reached[i], conv,
                            round(med[0], 1) if med else None, med[1] if med else 0))
    return stages


def status_medians(store, user: User | None = None) -> dict[str, tuple[float, int]]:
    """Stage key → (median days in it, stays) of the customer status funnel."""
    return stage_medians(store, scope_for(user), "customer")


def status_funnel(store, user: User | None = None, summary: Summary | None = None,
                  medians: dict[str, tuple[float, int]] | None = None) -> Funnel:
    """潜在客户 → 意向客户 → 成交客户: counts, conversion between stages and median days in each.

    Reached: customers now at a stage or past it; a lost customer counts as far as the status it
    was lost from (the audit log), or at the first stage when it never moved.
    """
    enums = store.enums()
    order = [k for k in enums.keys("customer_status") if k != LOST]
    labels = {k: enums.label("customer_status", k, _lang()) for k in order}
    scope = scope_for(user)
    summary = summary or customer_summary(store, user)
    current = {k: n for k, n in summary.counts["status"].items() if k in order}
    lost = summary.counts["status"].get(LOST, 0)
    furthest = dict(current)
    placed = 0
    for stage, n in _run(store, lost_from_query(scope, _dialect(store))):
        stage = stage if stage in order else order[0]
        furthest[stage] = furthest.get(stage, 0) + n
        placed += n
    if order:
        furthest[order[0]] = furthest.get(order[0], 0) + lost - placed
    medians = status_medians(store, user) if medians is None else medians
    return Funnel(_build_funnel(order, labels, current, furthest, medians), lost=lost)


def deal_funnel(store, user: User | None = None) -> Funnel:
    """线索 → 需求确认 → 报价 → 签约 → 回款: counts, conversion, median days, the slowest step."""
    enums = store.enums()
    order = enums.keys("deal_stage")
    labels = {k: enums.label("deal_stage", k, _lang()) for k in order}
    scope = scope_for(user)
    current = {k: n for k, n, _ in _run(store, deal_counts_query(scope, _dialect(store)))}
    medians = stage_medians(store, scope, "deal")
    stages = _build_funnel(order, labels, current, dict(current), medians)
    timed = [s for s in stages[:-1] if s.median_days is not None]
    slowest = None
    if timed:
        worst = max(timed, key=lambda s: s.median_days)
        nxt = stages[stages.index(worst) + 1]
        slowest = f"{worst.label} → {nxt.label}"
    return Funnel(stages, slowest=slowest)


# ---- distributions and trend --------------------------------------------------------------------

#: What a distribution can be taken by: the summary's list fields, and region (province + city).
DISTRIBUTIONS = ("industry", "region", "source", "customer_level", "status")


def region_query(scope: Scope) -> tuple[str, dict]:
    sql = (f"SELECT c.province, c.city, COUNT(*) FROM customers c WHERE NOT c.deleted{scope.sql} "
           "GROUP BY c.province, c.city")
    return sql, dict(scope.params)


def distribution(store, user: User | None = None, by: str = "industry",
                 summary: Summary | None = None) -> list[tuple[str, int]]:
    """(label, customers) by a field, largest first; region gives '省份 城市'.  A list field shows
    every value of its list (0 when no customer has it), （未填） for empty and （不在列表中） for
    values the list does not have."""
    if by not in DISTRIBUTIONS:
        raise InvalidInput(tr(f"无法按“{by}”统计；可选 {', '.join(DISTRIBUTIONS)}",
                              f"cannot count by '{by}'; use one of {', '.join(DISTRIBUTIONS)}"))
    if by == "region":
        rows = ([(p, c, n) for (p, c), n in summary.regions.items()] if summary is not None and summary.regions
                else _run(store, region_query(scope_for(user))))
        out = [((f"{p or ''} {c or ''}".strip() if (p or c) else UNSET) if p != c else (p or UNSET), n)
               for p, c, n in rows]
    else:
        summary = summary or customer_summary(store, user)
        f = store.entity("customer").get(by)
        enums = store.enums()
        out = []
        for key, n in summary.counts[by].items():
            if key is None:
                label = UNSET
            elif key == "?":
                label = tr("（不在列表中）", "(not in the list)")
            else:
                label = enums.label(f.enum, key, _lang())
            if n or (key not in (None, "?")):
                out.append((label, n))
    merged: dict[str, int] = {}
    for label, n in out:
        merged[label] = merged.get(label, 0) + n
    return sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))


def new_customers_by_month(store, user: User | None = None, months: int = 12,
                           summary: Summary | None = None) -> list[tuple[str, int]]:
    """(YYYY-MM, new customers) for the last ``months`` months up to this one, empty months included."""
    summary = summary if summary is not None and len(summary.months) == months else \
        customer_summary(store, user, months=months)
    return list(summary.months)


# ---- activity per owner ------------------------------------------------------------------------

def conversions_query(scope: Scope, start: str, end: str, won: str) -> tuple[str, dict]:
    """Customers converted to ``won`` between start and end, per owner: the moves to it that the
    stage stays hold (ix_stage_stays_next), joined to each customer for its owner."""
    sql = ("SELECT c.owner || '' AS owner, COUNT(*) AS w FROM stage_stays s JOIN customers c ON c.customer_id = s.record_id "
           "WHERE s.entity = 'customer' AND s.next_stage = :won AND s.left_at >= :start AND s.left_at < :end "
           f"AND s.deleted = false{scope.sql} GROUP BY c.owner || ''")
    return sql, {"start": start, "end": end, "won": won, **scope.params}


def owner_activity_query(scope: Scope, start: str, end: str, won: str, dialect: str = "sqlite") -> tuple[str, dict]:
    """Activity per owner of the customers in ``scope``, counted from the records: follow-ups,
    new customers and conversions in start … end, one statement."""
    fscope = scope.sql.replace("c.", "fc.")
    conv, params = conversions_query(scope, start, end, won)
    sql = f"""
SELECT owner, SUM(f), SUM(n), SUM(w) FROM (
  SELECT f.user || '' AS owner, COUNT(*) AS f, 0 AS n, 0 AS w FROM followups f
   WHERE NOT f.deleted AND f.follow_time >= :start AND f.follow_time < :end
   {f"AND f.customer_id IN (SELECT fc.customer_id FROM customers fc WHERE 1 = 1{fscope})" if scope.sql else ""}
   GROUP BY f.user || ''
  UNION ALL
  SELECT c.owner || '', 0, COUNT(*), 0 FROM customers c
   WHERE NOT c.deleted AND c.created_at >= :start AND c.created_at < :end{scope.sql} GROUP BY c.owner || ''
  UNION ALL
  SELECT owner, 0, 0, w FROM ({conv}) v
) x GROUP BY owner ORDER BY owner"""
    return sql, params


def counted_days_query(counter: str, first_day: date, after_day: date) -> tuple[str, dict]:
    """The per-day counters (report_counts ``owner_day`` or ``followup_day``) of first_day up to
    the day before after_day: their values start with the day, so that is a range of the key."""
    return ("SELECT value, n FROM report_counts WHERE field = :counter AND value >= :lo AND value < :hi AND n <> 0",
            {"counter": counter, "lo": '["' + first_day.isoformat(), "hi": '["' + after_day.isoformat()})


@dataclass
class Activity:
    owner: str
    followups: int
    new_customers: int
    conversions: int


def default_period(days: int = 30) -> tuple[date, date]:
    """The last ``days`` days up to and including today."""
    today = clock.today()
    return today - timedelta(days=days - 1), today


def owner_activity(store, user: User | None = None, start: date | None = None, end: date | None = None) -> list[Activity]:
    """Per owner, for start … end (dates, both included; default the last 30 days): follow-ups
    logged, customers created, customers converted to 成交客户.  Everyone's (an admin's) from the
    kept per-day counters; a scope's from its records."""
    if start is None or end is None:
        d_start, d_end = default_period()
        start, end = start or d_start, end or d_end
    if end < start:
        raise InvalidInput(tr(f"结束日期 {end} 早于开始日期 {start}", f"end {end} is before start {start}"))
    won = _won_key(store)
    scope = scope_for(user)
    after = end + timedelta(days=1)
    if scope.sql:
        rows = _run(store, owner_activity_query(scope, _text_time(start), _text_time(after), won, _dialect(store)))
    else:  # everyone's: the kept per-day counters and the stage stays (crmsync.report_tables)
        per_owner: dict = {}
        for at, counter in ((0, "followup_day"), (1, "owner_day")):
            for value, n in _run(store, counted_days_query(counter, start, after)):
                per_owner.setdefault(orjson.loads(value)[1] or None, [0, 0, 0])[at] += int(n)
        for owner, n in _run(store, conversions_query(scope, _text_time(start), _text_time(after), won)):
            per_owner.setdefault(owner or None, [0, 0, 0])[2] += int(n)
        rows = [(o, *counts) for o, counts in sorted(per_owner.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))]
    return [Activity(o or UNSET, int(f), int(n), int(w)) for o, f, n, w in rows]


def _won_key(store) -> str:
    order = [k for k in store.enums().keys("customer_status") if k != LOST]
    return order[-1] if order else "won"


# ---- everything at once ------------------------------------------------------------------------

@dataclass
class AllReports:
    """What the dashboard, the report workbook and ``crmsync report`` show."""

    funnel: Funnel
    deals: Funnel
    industry: list[tuple[str, int]]
    region: list[tuple[str, int]]
    source: list[tuple[str, int]]
    level: list[tuple[str, int]]
    activity: list[Activity]
    period: tuple[date, date]
    segments: list[Segment]
    quality: list[QualityCheck]
    trend: list[tuple[str, int]]
    customers: int = 0
    overdue: int = 0
    due: int = 0


def all_reports(store, user: User | None = None, *, start: date | None = None, end: date | None = None,
                settings: dict | None = None, quality: bool = True, duplicates: bool = True) -> AllReports:
    """Every report for ``user`` (the dashboard's figures); one SQL aggregation each.  The counts
    by a list field come once, for every report that needs them (the data-quality list checks
    included): from the kept counters for everyone, from one pass over a scope's customers.

    One statement after another: running them on two connections in threads was measured no faster
    (the two statements did not overlap; bench/RESULTS.md)."""
    cfg = _settings(store, settings)
    if start is None or end is None:
        d_start, d_end = default_period()
        start, end = start or d_start, end or d_end
    summary = customer_summary(store, user, days=int(cfg.get("remind_days", 3)))
    return AllReports(
        funnel=status_funnel(store, user, summary), deals=deal_funnel(store, user),
        industry=distribution(store, user, "industry", summary), region=distribution(store, user, "region", summary),
        source=distribution(store, user, "source", summary), level=distribution(store, user, "customer_level", summary),
        activity=owner_activity(store, user, start, end), period=(start, end),
        segments=segments(store, user, cfg),
        quality=data_quality(store, user, cfg, duplicates=duplicates, summary=summary) if quality else [],
        trend=list(summary.months), customers=summary.total, overdue=summary.overdue, due=summary.due)


# Reminders, segments and data quality live in their own modules (they need the helpers above).
from .reminders import (DEFAULT_REMIND_DATES, KIND_LABELS, KIND_ORDER, Reminder,  # noqa: E402,F401
                        followups_due_query, no_contact_query, remind_dates_query, reminders)
from .report_quality import (QualityCheck, data_quality, data_quality_query, duplicate_check,  # noqa: E402,F401
                             list_check_values, quality_checks)
from .report_segments import (SEGMENT_DEFAULTS, SEGMENT_RULES, Segment, segment_settings, segments,  # noqa: E402,F401
                              segments_query)

"""The data-quality report: missing contact, invalid fields, not verified for N months, likely
duplicates (crmsync.dedupe).  Part of crmsync.reports, which re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from . import clock
from .access import User
from .i18n import tr
from .reports import LOST, Scope, _dialect, _lang, _run, _settings, _text_time, scope_for


# ---- data quality ------------------------------------------------------------------------------

@dataclass
class QualityCheck:
    key: str
    label: str
    count: int
    example: str | None  # one customer id to look at


def quality_checks(dialect: str) -> list[tuple[str, str, str, str]]:
    """(key, zh, en, SQL condition on customer c) of every data-quality check."""
    if dialect == "postgresql":
        bad_mobile = "c.mobile !~ '^1[3-9][0-9]{9}$'"
    else:
        bad_mobile = "(length(c.mobile) <> 11 OR c.mobile NOT GLOB '1[3-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]')"

    def enum_check(col: str, list_key: str) -> str:
        return (f"c.{col} IS NOT NULL AND c.{col} NOT IN "
                f"(SELECT e.key FROM enums e WHERE e.list_key = '{list_key}' AND e.active)")

    return [
        ("missing_contact", "缺少联系方式", "No contact details",
         "c.mobile IS NULL AND c.phone IS NULL AND c.email IS NULL AND NOT EXISTS (SELECT 1 FROM contacts p "
         "WHERE p.customer_id = c.customer_id AND NOT p.deleted AND (p.mobile IS NOT NULL OR p.phone IS NOT NULL "
         "OR p.email IS NOT NULL))"),
        ("invalid_mobile", "手机号无效", "Invalid mobile", f"c.mobile IS NOT NULL AND {bad_mobile}"),
        ("invalid_email", "邮箱无效", "Invalid email", "c.email IS NOT NULL AND c.email NOT LIKE '%_@_%._%'"),
        ("invalid_industry", "所属行业不在列表中", "Industry not in the list", enum_check("industry", "industry")),
        ("invalid_source", "客户来源不在列表中", "Source not in the list", enum_check("source", "source")),
        ("invalid_level", "客户等级不在列表中", "Level not in the list", enum_check("customer_level", "customer_level")),
        ("invalid_status", "客户状态不在列表中", "Status not in the list", enum_check("status", "customer_status")),
        ("lost_without_reason", "流失客户缺少流失原因", "Lost without a lost reason",
         f"c.status = '{LOST}' AND c.lost_reason IS NULL"),
        ("remark_too_long", "备注超过 500 字", "Remark over 500 characters", "length(c.remark) > 500"),
        ("not_verified", "超过 N 个月未核实", "Not verified for N months", "c.updated_at < :verify_cutoff"),
    ]


#: The checks of a value against its list, counted from the customer summary's groups (every
#: stored value with its customers and smallest id) rather than evaluated again for every row.
LIST_CHECKS = {"invalid_industry": ("industry", "industry"), "invalid_source": ("source", "source"),
               "invalid_level": ("customer_level", "customer_level"), "invalid_status": ("status", "customer_status")}


def data_quality_query(dialect: str, scope: Scope, verify_cutoff: str,
                       bad_values: dict[str, list] | None = None) -> tuple[str, dict]:
    """The row checks (every check but LIST_CHECKS) in one pass over the customers, and in the
    same pass the smallest id with each list field's ``bad_values`` (list field → values that are
    not in its list, found by list_check_values)."""
    parts = []
    for key, _, _, cond in quality_checks(dialect):
        if key in LIST_CHECKS:
            continue
        parts.append(f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), MIN(CASE WHEN {cond} THEN c.customer_id END)")
    params = {"verify_cutoff": verify_cutoff, **scope.params}
    for col, values in (bad_values or {}).items():
        names = [f"bad_{col}_{i}" for i in range(len(values))]
        params.update(zip(names, values))
        parts.append(f"MIN(CASE WHEN c.{col} IN ({', '.join(':' + n for n in names)}) THEN c.customer_id END)")
    sql = f"SELECT {', '.join(parts)} FROM customers c WHERE NOT c.deleted{scope.sql}"
    return sql, params


def data_quality(store, user: User | None = None, settings: dict | None = None, *,
                 duplicates: bool = True, summary=None) -> list[QualityCheck]:
    """Each data-quality check with how many customers fail it and one example.

    ``not_verified``: the record was not updated (confirmed) for ``verify_months`` months (setting,
    default 12).  Likely duplicates (customers in a cluster of likely duplicates) come from
    crmsync.dedupe (see duplicate_check); ``duplicates=False`` or no such module leaves that line out.
    """
    cfg = _settings(store, settings)
    months = int(cfg.get("verify_months", 12))
    now = clock.now()
    cutoff = _text_time(now - timedelta(days=round(months * 30.44)))
    listed = list_check_values(store, user, summary)
    bad = {col: values for col, (_, values) in listed.items() if values}
    found = _run(store, data_quality_query(_dialect(store), scope_for(user), cutoff, bad))[0]
    checked = len(found) - len(bad)  # (count, example) per row check, then one example per list field
    examples = dict(zip(bad, found[checked:]))
    row = iter(found[:checked])
    en = _lang() == "en"
    out = []
    for key, zh, en_label, _ in quality_checks(_dialect(store)):
        label = (en_label if en else zh).replace("N", str(months)) if key == "not_verified" else (en_label if en else zh)
        if key in LIST_CHECKS:
            col = LIST_CHECKS[key][0]
            count, example = listed[col][0], examples.get(col)
        else:
            count, example = int(next(row) or 0), next(row)
        out.append(QualityCheck(key, label, count, example))
    dupes = duplicate_check(store, user) if duplicates else None
    if dupes is not None:
        out.append(dupes)
    return out


def list_check_values(store, user: User | None, summary=None) -> dict[str, tuple[int, list]]:
    """LIST_CHECKS from the summary's counts: per list field, how many customers have a value that
    is set but not an active value of its list (read from the enums table now, not the store's
    cached lists), and those values."""
    from .reports import customer_summary

    summary = summary if summary is not None and summary.values else customer_summary(store, user)
    active: dict[str, set] = {}
    for list_key, key in _run(store, ("SELECT e.list_key, e.key FROM enums e WHERE e.active", {})):
        active.setdefault(list_key, set()).add(key)
    out = {}
    for col, list_key in LIST_CHECKS.values():
        bad = {value: n for value, (n, _) in summary.values.get(col, {}).items()
               if n and value is not None and value not in active.get(list_key, set())}
        out[col] = (sum(bad.values()), sorted(bad))
    return out


def duplicate_check(store, user: User | None) -> QualityCheck | None:
    """Likely duplicates among the customers ``user`` may see, found by crmsync.dedupe (record
    linkage, not an SQL aggregation); None when that module is not installed."""
    import importlib.util

    if importlib.util.find_spec("crmsync.dedupe") is None:
        return None
    from .dedupe import customer_config, find_duplicates

    cfg = customer_config()
    cols = ["customer_id", *dict.fromkeys(f.key for f in cfg.fields)]
    scope = scope_for(user)
    sql = f"SELECT {', '.join('c.' + c for c in cols)} FROM customers c WHERE NOT c.deleted{scope.sql} ORDER BY c.customer_id"
    rows = [dict(zip(cols, r)) for r in _run(store, (sql, dict(scope.params)))]
    if len(rows) < 2:
        clusters = []
    else:
        clusters = find_duplicates(rows, cfg).clusters
    involved = sorted(rows[i]["customer_id"] for cluster in clusters for i in cluster)
    return QualityCheck("likely_duplicates", tr("疑似重复", "Likely duplicates"), len(involved),
                        involved[0] if involved else None)

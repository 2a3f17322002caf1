"""Segmentation of customers into 高价值客户 / 潜力客户 / 普通客户 / 流失风险客户 (one SQL pass).

The rules are SEGMENT_RULES, in order; the thresholds are the ``segments`` setting (defaults in
SEGMENT_DEFAULTS and crmsync/data/settings.json).  Part of crmsync.reports, which re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import clock
from .access import User
from .reports import (LOST, Scope, _customers_by_id, _dialect, _fence, _lang, _run, _settings, _text_time, _won_key,
                      scope_for)


# ---- segmentation ------------------------------------------------------------------------------

#: Default thresholds (setting ``segments`` overrides any of them).
SEGMENT_DEFAULTS = {
    "window_days": 90,           # contact frequency = follow-ups in the last 90 days
    "risk_no_contact_days": 60,  # a paying customer not contacted for 60 days is at risk
    "high_value_amount": 500000,  # 累计交易金额 from which a customer is high value
    "active_followups": 3,       # follow-ups in the window that make a customer promising
    "potential_amount": 100000,  # … or a new customer (tenure below the next) already worth this
    "new_customer_days": 365,
}

#: The rules, in order; the first that holds names the segment.  Lost customers are not segmented.
SEGMENT_RULES = (
    ("risk", "流失风险客户", "At-risk",
     "成交客户或有交易金额，且 risk_no_contact_days 天内没有联系 / won or paying, no contact for risk_no_contact_days"),
    ("high", "高价值客户", "High value", "累计交易金额 ≥ high_value_amount / total amount ≥ high_value_amount"),
    ("potential", "潜力客户", "Promising",
     "window_days 天内跟进 ≥ active_followups 次，或合作不满 new_customer_days 天且金额 ≥ potential_amount"
     " / ≥ active_followups follow-ups in window_days, or newer than new_customer_days with amount ≥ potential_amount"),
    ("normal", "普通客户", "Regular", "其余 / the rest"),
)


def segment_settings(settings: dict) -> dict:
    return {**SEGMENT_DEFAULTS, **(settings.get("segments") or {})}


def segments_query(scope: Scope, cfg: dict, now: datetime, won: str, dialect: str = "sqlite") -> tuple[str, dict]:
    """Customers and amount per segment in one pass over the customers (in
    customer order).  Contact frequency is asked only of customers the cheaper rules leave, and
    only up to ``active_followups`` follow-ups: a short range of ix_followups_customer_time, walked
    in customer order, instead of counting every follow-up of the window and joining the counts."""
    since = _text_time(now - timedelta(days=int(cfg["window_days"])))
    risk_cutoff = _text_time(now - timedelta(days=int(cfg["risk_no_contact_days"])))
    new_cutoff = (now.date() - timedelta(days=int(cfg["new_customer_days"]))).isoformat()
    active = int(cfg["active_followups"])
    frequent = ("(SELECT COUNT(*) FROM (SELECT 1 FROM followups f WHERE f.customer_id = c.customer_id "
                "AND f.follow_time >= :since AND NOT f.deleted LIMIT :active) n) >= :active") if active > 0 else "1 = 1"
    sums = ", ".join(f"SUM(CASE WHEN seg = '{k}' THEN 1 ELSE 0 END), SUM(CASE WHEN seg = '{k}' THEN amount ELSE 0 END)"
                     for k, *_ in SEGMENT_RULES)
    sql = f"""
SELECT {sums}
FROM (
  SELECT CASE
    WHEN (c.status = :won OR COALESCE(c.total_amount, 0) > 0)
         AND COALESCE(c.last_contact_at, c.created_at) < :risk_cutoff THEN 'risk'
    WHEN COALESCE(c.total_amount, 0) >= :high_amount THEN 'high'
    WHEN (COALESCE(c.total_amount, 0) >= :potential_amount
          AND COALESCE(c.first_deal_date, substr(c.created_at, 1, 10)) >= :new_cutoff)
         OR {frequent} THEN 'potential'
    ELSE 'normal' END AS seg,
    COALESCE(c.total_amount, 0) AS amount
  FROM {_customers_by_id(dialect)}
  WHERE NOT c.deleted AND c.status <> :lost{scope.sql}{_fence(dialect)}
) x"""
    return sql, {"since": since, "won": won, "risk_cutoff": risk_cutoff, "high_amount": cfg["high_value_amount"],
                 "active": active, "potential_amount": cfg["potential_amount"],
                 "new_cutoff": new_cutoff, "lost": LOST, **scope.params}


@dataclass
class Segment:
    key: str
    label: str
    customers: int
    amount: float
    rule: str


def segments(store, user: User | None = None, settings: dict | None = None) -> list[Segment]:
    """Customers (not lost) per segment, in rule order, with their total amount."""
    cfg = segment_settings(_settings(store, settings))
    row = _run(store, segments_query(scope_for(user), cfg, clock.now(), _won_key(store), _dialect(store)))[0]
    found = {key: (int(row[2 * i] or 0), float(row[2 * i + 1] or 0)) for i, (key, *_) in enumerate(SEGMENT_RULES)}
    en = _lang() == "en"
    return [Segment(key, en_label if en else zh, found.get(key, (0, 0.0))[0], float(found.get(key, (0, 0.0))[1]), rule)
            for key, zh, en_label, rule in SEGMENT_RULES]

"""Reports benchmark: every report over 1,000,000 customers and 5,000,000 follow-ups in SQLite.

Goals (issue #6), measured side by side in this run:
- all reports (crmsync.reports.all_reports: both funnels, four distributions, activity per owner,
  segments, data quality, the monthly trend, the due counts) ≤ 10 s together;
- ≤ 1.5× the same SQL statements run with bare sqlite3 (so the reports add no per-row Python);
- the reminder list of one sales rep ≤ 100 ms (an index, not a scan: the plan is printed).

The database is built once with bare sqlite3 (bench/reports_data.py, ~8 minutes for the full size)
under /tmp/reports-bench/ and reused.

Run: .venv/bin/python bench/bench_reports.py [CUSTOMERS] [FOLLOWUPS] [ROUNDS]
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import peak_rss_mb  # noqa: E402
from reports_data import DEFAULT_PATH, NOW, build  # noqa: E402

from crmsync import clock, reports  # noqa: E402
from crmsync.store import Store  # noqa: E402


def report_statements(store) -> list[tuple[str, str, dict]]:
    """(name, sql, params) of every statement all_reports runs for the admin, built by reports.py
    (the admin's summary reads the kept counters, crmsync/report_tables.py)."""
    scope = reports.scope_for(None)
    dialect = store.engine.dialect.name
    now = clock.now()
    cfg = store.settings()
    start, end = reports.default_period()
    from datetime import timedelta

    won = reports._won_key(store)
    verify_cutoff = reports._text_time(now - timedelta(days=round(int(cfg.get("verify_months", 12)) * 30.44)))
    bad = {col: values for col, (_, values) in reports.list_check_values(store, None).items() if values}
    days = int(cfg.get("remind_days", 3))

    def stays(entity: str) -> dict[str, int]:  # what the medians statement is built from
        return dict(reports._run(store, reports.stage_stays_query(scope, entity)))

    out = [
        ("customer counters", *reports.counts_query()),
        ("due counts", *reports.due_counts_query(scope, now, days)),
        ("lost from", *reports.lost_from_query(scope, dialect)),
        ("status stays", *reports.stage_stays_query(scope, "customer")),
        ("status medians", *reports.stage_medians_query(dialect, scope, "customer", stays("customer"))),
        ("deal counts", *reports.deal_counts_query(scope, dialect)),
        ("deal stays", *reports.stage_stays_query(scope, "deal")),
        ("deal medians", *reports.stage_medians_query(dialect, scope, "deal", stays("deal"))),
        ("follow-ups/day", *reports.counted_days_query("followup_day", start, end + timedelta(days=1))),
        ("new/owner/day", *reports.counted_days_query("owner_day", start, end + timedelta(days=1))),
        ("conversions", *reports.conversions_query(scope, reports._text_time(start),
                                                   reports._text_time(end + timedelta(days=1)), won)),
        ("segments", *reports.segments_query(scope, reports.segment_settings(cfg), now, won, dialect)),
        ("data quality", *reports.data_quality_query(dialect, scope, verify_cutoff, bad)),
    ]
    return out


def main(customers: int = 1_000_000, followups: int = 5_000_000, rounds: int = 3) -> dict:
    clock.set_now(NOW)
    path = DEFAULT_PATH if (customers, followups) == (1_000_000, 5_000_000) else \
        DEFAULT_PATH.with_name(f"crm-bench-{customers}-{followups}.db")
    started = time.perf_counter()
    build(path, customers, followups)
    print(f"database: {path} ({path.stat().st_size / 1e9:.2f} GB; ready in {time.perf_counter() - started:.0f} s)")
    store = Store(path)
    statements = report_statements(store)
    bare = sqlite3.connect(path)
    bare.execute("PRAGMA cache_size=-64000")  # as the store's engine sets it (engine.py)

    # warm the page cache once, so neither side pays the first read from disk
    for _, sql, params in statements:
        bare.execute(sql, params).fetchall()
    ours, theirs, per_query = [], [], {name: [] for name, _, _ in statements}
    for _ in range(rounds):  # alternate the two: a noisy neighbour hits both alike
        t = time.perf_counter()
        for name, sql, params in statements:
            q = time.perf_counter()
            bare.execute(sql, params).fetchall()
            per_query[name].append(time.perf_counter() - q)
        theirs.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = reports.all_reports(store, duplicates=False)
        ours.append(time.perf_counter() - t)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)

    reps = [u.name for u in store.users() if u.role == "rep"][:10]
    times = []
    sizes = []
    for name in reps:
        user = store.user(name)
        t = time.perf_counter()
        found = reports.reminders(store, user)
        times.append(time.perf_counter() - t)
        sizes.append(len(found))
    plan_sql, plan_params = reports.followups_due_query(reports.scope_for(store.user(reps[0])), clock.now(), 3)
    plan = [r[-1] for r in bare.execute("EXPLAIN QUERY PLAN " + plan_sql, plan_params)]

    print(f"customers {customers:,}, follow-ups {followups:,}, rounds {rounds} (medians)")
    for name, samples in per_query.items():
        print(f"  {name:<16} {statistics.median(samples):6.2f} s (bare sqlite3)")
    print(f"all reports, bare sqlite3 (same SQL)  {theirs_s:6.2f} s")
    print(f"all reports, crmsync.reports          {ours_s:6.2f} s   ratio {ours_s / theirs_s:.2f}× (goal ≤ 1.5×), "
          f"goal ≤ 10 s: {'met' if ours_s <= 10 else 'NOT met'}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"  funnel: {[(s.label, s.reached, s.median_days) for s in result.funnel.stages]}; "
          f"slowest deal step: {result.deals.slowest}")
    print(f"reminders of one rep: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"over {len(reps)} reps ({statistics.median(sizes):.0f} reminders each; goal ≤ 100 ms)")
    print(f"  plan: {plan}")
    print(f"peak memory {peak_rss_mb():.0f} MB")
    store.close()
    return {"reports_s": ours_s, "bare_s": theirs_s, "ratio": ours_s / theirs_s,
            "reminders_ms": statistics.median(times) * 1000}


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)

"""The reports benchmark's database: N customers and M follow-ups, built once with bare sqlite3.

The schema comes from crmsync (Store(create=True): every table, index and migration); the rows are
generated with a fixed seed and inserted with plain ``executemany`` of tuples, which is ~10× faster
than going through the store (no validation, no hash chain: the bench measures reading).  Status
and deal-stage changes are written to the audit log as the store would stamp them, plus one
creation entry per customer, so the funnel reports read a log of a realistic size.

The file is reused when it exists with the same sizes (a table ``bench_info`` records them).

Run alone: .venv/bin/python bench/reports_data.py [CUSTOMERS] [FOLLOWUPS] [PATH]
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_PATH = Path("/tmp/reports-bench/crm-bench.db")
NOW = datetime(2024, 5, 21, 10, 0, 0)

TEAMS = ["华东销售部", "华南销售部", "华北销售部", "西南销售部", "华中销售部"]
PLACES = [("上海市", "上海市"), ("浙江省", "杭州市"), ("浙江省", "宁波市"), ("江苏省", "苏州市"),
          ("江苏省", "南京市"), ("广东省", "深圳市"), ("广东省", "广州市"), ("福建省", "厦门市"),
          ("北京市", "北京市"), ("天津市", "天津市"), ("四川省", "成都市"), ("重庆市", "重庆市"),
          ("湖北省", "武汉市"), ("湖南省", "长沙市"), ("山东省", "青岛市"), ("河南省", "郑州市")]
INDUSTRIES = ["manufacturing", "software", "finance", "retail", "healthcare", "education", "construction",
              "logistics", "energy", "food", "government", "other"]
SOURCES = ["exhibition", "online", "referral", "cold_call", "partner", "other"]
LEVELS = ["vip", "important", "normal"]
METHODS = ["phone", "visit", "email", "wechat"]
STAGES = ["lead", "needs", "quote", "signed", "paid"]
TEXTS = ["电话沟通产品方案，客户对新版本感兴趣", "上门拜访，演示系统功能，客户反馈良好", "发送报价单及产品资料",
         "微信沟通交付周期", "确认采购预算和决策流程", "回访使用情况，收集改进建议"]
TAGS = [None, None, "高预算", "决策快", "价格敏感", "高预算,年度采购", "政府项目"]


def _t(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def users() -> list[tuple[str, str, str]]:
    """(name, role, team): one manager and ten reps per team."""
    out = []
    for i, team in enumerate(TEAMS):
        out.append((f"mgr{i}", "manager", team))
        out += [(f"rep{i}_{k}", "rep", team) for k in range(10)]
    return out


def build(path: Path = DEFAULT_PATH, customers: int = 1_000_000, followups: int = 5_000_000,
          *, log=print) -> Path:
    """Create (or reuse) the bench store at path; return path."""
    path = Path(path)
    if path.exists():
        try:
            con = sqlite3.connect(path)
            info = dict(con.execute("SELECT key, value FROM bench_info").fetchall())
            con.close()
            if info.get("customers") == str(customers) and info.get("followups") == str(followups):
                return path
        except sqlite3.Error:
            pass
        path.unlink()
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            extra.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    from crmsync import clock
    from crmsync.store import Store
    from crmsync.tables import ENTITY_TABLES

    clock.set_now(NOW)
    Store(path, create=True).close()  # every table, index and migration, as a real store has them
    started = time.perf_counter()
    rng = random.Random(20240521)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    con.execute("BEGIN")
    people = users()
    con.executemany("INSERT INTO teams (name, created_at) VALUES (?, ?)", [(t, _t(NOW)) for t in TEAMS])
    con.executemany("INSERT INTO users (name, role, team, display_name, active, created_at) VALUES (?,?,?,?,1,?)",
                    [(n, r, t, n, _t(NOW)) for n, r, t in people])
    reps = [(n, t) for n, r, t in people if r == "rep"]

    cols = [c.name for c in ENTITY_TABLES["customer"].columns]
    audit_cols = "seq, at, user, source, action, entity, record_id, version, field, old_value, new_value, reason, prev_hash, hash"
    audit_sql = f"INSERT INTO audit_log ({audit_cols}) VALUES ({','.join('?' * 14)})"
    seq = 0
    cust_rows, audit_rows = [], []
    created = []  # per customer: created datetime
    owners = []
    span = 730 * 86400
    start = NOW - timedelta(days=730)
    for i in range(customers):
        cid = f"C{20220521 + 0}{i:07d}"
        c_at = start + timedelta(seconds=rng.randrange(span))
        owner, team = reps[rng.randrange(len(reps))]
        status = rng.choices(("potential", "intent", "won", "lost"), (40, 25, 25, 10))[0]
        place = PLACES[rng.randrange(len(PLACES))]
        amount = round(rng.uniform(1, 2000)) * 1000.0 if status == "won" else 0.0
        first_deal = None
        # status history as the store's audit log stamps it
        path_ = {"potential": [], "intent": ["intent"], "won": ["intent", "won"],
                 "lost": rng.choice([["lost"], ["intent", "lost"]])}[status]
        at, prev = c_at, "potential"
        seq += 1
        audit_rows.append((seq, _t(c_at), owner, "bench", "create", "customer", cid, 1, "*", None,
                           '{"customer_name":"x","status":"potential"}', None, "0", "0"))
        version = 1
        for s in path_:
            at = at + timedelta(days=rng.uniform(1, 90))
            if at >= NOW:
                break
            version += 1
            seq += 1
            audit_rows.append((seq, _t(at), owner, "bench", "update", "customer", cid, version, "status",
                               f'"{prev}"', f'"{s}"', "bench", "0", "0"))
            if s == "won":
                first_deal = at.strftime("%Y-%m-%d")
            prev = s
        status = prev
        if status != "won":
            amount = 0.0
        row = dict.fromkeys(cols)
        row.update(customer_id=cid, customer_name=f"基准客户{i}有限公司", customer_type="enterprise",
                   contact_name=None if i % 23 == 0 else "张三",
                   mobile=None if i % 23 == 0 else (f"13{rng.randrange(10**9):09d}" if i % 211 else "123"),
                   email=None, industry=INDUSTRIES[rng.randrange(len(INDUSTRIES))] if i % 97 else "bogus",
                   customer_level=LEVELS[rng.randrange(3)], status=status,
                   lost_reason=("price" if i % 5 else None) if status == "lost" else None,
                   source=SOURCES[rng.randrange(len(SOURCES))], priority="medium",
                   tags=TAGS[rng.randrange(len(TAGS))], province=place[0], city=place[1],
                   owner=owner, team=team, first_deal_date=first_deal, total_amount=amount,
                   approval_status="approved", created_at=_t(c_at), created_by=owner,
                   updated_at=_t(max(at, c_at)), updated_by=owner, version=version, deleted=0)
        cust_rows.append(tuple(row[c] for c in cols))
        created.append(c_at)
        owners.append(owner)
        if len(cust_rows) >= 50_000:
            con.executemany(f"INSERT INTO customers VALUES ({','.join('?' * len(cols))})", cust_rows)
            con.executemany(audit_sql, audit_rows)
            cust_rows.clear()
            audit_rows.clear()
    con.executemany(f"INSERT INTO customers VALUES ({','.join('?' * len(cols))})", cust_rows)
    con.executemany(audit_sql, audit_rows)
    log(f"  customers: {customers:,} in {time.perf_counter() - started:.0f} s")

    # follow-ups: spread over each customer's life; the latest one sets last contact / next follow-up
    fcols = [c.name for c in ENTITY_TABLES["followup"].columns]
    last = [None] * customers
    nxt = [None] * customers
    rows = []
    for j in range(followups):
        k = rng.randrange(customers)
        life = (NOW - created[k]).total_seconds()
        when = created[k] + timedelta(seconds=rng.random() * life)
        nt = when + timedelta(days=rng.randint(2, 20))
        if last[k] is None or when > last[k]:
            last[k], nxt[k] = when, nt
        r = dict.fromkeys(fcols)
        ws = _t(when)
        r.update(follow_id=f"F{j:011d}", customer_id=f"C20220521{k:07d}", user=owners[k], follow_time=ws,
                 method=METHODS[j % 4], content=TEXTS[j % len(TEXTS)], next_step="跟进报价",
                 next_time=_t(nt), created_at=ws, created_by=owners[k], updated_at=ws, updated_by=owners[k],
                 version=1, deleted=0)
        rows.append(tuple(r[c] for c in fcols))
        if len(rows) >= 100_000:
            con.executemany(f"INSERT INTO followups VALUES ({','.join('?' * len(fcols))})", rows)
            rows.clear()
    con.executemany(f"INSERT INTO followups VALUES ({','.join('?' * len(fcols))})", rows)
    log(f"  follow-ups: {followups:,} in {time.perf_counter() - started:.0f} s")
    con.executemany("UPDATE customers SET last_contact_at = ?, next_follow_up = ? WHERE customer_id = ?",
                    ((_t(last[k]), _t(nxt[k]), f"C20220521{k:07d}") for k in range(customers) if last[k]))

    # contacts (one for most customers, a birthday on some) and deals (intent/won customers)
    pcols = [c.name for c in ENTITY_TABLES["contact"].columns]
    dcols = [c.name for c in ENTITY_TABLES["deal"].columns]
    prow, drow, audit_rows = [], [], []
    statuses = dict(con.execute("SELECT customer_id, status FROM customers"))
    d = 0
    for k in range(customers):
        cid = f"C20220521{k:07d}"
        if k % 10:
            r = dict.fromkeys(pcols)
            bd = f"{rng.randint(1965, 1999)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if k % 3 == 0 else None
            r.update(contact_id=f"P{k:011d}", customer_id=cid, name="李四", mobile=f"139{rng.randrange(10**8):08d}",
                     birthday=bd, is_primary=1, created_at=_t(created[k]), created_by=owners[k],
                     updated_at=_t(created[k]), updated_by=owners[k], version=1, deleted=0)
            prow.append(tuple(r[c] for c in pcols))
        if statuses[cid] in ("intent", "won") and k % 3 == 0:
            d += 1
            did = f"D{d:011d}"
            final = rng.randrange(3) if statuses[cid] == "intent" else rng.randrange(3, 5)
            at = created[k]
            version = 1
            seq += 1
            audit_rows.append((seq, _t(at), owners[k], "bench", "create", "deal", did, 1, "*", None,
                               '{"stage":"lead"}', None, "0", "0"))
            stage = "lead"
            for s in STAGES[1:final + 1]:
                step = at + timedelta(days=rng.uniform(1, 20 if s != "quote" else 45))
                if step >= NOW:
                    break
                at, version, seq = step, version + 1, seq + 1
                audit_rows.append((seq, _t(at), owners[k], "bench", "update", "deal", did, version, "stage",
                                   f'"{stage}"', f'"{s}"', None, "0", "0"))
                stage = s
            r = dict.fromkeys(dcols)
            end = (NOW + timedelta(days=rng.randint(-30, 365))).strftime("%Y-%m-%d")
            r.update(deal_id=did, customer_id=cid, product="CRM 专业版", amount=round(rng.uniform(2, 80)) * 1000.0,
                     deal_date=at.strftime("%Y-%m-%d"), stage=stage, owner=owners[k], contract_end=end,
                     created_at=_t(created[k]), created_by=owners[k], updated_at=_t(at), updated_by=owners[k],
                     version=version, deleted=0)
            drow.append(tuple(r[c] for c in dcols))
    con.executemany(f"INSERT INTO contacts VALUES ({','.join('?' * len(pcols))})", prow)
    con.executemany(f"INSERT INTO deals VALUES ({','.join('?' * len(dcols))})", drow)
    con.executemany(audit_sql, audit_rows)
    con.execute("UPDATE audit_head SET seq = ?, hash = '0' WHERE id = 1", (seq,))
    con.execute("CREATE TABLE bench_info (key TEXT PRIMARY KEY, value TEXT)")
    con.executemany("INSERT INTO bench_info VALUES (?, ?)", [("customers", str(customers)), ("followups", str(followups))])
    con.execute("COMMIT")
    con.close()
    # the rows went in with bare sqlite3, past the store: fill its report tables as `crmsync report
    # rebuild` does (from here on the store keeps them itself)
    with Store(path) as s:
        s.rebuild_report_tables()
    log(f"  contacts {len(prow):,}, deals {len(drow):,}, audit entries {seq:,}; built in "
        f"{time.perf_counter() - started:.0f} s: {path}")
    return path


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000_000
    p = Path(sys.argv[3]) if len(sys.argv) > 3 else DEFAULT_PATH
    build(p, n, m)

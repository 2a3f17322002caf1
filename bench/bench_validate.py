"""Benchmark: validate 100,000 customer rows, validate_table against plain per-row pydantic.

Goal (issue): validate_table at least 2x the rows/s of a plain pydantic model validated row by
row with the same rules, both measured here in the same run.

    .venv/bin/python bench/bench_validate.py            # 100,000 rows
    .venv/bin/python bench/bench_validate.py --rows 20000 --repeat 1

The rows are generated with a fixed seed: company names, mobiles as text, floats, ints and with
+86, emails, credit codes with a correct check character, dates in mixed formats, amounts as
numbers and as text, enumerations as labels, and ~1% bad cells.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydantic  # noqa: E402
from pydantic import field_validator, model_validator  # noqa: E402
from stdnum.cn import ric, uscc  # noqa: E402

from crmsync import clock  # noqa: E402
from crmsync.normalise import default_enums, normalise_type  # noqa: E402
from crmsync.schema import CUSTOMER  # noqa: E402
from crmsync.validate import validate_table  # noqa: E402

# ---- realistic rows ------------------------------------------------------------------------------

CITIES = [("北京市", "北京", "朝阳区", "110105"), ("上海市", "上海", "浦东新区", "310115"),
          ("广东省", "深圳", "南山区", "440305"), ("浙江省", "杭州", "西湖区", "330106"),
          ("广东省", "广州", "天河区", "440106"), ("四川省", "成都", "武侯区", "510107"),
          ("江苏省", "苏州", "工业园区", "320571"), ("江苏省", "南京", "鼓楼区", "320106"),
          ("湖北省", "武汉", "洪山区", "420111"), ("陕西省", "西安", "雁塔区", "610113")]
WORDS = "华信达恒瑞鑫盛博智创联泰宏安嘉越新源中科天合正弘"
TRADES = ["科技", "贸易", "电子", "机械", "医药", "物流", "建设", "软件", "食品", "新材料", "信息技术"]
SUFFIXES = ["有限公司", "有限公司", "股份有限公司", "有限责任公司", "集团有限公司"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "aliyun.com", "outlook.com"]
PINYIN = ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun"]
STATUSES = ["潜在客户", "意向客户", "成交客户", "流失客户", "意向", "成交"]
LEVELS = ["VIP客户", "重要客户", "普通客户", "A类", "普通"]
SOURCES = ["展会推荐", "线上推广", "转介绍", "电话营销", "合作伙伴", "老客户介绍"]
INDUSTRIES = ["智能制造", "软件开发", "金融服务", "零售电商", "医疗健康", "制造业", "互联网", "物流"]
LOST = ["价格过高", "选择竞品", "需求取消", "联系不上"]
TAGS = ["重点客户", "华东", "华南", "老客户", "展会", "VIP", "待回访", "大客户"]
OWNERS = [f"{s}{g}" for s in SURNAMES[:10] for g in GIVEN[:5]]
TEAMS = ["华东一组", "华东二组", "华南组", "华北组", "大客户部"]
REMARKS = ["客户对价格比较敏感，需要再次确认报价", "已发送产品资料，等待客户内部评审", "春节后再联系",
           "老客户介绍，合作意向强", "需要安排技术人员上门演示"]
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _person(rnd: random.Random) -> str:
    return rnd.choice(SURNAMES) + "".join(rnd.choice(GIVEN) for _ in range(rnd.choice((1, 2))))


def _credit_code(rnd: random.Random, region: str) -> str:
    body = "91" + region + "".join(rnd.choice(USCC_ALPHABET[:10] + "ABCDEFGH") for _ in range(9))
    return body + uscc.calc_check_digit(body)


def _id_number(rnd: random.Random, region: str) -> str:
    born = date(1950, 1, 1) + timedelta(days=rnd.randrange(18000))
    body = f"{region}{born:%Y%m%d}{rnd.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


def _mobile(rnd: random.Random) -> object:
    digits = rnd.choice("3456789") + "".join(rnd.choice("0123456789") for _ in range(9))
    m = "1" + digits
    kind = rnd.random()
    if kind < 0.6:
        return m
    if kind < 0.75:
        return float(m)  # Excel gave a number
    if kind < 0.85:
        return f"+86 {m[:3]} {m[3:7]} {m[7:]}"
    if kind < 0.95:
        return f"{m[:3]}-{m[3:7]}-{m[7:]}"
    return int(m)


def _date(rnd: random.Random) -> object:
    d = date(2015, 1, 1) + timedelta(days=rnd.randrange(3800))
    kind = rnd.random()
    if kind < 0.3:
        return datetime(d.year, d.month, d.day)
    if kind < 0.5:
        return f"{d.year}/{d.month}/{d.day}"
    if kind < 0.7:
        return d.isoformat()
    if kind < 0.85:
        return float((d - date(1899, 12, 30)).days)  # an Excel serial
    return f"{d.year}年{d.month}月{d.day}日"


def _amount(rnd: random.Random) -> object:
    x = round(rnd.lognormvariate(11, 1.2), 2)
    kind = rnd.random()
    if kind < 0.7:
        return x
    if kind < 0.85:
        return f"¥{x:,.2f}"
    return f"{x / 10000:.1f}万"


BAD = {  # what a bad cell of a field looks like (~1% of filled cells)
    "mobile": lambda v, rnd: "1381234567", "email": lambda v, rnd: str(v).replace("@", ""),
    "credit_code": lambda v, rnd: str(v)[:-1] + ("0" if str(v)[-1] != "0" else "1"),
    "status": lambda v, rnd: "合作", "industry": lambda v, rnd: "航天", "customer_level": lambda v, rnd: "D类",
    "first_deal_date": lambda v, rnd: "2024-13-45", "total_amount": lambda v, rnd: "面议",
    "customer_name": lambda v, rnd: str(v) + "\u200b", "phone": lambda v, rnd: "12345",
}


def make_rows(n: int, seed: int = 20240521, bad_rate: float = 0.01) -> list[dict]:
    """Return n realistic customer rows keyed by field key, ~bad_rate of filled cells bad."""
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        province, city, district, region = rnd.choice(CITIES)
        enterprise = rnd.random() < 0.8
        status = rnd.choice(STATUSES)
        row: dict[str, Any] = {
            "customer_name": (city + "".join(rnd.sample(WORDS, 2)) + rnd.choice(TRADES) + rnd.choice(SUFFIXES)
                              if enterprise else _person(rnd)),
            "customer_type": rnd.choice(["企业客户", "企业", "公司"] if enterprise else ["个人客户", "个人"]),
            "credit_code": _credit_code(rnd, region) if enterprise and rnd.random() < 0.9 else None,
            "id_number": _id_number(rnd, region) if not enterprise and rnd.random() < 0.7 else None,
            "contact_name": _person(rnd),
            "mobile": _mobile(rnd) if rnd.random() < 0.85 else None,
            "phone": (f"0{rnd.choice(['10', '21', '755', '571'])}-{rnd.randrange(2000000, 89999999)}"
                      if rnd.random() < 0.3 else None),
            "email": (f"{rnd.choice(PINYIN)}{rnd.choice(['.', '_', ''])}{rnd.choice(PINYIN)}{rnd.randrange(100)}"
                      f"@{rnd.choice(DOMAINS)}" if rnd.random() < 0.6 else ""),
            "industry": rnd.choice(INDUSTRIES),
            "customer_level": rnd.choice(LEVELS),
            "status": status,
            "lost_reason": rnd.choice(LOST) if "流失" in status and rnd.random() < 0.95 else None,
            "source": rnd.choice(SOURCES),
            "priority": rnd.choice("高中低"),
            "tags": "，".join(rnd.sample(TAGS, rnd.randrange(0, 3))),
            "province": province, "city": city + "市", "district": district,
            "address": f"{district}{rnd.choice(WORDS)}{rnd.choice(WORDS)}路{rnd.randrange(1, 999)}号",
            "owner": rnd.choice(OWNERS), "team": rnd.choice(TEAMS),
            "first_deal_date": _date(rnd) if rnd.random() < 0.7 else None,
            "total_amount": _amount(rnd) if rnd.random() < 0.8 else None,
            "next_follow_up": (f"2026-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d} {rnd.randrange(9, 18)}:00"
                               if rnd.random() < 0.5 else None),
            "remark": rnd.choice(REMARKS) if rnd.random() < 0.2 else None,
        }
        for key, v in row.items():
            if v not in (None, "") and rnd.random() < bad_rate:
                row[key] = BAD[key](v, rnd) if key in BAD and rnd.random() < 0.8 else "#N/A"
        rows.append(row)
    return rows


# ---- the reference: a plain pydantic model, validated row by row, with the same rules ------------

ENUMS = default_enums()
MAX_LENGTH = {f.key: f.max_length for f in CUSTOMER.fields if f.max_length}


def _rule(key: str, type_: str, enum: str | None = None):
    """Return a before-validator applying one field's type, list and length rules."""

    def check(cls, v):
        val, code = normalise_type(v, type_)
        if code is not None:
            raise ValueError(code)
        if enum is not None and val is not None:
            val = ENUMS.normalise(enum, val)
            if val is None:
                raise ValueError("not_in_list")
        if isinstance(val, str) and key in MAX_LENGTH and len(val) > MAX_LENGTH[key]:
            raise ValueError("too_long")
        return val

    return field_validator(key, mode="before")(check)


class ReferenceCustomer(pydantic.BaseModel):
    customer_name: str
    customer_type: str
    credit_code: str | None = None
    id_number: str | None = None
    contact_name: str | None = None
    mobile: str | None = None
    phone: str | None = None
    email: str | None = None
    industry: str | None = None
    customer_level: str | None = None
    status: str
    lost_reason: str | None = None
    source: str | None = None
    priority: str | None = None
    tags: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    address: str | None = None
    owner: str | None = None
    team: str | None = None
    first_deal_date: str | None = None
    total_amount: float | None = None
    next_follow_up: str | None = None
    remark: str | None = None

    _customer_name = _rule("customer_name", "name")
    _customer_type = _rule("customer_type", "enum", "customer_type")
    _credit_code = _rule("credit_code", "credit_code")
    _id_number = _rule("id_number", "id_number")
    _contact_name = _rule("contact_name", "name")
    _mobile = _rule("mobile", "mobile")
    _phone = _rule("phone", "phone")
    _email = _rule("email", "email")
    _industry = _rule("industry", "enum", "industry")
    _customer_level = _rule("customer_level", "enum", "customer_level")
    _status = _rule("status", "enum", "customer_status")
    _lost_reason = _rule("lost_reason", "enum", "lost_reason")
    _source = _rule("source", "enum", "source")
    _priority = _rule("priority", "enum", "priority")
    _tags = _rule("tags", "tags")
    _province = _rule("province", "text")
    _city = _rule("city", "text")
    _district = _rule("district", "text")
    _address = _rule("address", "text")
    _owner = _rule("owner", "user")
    _team = _rule("team", "team")
    _first_deal_date = _rule("first_deal_date", "date")
    _total_amount = _rule("total_amount", "money")
    _next_follow_up = _rule("next_follow_up", "datetime")
    _remark = _rule("remark", "longtext")

    @model_validator(mode="after")
    def _cross(self):
        if self.status == "lost" and self.lost_reason is None:
            raise ValueError("lost_reason_required")
        if self.customer_type == "enterprise" and self.id_number is not None:
            raise ValueError("wrong_id_kind")
        if self.customer_type == "individual" and self.credit_code is not None:
            raise ValueError("wrong_id_kind")
        if self.mobile is None and self.phone is None and self.email is None:
            raise ValueError("contact_missing")
        if self.first_deal_date is not None and self.first_deal_date > clock.today().isoformat():
            raise ValueError("date_in_future")
        return self


def reference_validate(rows: list[dict]) -> tuple[list, list]:
    """Return (valid models, (row index, errors)) validating each row with ReferenceCustomer."""
    good, bad = [], []
    for i, row in enumerate(rows):
        try:
            good.append(ReferenceCustomer.model_validate(row))
        except pydantic.ValidationError as e:
            bad.append((i, e.errors(include_url=False)))
    return good, bad


# ---- the two paths must find the same problems ---------------------------------------------------

CROSS_CODES = {"lost_reason_required", "wrong_id_kind", "contact_missing", "date_in_future", "date_before_created"}


def _reference_findings(errors: list[dict]) -> tuple[set, str | None]:
    """Return ({(field, code)} of the cell errors, the cross-rule code or None) of one rejected row."""
    cells, cross = set(), None
    for e in errors:
        code = str(e["ctx"]["error"]) if e["type"] == "value_error" else "required"  # missing / None
        if e["loc"]:
            cells.add((e["loc"][0], code))
        else:
            cross = code
    return cells, cross


def compare(rows: list[dict]) -> bool:
    """Print how the two paths' findings agree, row by row and field by field; return True if they do.

    The reference stops at its first cross-field rule and runs those rules only on rows whose cells
    are all valid (pydantic's after-validators); validate_table reports every rule.  So: the cell
    problems (field, code) must be equal on every row, and a row with valid cells must break a
    cross-field rule in both or in neither, the reference's rule being one of validate_table's.
    """
    table: dict[int, set] = {}
    for p in validate_table(rows, "customer").problems:
        table.setdefault(p.row, set()).add((p.field, p.code))
    reference = {i: _reference_findings(errors) for i, errors in reference_validate(rows)[1]}
    same = 0
    differ = []
    for i in sorted(set(table) | set(reference)):
        found = table.get(i, set())
        cells = {fc for fc in found if fc[1] not in CROSS_CODES}
        cross = {code for _, code in found if code in CROSS_CODES}
        ref_cells, ref_cross = reference.get(i, (set(), None))
        ok = cells == ref_cells and (bool(cells) or (ref_cross in cross if ref_cross else not cross))
        same += ok
        if not ok:
            differ.append((i, sorted(found), sorted(ref_cells), ref_cross))
    cell_count = sum(len(v[0]) for v in reference.values())
    print(f"validate_table: {sum(map(len, table.values())):,} problems in {len(table):,} rows; "
          f"reference: {len(reference):,} rows rejected, {cell_count:,} cell errors")
    print(f"same findings (field, code) in {same:,} of {len(set(table) | set(reference)):,} rows with "
          f"problems; differing rows: {len(differ)}")
    for d in differ[:5]:
        print("  differs:", d)
    return not differ


# ---- measuring -----------------------------------------------------------------------------------

def _once(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _peak_mb(fn) -> float:
    """Return the peak of memory traced while fn() runs, in MB (tracemalloc slows it; not timed)."""
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of both paths (medians)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows = make_rows(args.rows)
    print(f"generated {len(rows):,} customer rows x {len(rows[0])} fields "
          f"in {time.perf_counter() - start:.1f} s (seed 20240521, ~1% bad cells)")
    agree = compare(rows)  # also warms both paths up; its results are freed before timing

    # The machine is shared and noisy: alternate the two paths round by round (the order flips
    # each round) and compare medians, so that both see the same load.
    ref_times, table_times = [], []
    for round_ in range(args.repeat):
        pair = [("ref", lambda: reference_validate(rows)), ("table", lambda: validate_table(rows, "customer"))]
        for name, fn in pair if round_ % 2 == 0 else pair[::-1]:
            (ref_times if name == "ref" else table_times).append(_once(fn))
    t_ref, t_table = statistics.median(ref_times), statistics.median(table_times)
    m_ref = m_table = float("nan")
    if not args.no_memory:
        m_ref = _peak_mb(lambda: reference_validate(rows))
        m_table = _peak_mb(lambda: validate_table(rows, "customer"))
    n = len(rows)
    print()
    print(f"{'path':<34}{'seconds':>10}{'rows/s':>12}{'peak MB':>10}")
    print(f"{'(a) pydantic per row (reference)':<34}{t_ref:>10.2f}{n / t_ref:>12,.0f}{m_ref:>10.0f}")
    print(f"{'(b) validate_table (column-wise)':<34}{t_table:>10.2f}{n / t_table:>12,.0f}{m_table:>10.0f}")
    ratio = t_ref / t_table
    rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(ref_times, table_times))
    print(f"ratio (a)/(b) seconds, i.e. (b)/(a) rows/s: {ratio:.2f}x over {args.repeat} rounds "
          f"(each round: {rounds}); goal >= 2x: {'met' if ratio >= 2 else 'MISSED'}")
    print(f"same findings in both paths: {'yes' if agree else 'NO'}; peak MB = tracemalloc peak during one "
          f"run; process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"python {sys.version.split()[0]}, pydantic {pydantic.VERSION}")


if __name__ == "__main__":
    main()

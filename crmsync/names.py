"""Company and person names in the form duplicates are compared in (never stored: names are
trimmed on import, not rewritten).

    company_key("華為技術有限公司（上海）分公司")
    # CompanyKey(core='华为技术', region='上海', branch='分公司')
    company_key("上海示例科技有限公司").core == company_key("示例科技（上海）有限公司").core == "示例科技"

What is taken off, in order: full-width/half-width differences (NFKC), traditional characters
(opencc's character table, applied with str.translate: one C call, ~1 µs, where opencc's own
converter takes ~100 µs a name), case, spaces and punctuation; a bracketed part anywhere
(“（上海）”, usually a region); a trailing branch (“上海分公司”, “北京办事处”); trailing legal
suffixes (有限公司, 有限责任公司, 股份有限公司, 集团, Co., Ltd., …); a leading province or city
name.  A name that would become empty keeps what it had before that step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["CompanyKey", "company_key", "person_key", "simplified"]


@lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    """Traditional → simplified, one character at a time, from opencc's own dictionary."""
    import opencc

    table: dict[int, str] = {}
    path = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
    for line in path.read_text(encoding="utf-8").splitlines():
        trad, _, simp = line.partition("\t")
        if len(trad) == 1 and simp:
            table[ord(trad)] = simp.split()[0]
    return table


@lru_cache(maxsize=1)
def _traditional() -> frozenset:
    return frozenset(chr(c) for c in _t2s_table())


def simplified(text: str) -> str:
    """Text with traditional Chinese characters replaced by simplified ones (character by character)."""
    if text.isascii() or _traditional().isdisjoint(text):  # most text: nothing to do
        return text
    return text.translate(_t2s_table())


# Longest first, so 股份有限公司 is taken whole rather than 有限公司 leaving 股份.
_LEGAL = sorted({
    "股份有限公司", "有限责任公司", "集团有限公司", "集团股份有限公司", "有限公司", "集团公司",
    "股份公司", "总公司", "公司", "集团", "有限合伙", "合伙企业",
    "coltd", "colimited", "companylimited", "limited", "ltd", "inc", "incorporated",
    "corporation", "corp", "llc", "plc", "gmbh", "co", "company", "group",
}, key=len, reverse=True)
_LEGAL_RE = re.compile("(?:" + "|".join(map(re.escape, _LEGAL)) + ")+$")
_BRANCH_RE = re.compile(r"(分公司|办事处|分部|分厂|分店|营业部|代表处)$")
_LEGAL_ANY_RE = re.compile("|".join(map(re.escape, [x for x in _LEGAL if not x.isascii()])))
_BRACKET_RE = re.compile(r"[(\[{【（〔][^)\]}】）〕]*[)\]}】）〕]")
_DROP_RE = re.compile(r"[\s\W_]+", re.UNICODE)

# Province-level names and the larger cities: a leading one is a region, not the company.
_PROVINCES = ("北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 "
              "湖南 广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门").split()
_CITIES = ("广州 深圳 杭州 南京 苏州 武汉 成都 西安 长沙 郑州 济南 青岛 大连 沈阳 长春 哈尔滨 合肥 福州 "
           "厦门 南昌 南宁 昆明 贵阳 兰州 西宁 银川 乌鲁木齐 拉萨 呼和浩特 石家庄 太原 海口 三亚 宁波 "
           "温州 无锡 常州 佛山 东莞 珠海 中山 惠州 汕头 泉州 烟台 潍坊 徐州 南通 扬州 绍兴 嘉兴 金华 "
           "台州 唐山 保定 洛阳 宜昌 襄阳 株洲 芜湖 绵阳 柳州 桂林 昆山 义乌").split()
_REGION_RE = re.compile("^(?:" + "|".join(sorted(_PROVINCES + _CITIES, key=len, reverse=True))
                        + r")(?:省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)?")
_REGION_END_RE = re.compile("(?:" + "|".join(sorted(_PROVINCES + _CITIES, key=len, reverse=True))
                            + r")(?:省|市)?$")
_REGION_ONLY_RE = re.compile("^(?:" + "|".join(sorted(_PROVINCES + _CITIES, key=len, reverse=True))
                             + r")(?:省|市|区|县)?$")


@dataclass(frozen=True)
class CompanyKey:
    core: str  # what two names of the same company share
    region: str = ""  # a bracketed or leading region (上海)
    branch: str = ""  # a trailing branch (上海分公司)


def _fold(text: object) -> str:
    s = unicodedata.normalize("NFKC", str(text or "")).lower()
    return simplified(s)


@lru_cache(maxsize=200_000)
def company_key(name: object) -> CompanyKey:
    """The parts of a company name that matter for finding duplicates (see the module docstring).

    >>> company_key("ＡＢＣ科技（北京）有限公司").core
    'abc科技'
    """
    s = _fold(name)
    region = ""
    for m in _BRACKET_RE.finditer(s):
        inner = _DROP_RE.sub("", m.group()[1:-1])
        if _REGION_ONLY_RE.match(inner):
            region = region or _REGION_ONLY_RE.match(inner).group()
    s = _DROP_RE.sub("", _BRACKET_RE.sub("", s)) or _DROP_RE.sub("", s)
    branch = ""
    m = _BRANCH_RE.search(s)
    if m is not None and m.start() > 0:
        head = s[: m.start()]
        # X有限公司上海分公司: the branch is what follows the last legal suffix; X上海办事处: the region
        ends = [x.end() for x in _LEGAL_ANY_RE.finditer(head)]
        cut = ends[-1] if ends and ends[-1] < len(s) else m.start()
        if cut == m.start():
            r = _REGION_END_RE.search(head)
            if r is not None and r.start() >= 2:
                cut = r.start()
        branch, s = s[cut:], s[:cut]
    stripped = _LEGAL_RE.sub("", s)
    s = stripped or s
    m = _REGION_RE.match(s)
    if m is not None and len(s) - m.end() >= 3:
        region = region or m.group()
        s = s[m.end():]
    return CompanyKey(s, region, branch)


@lru_cache(maxsize=200_000)
def person_key(name: object) -> str:
    """A person's name folded for comparison: width, traditional characters, case, spaces and
    punctuation; a Latin name's words sorted so “San Zhang” and “zhang san” agree."""
    s = _fold(name)
    words = [w for w in re.split(r"[\s,.·•_\-]+", s) if w]
    if len(words) > 1 and all(w.isascii() for w in words):
        words.sort()
    return "".join(words)

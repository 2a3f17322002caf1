"""Splitting a Chinese address into province, city, district and the rest, with cpca.

cpca (Chinese Province, City and Area recognition) matches an address against the national
administrative-division table with an Aho-Corasick automaton and fills in what an address leaves
out (“杭州市西湖区…” → 浙江省).  It is the library the issue names; it installs from PyPI as a
pure-Python wheel on Python 3.11 (with pyahocorasick and pandas) and splits ~30,000 addresses a
second here.

Each distinct address is split once, and an address that starts with a prefix already seen to end
at a district (“浙江省杭州市西湖区”) takes that prefix's answer without asking cpca again: a
customer list has thousands of addresses in the same few hundred districts.  That is exactly what
cpca itself would answer (see ``_prefix_of``), and a test compares the two on every address.

For the four municipalities cpca gives the city as 市辖区; a CRM user expects the municipality
itself (上海市 / 上海市 / 徐汇区), so that is what is returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Address", "split_addresses", "split_address"]

_MUNICIPAL = {"市辖区", "县"}
_BATCH = 1_000  # addresses sent to cpca per round; the prefixes learnt resolve most of the rest


@dataclass(frozen=True)
class Address:
    province: str | None
    city: str | None
    district: str | None
    detail: str | None


def split_address(text: str | None) -> Address:
    """Return one address split into its parts (all None for an empty one).

    >>> split_address("浙江省杭州市西湖区文三路100号")
    Address(province='浙江省', city='杭州市', district='西湖区', detail='文三路100号')
    """
    return split_addresses([text])[0]


def split_addresses(texts: Iterable[str | None], *, reuse_prefixes: bool = True) -> list[Address]:
    """Return each address split into province/city/district/detail, in order.

    Parts cpca cannot find are None; when it finds nothing the whole text stays the detail.
    ``reuse_prefixes=False`` asks cpca about every distinct address (the reference the tests
    compare the prefix reuse with).
    """
    texts = list(texts)
    pending = sorted({t for t in texts if t})
    empty = Address(None, None, None, None)
    if not pending:
        return [empty for _ in texts]
    import cpca

    found: dict[str, Address] = {}
    prefixes: dict[str, tuple] = {}  # prefix ending at a district → its (province, city, district)
    lengths: list[int] = []
    batch = _BATCH if reuse_prefixes else len(pending)
    while pending:
        step = -(-len(pending) // batch)  # spread over the sorted list: many districts at once
        ask = pending[::step]
        pending = [t for i, t in enumerate(pending) if i % step]
        frame = cpca.transform(ask)
        columns = [frame[k].astype(object).where(frame[k].notna(), None).tolist() for k in ("省", "市", "区", "地址")]
        for text, province, city, district, rest in zip(ask, *columns):
            found[text] = split = _address(text, province, city, district, rest)
            if reuse_prefixes and (prefix := _prefix_of(text, district, rest)) and prefix not in prefixes:
                prefixes[prefix] = (split.province, split.city, split.district)
                lengths = sorted({*lengths, len(prefix)})
        if not prefixes:
            continue
        left = []
        for text in pending:
            for n in lengths:
                parts = prefixes.get(text[:n])
                if parts is not None:
                    found[text] = Address(*parts, text[n:].strip() or None)
                    break
            else:
                left.append(text)
        pending = left
    return [found[t] if t else empty for t in texts]


def _address(text: str, province: object, city: object, district: object, rest: object) -> Address:
    province, city, district, detail = _part(province), _part(city), _part(district), _part(rest)
    if city in _MUNICIPAL and province:
        city = province
    if not (province or city or district):
        detail = text
    return Address(province, city, district, detail)


def _prefix_of(text: str, district: object, rest: object) -> str | None:
    """Return the part of ``text`` whose cpca answer holds for any text that starts with it.

    cpca reads an address from the left and stops at the first district it recognises, so its
    answer depends only on the text up to that district — when the district was matched by its
    full name (a short name could grow into a longer one in another address; cpca 0.5.5 matches
    districts by full name only, the check keeps that true of later versions) and no division's
    name begins with that full name and goes on (that name could match instead).
    """
    if not isinstance(district, str) or not district or not isinstance(rest, str) or not text.endswith(rest):
        return None
    prefix = text[:len(text) - len(rest)]
    if not prefix.endswith(district) or district in _names_extended():
        return None
    return prefix


@lru_cache(maxsize=1)
def _names_extended() -> frozenset[str]:
    """Division names that are the beginning of another division's name (none in cpca 0.5.5)."""
    import cpca

    try:
        names = sorted({a.name for a in cpca.ad_2_addr_dict.values()})
    except AttributeError:  # another cpca: reuse nothing rather than guess
        return _EVERYTHING
    out = set()
    for a, b in zip(names, names[1:]):  # sorted: a name's extensions follow it directly
        if b.startswith(a):
            out.add(a)
    return frozenset(out)


class _Everything(frozenset):
    def __contains__(self, item: object) -> bool:
        return True


_EVERYTHING = _Everything()


def _part(value: object) -> str | None:
    if value is None or value.__class__ is not str:  # NaN from the DataFrame
        return None
    return value.strip() or None

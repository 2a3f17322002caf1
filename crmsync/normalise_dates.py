"""Date and date-time normalisers (normalise.py's table uses them): whatever a cell holds for a
day — an Excel date, a serial number, ``2024/5/21``, ``2024-05-21``, ``2024年5月21日``, ``20240521``
typed as a number, ISO 8601 with an offset — becomes ``YYYY-MM-DD`` (or ``YYYY-MM-DD HH:MM:SS``
in China time), or the problem code ``invalid_date`` / ``invalid_datetime``.  Never raises.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

Result = tuple[object, "str | None"]

_CN_TZ = timezone(timedelta(hours=8))  # China has one time zone and no DST
_FIRST_DAY = datetime(1900, 1, 1)
_LAST_SERIAL = 2958465  # 9999-12-31 in Excel's 1900 system


_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d", re.A)
_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.A)
_DATE_TEXT = re.compile(
    r"(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日?|(\d\d)(\d\d))"
    r"(?:(?:[ T]+|(?<=日))(\d{1,2})[:时点](\d{1,2})分?(?::?(\d{1,2})(?:\.\d{1,9})?秒?)?)?", re.A
)
_CJK_SPACES = re.compile(r"\s*([年月日时分秒])\s*")


def _from_serial(x: float) -> datetime | None:
    """Return the datetime of an Excel serial number (1900 system), or None out of range."""
    if not 1 <= x < _LAST_SERIAL + 1:
        return None
    days = int(x)
    if days == 60:
        return None  # 1900-02-29, a day Excel invented (the Lotus 1-2-3 leap-year bug)
    base = datetime(1899, 12, 31) if days < 60 else datetime(1899, 12, 30)
    found = base + timedelta(days=days, seconds=round((x - days) * 86400))
    return found if found.year <= 9999 else None


def _from_text(s: str) -> datetime | None:
    s = _CJK_SPACES.sub(r"\1", unicodedata.normalize("NFKC", s).strip())
    m = _DATE_TEXT.fullmatch(s)
    if m is None:
        try:  # ISO 8601 with an offset or fraction: "2024-05-21T14:30:00+08:00"
            return _plain_datetime(datetime.fromisoformat(s)) if "T" in s else None
        except ValueError:
            return None
    g = m.groups()
    month, day = (g[2], g[3]) if g[2] else (g[4], g[5]) if g[4] else (g[6], g[7])
    try:
        return datetime(int(g[0]), int(month), int(day), int(g[8] or 0), int(g[9] or 0), int(g[10] or 0))
    except ValueError:
        return None


def _plain_datetime(d: datetime) -> datetime:
    """Return a naive datetime in China time (aware values are converted, not just stripped)."""
    if d.tzinfo is not None and d.utcoffset() is not None:
        d = d.astimezone(_CN_TZ)
    return datetime(d.year, d.month, d.day, d.hour, d.minute, d.second)


def _to_datetime(v: object) -> datetime | None:
    """Return the datetime a cell value means, or None when it means none in 1900..9999."""
    if isinstance(v, datetime):
        found = _plain_datetime(v)
    elif isinstance(v, date):
        found = datetime(v.year, v.month, v.day)
    elif v.__class__ is str:
        found = _from_text(v) if len(v) <= 100 else None
    elif v.__class__ in (int, float, Decimal):
        x = v
        if x != x or not abs(x) < 10**12:
            return None
        if x == int(x) and 19000101 <= x <= 99991231:  # 20240521 typed as a number
            found = _from_text(str(int(x)))
        else:
            found = _from_serial(float(x))
    else:
        return None
    return found if found is not None and found >= _FIRST_DAY else None


def is_normal_date(s: str) -> bool:
    """Return True for a real day written YYYY-MM-DD, 1900 or later."""
    try:
        return _ISO_DATE.fullmatch(s) is not None and date.fromisoformat(s).year >= 1900
    except ValueError:
        return False


def is_normal_datetime(s: str) -> bool:
    """Return True for a real time written YYYY-MM-DD HH:MM:SS, 1900 or later."""
    try:
        return _ISO_DATETIME.fullmatch(s) is not None and datetime.fromisoformat(s).year >= 1900
    except ValueError:
        return False


def _norm_date(v: object) -> Result:
    if v.__class__ is str and is_normal_date(v):
        return v, None
    found = _to_datetime(v)
    return (found.date().isoformat(), None) if found else (v, "invalid_date")


def _norm_datetime(v: object) -> Result:
    if v.__class__ is str and is_normal_datetime(v):
        return v, None
    found = _to_datetime(v)
    return (found.isoformat(" "), None) if found else (v, "invalid_datetime")

"""The current time, in one place, so tests and demos can set it.

Times are local, naive, second precision, stored as ISO text ('2024-05-21 14:30:00'): one company,
one time zone, and text sorts and compares the same way in SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import date, datetime

_fixed: datetime | None = None


def now() -> datetime:
    """Return the current time (or the time set by set_now / CRMSYNC_NOW), to the second."""
    if _fixed is not None:
        return _fixed
    env = os.environ.get("CRMSYNC_NOW")
    if env:
        return datetime.fromisoformat(env)
    return datetime.now().replace(microsecond=0)


def today() -> date:
    return now().date()


def now_text() -> str:
    return now().strftime("%Y-%m-%d %H:%M:%S")


def set_now(moment: datetime | str | None) -> None:
    """Fix the clock (None releases it)."""
    global _fixed
    _fixed = datetime.fromisoformat(moment) if isinstance(moment, str) else moment

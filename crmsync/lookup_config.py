"""Where the store is, for the worksheet functions and the ribbon: the calling workbook's hidden
``xlwings.conf`` sheet (``CRMSYNC_STORE``, as ``crmsync init`` writes it; a relative path is taken
from the workbook's folder), else the ``CRMSYNC_STORE`` environment variable; the acting user from
``CRMSYNC_USER`` (never from the workbook); one shared ``lookup.Lookup`` per store and user.

xlwings does not hand the conf sheet to Python (its VBA reads only its own keys), but for every
UDF call it sets the calling workbook as ``xw.Book.caller()``, so the sheet is read from Python.
The sheet and the environment are read at most once every ``CONF_TTL`` seconds
(``forget_settings()`` reads them on the next call): ``current()`` is the hot path of every
worksheet function, one clock read and two comparisons within that time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import i18n
from .errors import CrmsyncError, InvalidInput
from .i18n import tr

if TYPE_CHECKING:
    from .lookup import Lookup

__all__ = ["CONF_TTL", "Settings", "close_all", "current", "forget_settings", "settings", "shared", "workbook_conf"]

#: How often the calling workbook's xlwings.conf sheet and the environment are read again (s).
CONF_TTL = 5.0


# ---- where the store is ----------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    store: str | None  # path or URL
    user: str | None
    lang: str | None  # "zh"/"en" from the workbook, None: leave the process language alone
    origin: str  # where the store came from: "xlwings.conf", "CRMSYNC_STORE" or ""


_conf_lock = threading.Lock()
_settings_at = float("-inf")
_settings_now: Settings | None = None
_current_at = float("-inf")
_current_lk: "Lookup | None" = None
_current_failure: tuple | None = None  # ((store, user), when, error) of the last failed open


def _caller_book():
    """The workbook whose formula is being calculated (xlwings sets it for each UDF call), or None.

    Cheap outside Excel: xlwings is only asked when it could know a caller.
    """
    xw = sys.modules.get("xlwings")
    if xw is None:
        return None
    win = sys.modules.get("xlwings._xlwindows")
    if not hasattr(xw.Book, "_mock_caller") and getattr(win, "BOOK_CALLER", None) is None:
        return None
    try:
        return xw.Book.caller()
    except Exception:  # not called from Excel after all
        return None


def workbook_conf() -> tuple[dict[str, str], Path | None]:
    """The calling workbook's xlwings.conf sheet (keys upper-cased) and its folder; ({}, None)
    outside Excel or when the sheet cannot be read."""
    book = _caller_book()
    if book is None:
        return {}, None
    try:
        from xlwings.utils import read_config_sheet

        raw = read_config_sheet(book) or {}
        conf = {str(k).strip().upper(): "" if v is None else str(v).strip()
                for k, v in raw.items() if k is not None}
        return conf, Path(book.fullname).parent
    except Exception:  # a book without the sheet, or one Excel will not show now
        return {}, None


def settings() -> Settings:
    """Where the store is, who acts and in which language (see the module docstring).

    Read from the calling workbook and the environment at most once every CONF_TTL seconds:
    after changing the environment inside a running process, call forget_settings().
    """
    global _settings_at, _settings_now
    now = time.monotonic()
    if now - _settings_at < CONF_TTL and _settings_now is not None:
        return _settings_now
    with _conf_lock:
        conf, folder = workbook_conf()
        found = _settings(conf, folder, os.environ.get("CRMSYNC_STORE"), os.environ.get("CRMSYNC_USER"))
        _settings_now, _settings_at = found, now
    return found


def _settings(conf: dict, folder: Path | None, env_store: str | None, env_user: str | None) -> Settings:
    user = env_user or None
    wanted = conf.get("CRMSYNC_LANG")
    lang_ = wanted if wanted in ("zh", "en") else None
    location = conf.get("CRMSYNC_STORE")
    if location:
        location = os.path.expandvars(location)  # as xlwings' GetConfig expands %VAR%
        if "://" not in location and folder is not None and not Path(location).is_absolute():
            location = str(folder / location)
        return Settings(location, user, lang_, "xlwings.conf")
    location = env_store or None
    return Settings(location, user, lang_, "CRMSYNC_STORE" if location else "")


def forget_settings() -> None:
    """Read the workbook's conf and the environment again, and retry a store that could not be
    opened, on the next call."""
    global _settings_at, _current_at, _current_lk, _current_failure
    _settings_at = _current_at = float("-inf")
    _current_lk = _current_failure = None


_shared: dict[tuple[str, str | None], "Lookup"] = {}
_shared_lock = threading.Lock()
_SHARED_MAX = 4


def shared(location: str, user: str | None = None) -> "Lookup":
    """The process's Lookup for a store and user, opened on first use."""
    key = (location, user)
    lk = _shared.get(key)
    if lk is not None:
        return lk
    with _shared_lock:
        lk = _shared.get(key)
        if lk is None:
            from .lookup import Lookup

            lk = Lookup(location, user=user)
            while len(_shared) >= _SHARED_MAX:
                _shared.pop(next(iter(_shared))).close()
            _shared[key] = lk
    return lk


def current() -> "Lookup":
    """The Lookup the calling workbook (or the environment) names; raises InvalidInput when no
    store is configured, NotFound/StoreError when it cannot be opened.

    The hot path of every worksheet function: within CONF_TTL of the last answer it is one
    clock read and two comparisons.
    """
    global _current_at, _current_lk, _current_failure
    now = time.monotonic()
    lk = _current_lk
    if lk is not None and now - _current_at < CONF_TTL and lk._raw is not None:
        return lk
    s = settings()
    if s.lang is not None and s.lang != i18n.lang():
        i18n.set_lang(s.lang)  # this process serves that workbook
    if s.store is None:
        raise InvalidInput(tr(
            "未配置中心库：请在隐藏的 xlwings.conf 工作表中填写 CRMSYNC_STORE，或设置环境变量 CRMSYNC_STORE",
            "no store configured: fill in CRMSYNC_STORE on the hidden xlwings.conf sheet, "
            "or set the CRMSYNC_STORE environment variable"))
    failed = _current_failure
    if failed is not None and failed[0] == (s.store, s.user) and now - failed[1] < CONF_TTL:
        raise failed[2].with_traceback(None)  # an unreachable store is not tried on every call
    try:
        lk = shared(s.store, s.user)
    except CrmsyncError as exc:
        _current_failure = ((s.store, s.user), now, exc)
        raise
    _current_lk, _current_at = lk, _settings_at
    return lk


def close_all() -> None:
    """Close every shared reader and forget the settings (tests, shutdown)."""
    with _shared_lock:
        while _shared:
            _shared.popitem()[1].close()
    forget_settings()

"""Setting up a working folder: a store plus a workbook that points at it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .i18n import tr

STORE_NAME = "crm.db"
WORKBOOK_NAME = "crm_workbook.xlsm"
CONF_SHEET = "xlwings.conf"


def committed_workbook() -> Path | None:
    """The built workbook committed at the top of the source tree, when running from a checkout."""
    path = Path(__file__).resolve().parents[1] / WORKBOOK_NAME
    return path if path.exists() else None


def workbook_conf(store_path: Path, lang: str, platform: str | None = None) -> dict[str, str]:
    """The xlwings.conf values that make a copied workbook's buttons work on this machine."""
    conf = {"CRMSYNC_STORE": str(store_path), "CRMSYNC_LANG": lang}
    platform = platform or sys.platform
    if platform == "win32":
        conf["INTERPRETER_WIN"] = sys.executable
    elif platform == "darwin":
        conf["INTERPRETER_MAC"] = sys.executable
    return conf


def place_workbook(target: Path, store_path: Path, lang: str = "zh") -> Path:
    """Copy the built workbook to target and point its xlwings.conf at the store and this Python.

    An existing workbook is never overwritten: it may hold someone's work.
    """
    from .workbook import write_key_values

    if not target.exists():
        source = committed_workbook() if lang == "zh" else None
        if source is None:
            from .build import build_workbook

            build_workbook(target, lang=lang)
        else:
            shutil.copyfile(source, target)
    location = store_path if "://" in str(store_path) else Path(store_path).resolve()  # a URL stays as is
    write_key_values(target, CONF_SHEET, workbook_conf(location, lang))
    return target


def init_project(directory: Path, lang: str = "zh", store: str | None = None) -> tuple[Path | str, Path]:
    """Create (or reopen) the store and the workbook in directory; return both locations.

    ``store``: a store elsewhere (a PostgreSQL URL, or a file); default ``DIRECTORY/crm.db``.  The
    workbook is pointed at it without any password (each machine keeps its own in ~/.pgpass).
    """
    from .engine import shared_location
    from .store import Store

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    location: Path | str = directory / STORE_NAME if store is None else store
    Store(location, create=True, lang=lang).close()
    shared = location if isinstance(location, Path) else shared_location(str(location))
    workbook = place_workbook(directory / WORKBOOK_NAME, shared, lang)
    return location, workbook


def describe(directory: Path) -> str:
    return tr(f"目录 {directory}", f"folder {directory}")

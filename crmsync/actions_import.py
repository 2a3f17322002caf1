"""The 导入 (import) button: ask for a legacy spreadsheet, import its customers into the store.

The same steps as ``crmsync import FILE`` (crmsync/cli_import.py): plan_import reads, matches
and checks every row; apply_import creates the valid rows in one transaction; the bad rows and
held-back duplicates go to an error workbook beside the imported file.  The store and the user are
found as for 同步 (the workbook's xlwings.conf, the environment): an import writes, so it needs a
user the store knows, never a default one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import i18n
from .actions import _close_own, _sync_context, _t
from .seam import as_seam


def error_workbook_path(source: str | Path, lang: str) -> Path:
    """Where the rows an import left out go: beside the imported file, named after it."""
    source = Path(source)
    return source.with_name(f"{source.stem}-{_t(lang, '导入错误', 'import-errors')}.xlsx")


def import_file(book: Any, path: str | Path | None = None, *, store: str | None = None, user: str | None = None,
                lang: str | None = None) -> str:
    """导入: the file ``path``, else the one the user chooses (``seam.choose_file``), imported
    into the workbook's store; rows with problems and likely duplicates go to
    ``<file>-导入错误.xlsx`` beside it.  Returns the status-bar message with the counts.

    The workbook itself is not changed: the customers go into the store, as with the command.
    """
    from .errors import CrmsyncError
    from .importer import apply_import, plan_import, write_error_workbook
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    try:
        location, who = _sync_context(book, seam, store, user)
        chosen = path or seam.choose_file(_t(lang, "选择要导入的客户表格", "Choose a spreadsheet of customers to import"))
        if not chosen:
            text = _t(lang, "已取消导入，未导入任何数据", "Import cancelled: nothing was imported")
        else:
            source = Path(chosen)
            seam.status(_t(lang, f"正在导入 {source.name}…", f"Importing {source.name}…"))
            with Store(location, lang=lang) as s:
                plan = plan_import(s, source, user=who)
                result = apply_import(s, plan, user=who)
            counts = plan.summary()
            text = _t(lang, f"已从 {source.name} 导入 {len(result.ids)} 个客户到中心库",
                      f"Imported {len(result.ids)} customers from {source.name} into the store")
            if plan.problems or plan.duplicates:
                out = error_workbook_path(source, lang)
                try:
                    write_error_workbook(plan, out)
                    where = _t(lang, f"，见 {out.name}", f"; see {out.name}")
                except OSError as exc:  # a read-only folder: the counts still tell what happened
                    where = _t(lang, f"（错误工作簿未能写入：{exc.strerror or exc}）",
                               f" (the error workbook could not be written: {exc.strerror or exc})")
                text += _t(lang, f"；有错误 {counts['invalid']} 行，疑似重复 {counts['duplicates']} 行未导入{where}",
                           f"; {counts['invalid']} rows with problems and {counts['duplicates']} likely duplicates "
                           f"were left out{where}")
    except CrmsyncError as exc:
        text = str(exc)
    finally:
        _close_own(book, seam)
    seam.status(text)
    return text

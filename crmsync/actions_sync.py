"""The 同步 (sync) and 审核 (approve) buttons (crmsync/sync_copy.py, crmsync/sync_apply.py)."""

from __future__ import annotations

from typing import Any

from . import i18n
from .actions import _close_own, _copy_id, _sync_context, _t, entity_sheets, field_columns, selected_customer_ids
from .seam import as_seam


def sync_workbook(book: Any, *, store: str | None = None, user: str | None = None,
                  lang: str | None = None) -> str:
    """The 同步 button: sync the workbook with the store and write the outcome back into it."""
    from .errors import CrmsyncError
    from .store import Store
    from .sync_copy import sync_book

    seam = as_seam(book)
    try:
        location, who = _sync_context(book, seam, store, user)
        with Store(location, lang=lang or i18n.lang()) as s:
            return sync_book(s, seam, who, copy_id=_copy_id(book, seam), write_back=True, lang=lang).message
    except CrmsyncError as exc:
        seam.status(str(exc))
        return str(exc)
    finally:
        _close_own(book, seam)


def approve_workbook(book: Any, *, store: str | None = None, user: str | None = None,
                     lang: str | None = None) -> str:
    """The 审核 button: approve the pending new customers selected on the customer sheet (when
    rows are selected there), else every pending one listed in the workbook, that the user may approve."""
    from .errors import CrmsyncError
    from .store import Store
    from .sync_apply import approve_customers, pending_customers

    seam = as_seam(book)
    lang = lang or i18n.lang()
    try:
        location, who = _sync_context(book, seam, store, user)
        selected = selected_customer_ids(seam)
        listed = set()
        if selected is not None:
            listed = {c.strip() for c in selected}
        for ent, sheet in entity_sheets(seam.sheet_names()):
            if ent.key == "customer" and selected is None:
                table = seam.read_table(sheet)
                col = field_columns(ent, table).get("customer_id")
                listed = {str(r[col]).strip() for r in table.rows if col is not None and r[col]}
        with Store(location, lang=lang) as s:
            ids = [c["customer_id"] for c in pending_customers(s, who) if c["customer_id"] in listed]
            if not ids and selected is not None:
                text = _t(lang, "选中的行中没有待审核的新客户", "No new customers waiting for approval on the selected rows")
            elif not ids:
                text = _t(lang, "没有待审核的新客户", "No new customers waiting for approval")
            else:
                approved, refused = approve_customers(s, who, ids)
                text = _t(lang, f"已审核 {len(approved)} 个新客户", f"Approved {len(approved)} new customers")
                if refused:
                    text += _t(lang, f"，{len(refused)} 个未通过：{refused[0][1]}", f"; {len(refused)} refused: {refused[0][1]}")
    except CrmsyncError as exc:
        text = str(exc)
    finally:
        _close_own(book, seam)
    seam.status(text)
    return text

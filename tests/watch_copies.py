"""Helpers for the watcher tests: team copies of the real workbook, edits people make, configurations."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

from workbook_fixtures import COMMITTED

from crmsync.book_file import FileBook


REPS = ("zhang", "li", "liu")  # the reps of conftest's team_store


def seed_customers(store):
    """One customer per rep, so copies hold rows with ids and versions; returns the store."""
    for i, rep in enumerate(REPS):
        store.create("customer", {"customer_name": f"{rep}的老客户有限公司", "mobile": f"1391234567{i}",
                                   "contact_name": "张三", "customer_type": "企业客户", "status": "潜在客户",
                                   "owner": rep}, user="admin")
    return store


def names_in_store(store) -> list[str]:
    return sorted(r["customer_name"] for r in store.list("customer"))


def checkout(store, path: Path, user: str) -> Path:
    """A user's copy of the workbook holding what they may see (the sync engine's checkout when present)."""
    try:
        from crmsync.sync_copy import checkout as engine_checkout
    except ImportError:
        engine_checkout = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine_checkout is not None:
        engine_checkout(store, user, path)
    else:
        from crmsync.copies import fill_workbook

        shutil.copy(COMMITTED, path)
        fill_workbook(store, path, user)
    return path


def add_customer(path: Path, name: str, mobile: str = "13812345678") -> None:
    """Type a new customer into the next empty row of the 客户 sheet, as a rep would, and save."""
    with FileBook(path) as book:
        table = book.read_table("客户")
        row = max(table.row_numbers, default=1) + 1
        values = {"客户名称": name, "客户类型": "企业客户", "客户状态": "潜在客户", "联系人": "王五", "手机号": mobile}
        book.write_cells("客户", {(row, table.column(label)): v for label, v in values.items()})
        book.save()


def edit_customer(path: Path, customer_id: str, label: str, value) -> None:
    """Change one cell of an existing customer's row in a copy and save."""
    with FileBook(path) as book:
        table = book.read_table("客户")
        id_col = table.column("客户编号") - 1
        for number, row in zip(table.row_numbers, table.rows):
            if row[id_col] == customer_id:
                book.write_cells("客户", {(number, table.column(label)): value})
                book.save()
                return
    raise AssertionError(f"{customer_id} not in {path}")


def write_config(folder: Path, *, files: dict | None = None, folders: dict | None = None, **settings) -> Path:
    """Write crmsync-watch.toml into the folder (TOML written by hand: values are simple)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    for table, entries in (("files", files or {}), ("folders", folders or {})):
        lines.append(f"[{table}]")
        for key, value in entries.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
                lines.append(f"{json.dumps(key, ensure_ascii=False)} = {{ {inner} }}")
            else:
                lines.append(f"{json.dumps(key, ensure_ascii=False)} = {json.dumps(value, ensure_ascii=False)}")
    path = folder / "crmsync-watch.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # as an admin keeps it: only its owner may write it or replace it (the watcher refuses otherwise)
    path.chmod(0o644)
    folder.chmod(folder.stat().st_mode & ~0o022)
    return path


def save_like_excel(data: bytes, target: Path) -> None:
    """Save as Excel does: write a temporary file, move the old file aside, move the new one in."""
    temp = target.with_name(secrets.token_hex(4).upper())  # Excel's 8-hex-digit temporary name
    temp.write_bytes(data)
    backup = target.with_name(secrets.token_hex(4).upper() + ".tmp")
    if target.exists():
        os.replace(target, backup)
    os.replace(temp, target)
    if backup.exists():
        backup.unlink()


def write_slowly(data: bytes, target: Path, pause: float) -> threading.Thread:
    """Write half a file, pause, then the rest (a copy arriving over a slow share); returns the thread."""

    def run():
        with open(target, "wb") as fp:
            fp.write(data[: len(data) // 2])
            fp.flush()
            os.fsync(fp.fileno())
            time.sleep(pause)
            fp.write(data[len(data) // 2:])

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for(predicate, timeout: float = 15.0, step: float = 0.05):
    """Poll until predicate() is true; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting; last value {value!r}")
        time.sleep(step)

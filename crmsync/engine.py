"""The dialect layer: the only place that knows which database is behind the store.

Everything SQLite-specific (pragmas, BEGIN IMMEDIATE, the online backup API) or PostgreSQL-specific
lives here, so store.py speaks plain SQLAlchemy Core and runs on both.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from .errors import StoreError

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another process's transaction
WRITE = {"crmsync_write": True}  # execution option: this transaction will write


def store_url(location: str | os.PathLike) -> str:
    """Return an SQLAlchemy URL for a path (→ sqlite) or a URL given as is.

    >>> store_url("/tmp/crm.db")
    'sqlite:////tmp/crm.db'
    """
    text = str(location)
    if "://" in text:
        try:
            make_url(text)
        except ArgumentError as exc:
            raise StoreError(f"无法识别的存储地址 {text}: {exc}") from None
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def create_store_engine(url: str) -> Engine:
    """Return an Engine with the store's connection settings.

    SQLite: WAL, foreign keys on, a busy timeout, and BEGIN IMMEDIATE for transactions that will
    write (so two writers queue at BEGIN instead of failing later with "database is locked").
    """
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is broken)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
            cur.execute("PRAGMA cache_size=-65536")  # 64 MB: index pages stay cached on bulk writes
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            write = conn.get_execution_options().get("crmsync_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


def lock_for_write(conn, table_name: str) -> None:
    """Serialise writers on a one-row table (SQLite already did at BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT 1 FROM {table_name} WHERE id = 1 FOR UPDATE")


def raw_reader(engine: Engine):
    """Return a DBAPI connection for fast point reads that always sees the latest commit."""
    raw = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        raw.driver_connection.autocommit = True
    return raw


def backup(engine: Engine, dest: Path) -> None:
    """Write a consistent copy of the store to dest while others keep using it."""
    dest = Path(dest)
    if not is_sqlite(engine):
        raise StoreError("PostgreSQL 存储请使用 pg_dump 备份")
    src_path = sqlite_path(str(engine.url))
    tmp = dest.with_name(dest.name + ".part")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(str(src_path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        out = sqlite3.connect(str(tmp))
        try:
            src.backup(out)  # SQLite's online backup API: a consistent snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            out.close()
    finally:
        src.close()
    os.replace(tmp, dest)


def restore(backup_file: Path, url: str) -> None:
    """Replace the SQLite store at url with the backup file's content (the backup is checked first)."""
    target = sqlite_path(url)
    if target is None:
        raise StoreError("只能恢复到 SQLite 存储文件")
    check = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
        check.execute("SELECT count(*) FROM audit_log").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"备份文件 {backup_file} 不是有效的 crmsync 存储: {exc}") from None
    finally:
        check.close()
    if ok != "ok":
        raise StoreError(f"备份文件 {backup_file} 已损坏: {ok}")
    src = sqlite3.connect(str(backup_file))
    dst = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        src.backup(dst)  # page-level copy into the live file, under SQLite's own locking
    finally:
        src.close()
        dst.close()


def retry_locked(fn, attempts: int = 8):
    """Run fn(), retrying with back-off when the database reports it is locked or busy."""
    delay = 0.05
    for i in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            text = str(exc).lower()
            if i == attempts - 1 or not ("locked" in text or "busy" in text or "deadlock" in text
                                         or "could not serialize" in text):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

"""The dialect layer: the only place that knows which database is behind the store.

Everything SQLite-specific (pragmas, BEGIN IMMEDIATE, the online backup API) or PostgreSQL-specific
(the psycopg driver, the writers' advisory lock, backups as store files) lives here, so store.py
speaks plain SQLAlchemy Core and runs on both.

Both backends give the same guarantee: one writing transaction at a time per store, taken at BEGIN.
SQLite gets it from BEGIN IMMEDIATE; PostgreSQL from a transaction-scoped advisory lock taken as
the first statement of every writing transaction (migrations included, so two processes opening a
new store at once do not both create it).  Readers never wait on it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from .errors import StoreError
from .i18n import tr

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another process's transaction
PG_LOCK_TIMEOUT_MS = 120_000  # PostgreSQL writers queue across machines: a longer wait before failing
WRITE = {"crmsync_write": True}  # execution option: this transaction will write
# Key of the PostgreSQL advisory lock every writing transaction takes (any fixed 64-bit number;
# advisory locks are per database, so stores in different databases do not wait on each other).
PG_WRITE_LOCK = 0x63726D73796E63  # "crmsync"
PG_DRIVER = "postgresql+psycopg"  # psycopg 3: `pip install "psycopg[binary]"`
# A backup holds every customer: readable by its owner only (the admin who made it), whatever the umask.
BACKUP_MODE = 0o600


def store_url(location: str | os.PathLike) -> str:
    """Return an SQLAlchemy URL for a path (→ sqlite) or a URL given as is.

    A bare postgresql:// (or postgres://) URL gets the psycopg 3 driver, the one crmsync installs.

    >>> store_url("/tmp/crm.db")
    'sqlite:////tmp/crm.db'
    >>> store_url("postgresql://crm@db.example/crm")
    'postgresql+psycopg://crm@db.example/crm'
    """
    text = str(location)
    if "://" in text:
        for bare in ("postgresql://", "postgres://"):
            if text.startswith(bare):
                text = PG_DRIVER + "://" + text[len(bare):]
        try:
            make_url(text)
        except ArgumentError as exc:
            raise StoreError(f"无法识别的存储地址 {text}: {exc}") from None
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def is_sqlite(engine_or_url) -> bool:
    return backend_name(engine_or_url) == "sqlite"


def is_postgresql(engine_or_url) -> bool:
    return backend_name(engine_or_url) == "postgresql"


def backend_name(engine_or_url) -> str:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(str(engine_or_url))
    return url.get_backend_name()


def shared_location(url: str) -> str:
    """The store location to write into a workbook copy: an SQLite file's path, or the URL
    without its password (each machine supplies that itself: ~/.pgpass, PGPASSFILE or PGPASSWORD,
    which psycopg reads), so a copy handed to a colleague never carries a database password.
    """
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    if not is_postgresql(url):
        return str(url)
    u = make_url(str(url))
    bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
    return bare.render_as_string(hide_password=False)


def display_url(url) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(str(url)).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


#: Each SQLite connection's page cache (KiB): 64 MB keeps index pages cached on bulk writes.
SQLITE_CACHE_KIB = 64 * 1024


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
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            write = conn.get_execution_options().get("crmsync_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if is_postgresql(url):
        return _postgresql_engine(url)
    return create_engine(url, pool_pre_ping=True)


def _postgresql_engine(url: str) -> Engine:
    """PostgreSQL: psycopg 3, READ COMMITTED, and the writers' advisory lock at BEGIN.

    READ COMMITTED is enough because writers are serialised: once a writer holds the lock, each of
    its statements sees every earlier commit, so the ID counter, the audit head and the version
    checks read the latest values.  A lock wait longer than PG_LOCK_TIMEOUT_MS fails with a clear
    error instead of hanging a watcher forever.
    """
    _require_psycopg(url)
    query = make_url(url).query  # the user's own libpq settings in the URL win over these defaults
    given = query.get("options", "")
    connect_args = {"options": f"-c lock_timeout={PG_LOCK_TIMEOUT_MS} -c client_encoding=UTF8 "
                               f"{given if isinstance(given, str) else ' '.join(given)}".strip()}
    for key, default in (("application_name", "crmsync"), ("connect_timeout", 10)):
        if key not in query:
            connect_args[key] = default
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("crmsync_write"):
            lock_for_write(conn)

    return engine


def _require_psycopg(url: str) -> None:
    if make_url(url).get_driver_name() != "psycopg":
        return  # another driver named explicitly in the URL: the user's choice
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(tr('PostgreSQL 存储需要 psycopg：pip install "crmsync[postgresql]"',
                            'a PostgreSQL store needs psycopg: pip install "crmsync[postgresql]"')) from None


def lock_for_write(conn) -> None:
    """Serialise writers (SQLite already did at BEGIN IMMEDIATE; PostgreSQL waits here)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def bulk_insert(conn, table: str, columns, rows) -> None:
    """Insert rows (tuples in column order) in the caller's transaction, by the backend's fast path.

    SQLite: one executemany of a prepared INSERT.  PostgreSQL: COPY, which streams the rows in one
    statement instead of one INSERT per row (several times faster at 100,000 rows).  A failure
    raises the SQLAlchemy error type either way (IntegrityError for a duplicate key).
    """
    if not rows:
        return
    quoted = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name != "postgresql":
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join([mark] * len(columns))})', rows)
        return
    import psycopg
    from sqlalchemy.exc import DBAPIError

    sql = f'COPY "{table}" ({quoted}) FROM STDIN'
    try:
        with conn.connection.cursor() as cur, cur.copy(sql) as copy:
            for r in rows:
                copy.write_row(r)
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in url if it does not exist; return True if created.

    Only when the database is missing does it connect to the server's `postgres` database to
    create it, so that needs CREATEDB (or the database made beforehand by the server's admin:
    `createdb -O crm crm`).
    """
    if not is_postgresql(url):
        return False
    _require_psycopg(url)
    u = make_url(url)
    probe = create_engine(u)
    try:
        with probe.connect():
            return False
    except OperationalError as exc:
        if "does not exist" not in str(exc):
            raise StoreError(tr(f"无法连接 PostgreSQL ({display_url(url)}): {_first_line(exc)}",
                                f"cannot connect to PostgreSQL ({display_url(url)}): {_first_line(exc)}")) from None
    finally:
        probe.dispose()
    name = u.database
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = '"' + name.replace('"', '""') + '"'
            try:
                conn.exec_driver_sql(f"CREATE DATABASE {quoted} ENCODING 'UTF8' TEMPLATE template0")
            except ProgrammingError as exc:
                if "already exists" in str(exc):
                    return False  # another process created it first
                raise
            return True
    except (OperationalError, ProgrammingError) as exc:
        raise StoreError(tr(f"无法创建 PostgreSQL 数据库 {name} ({display_url(url)}): {_first_line(exc)}",
                            f"cannot create the PostgreSQL database {name} ({display_url(url)}): "
                            f"{_first_line(exc)}")) from None
    finally:
        admin.dispose()


def _first_line(exc: Exception) -> str:
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0]


def raw_reader(engine: Engine):
    """Return a DBAPI connection for fast point reads that always sees the latest commit."""
    raw = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        raw.driver_connection.autocommit = True
    return raw


def backup(engine: Engine, dest: Path) -> None:
    """Write a consistent copy of the store to dest while others keep using it.

    The backup is always an SQLite store file: SQLite's online backup API for an SQLite store, a
    verified copy of every table (migrate_store) read in one snapshot for PostgreSQL.  So any backup
    opens with `crmsync --store backup.db …` and restores into either backend.
    """
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".part")
    for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        leftover.unlink(missing_ok=True)
    if not is_sqlite(engine):
        from .migrate_store import move_store

        move_store(str(engine.url.render_as_string(hide_password=False)), tmp)
        out = sqlite3.connect(str(tmp))
        try:
            out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            out.close()
        os.chmod(tmp, BACKUP_MODE)
        os.replace(tmp, dest)
        return
    src_path = sqlite_path(str(engine.url))
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
    os.chmod(tmp, BACKUP_MODE)
    os.replace(tmp, dest)


def restore(backup_file: Path, url: str) -> None:
    """Replace the store at url with the backup file's content (the backup is checked first).

    SQLite: a page-level copy into the live file.  PostgreSQL: every table replaced in one
    transaction under the write lock, verified before it commits (migrate_store).
    """
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
    target = sqlite_path(url)
    if target is None:
        from .migrate_store import move_store

        move_store(Path(backup_file).resolve(), url, replace=True)
        return
    src = sqlite3.connect(str(backup_file))
    dst = sqlite3.connect(str(target), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        src.backup(dst)  # page-level copy into the live file, under SQLite's own locking
    finally:
        src.close()
        dst.close()


WRITE_LOCK_ATTEMPTS = 8  # BEGINs tried before a writer gives up (each waits BUSY_TIMEOUT_MS)


@contextmanager
def begin_write(writer: Engine):
    """Begin a writing transaction on writer (an engine with WRITE set), yield its connection.

    SQLite's BEGIN IMMEDIATE waits BUSY_TIMEOUT_MS for the write lock and then fails with
    "database is locked" (another process's long import or sync holding it, or several writers
    queued at once): only the BEGIN is retried, with back-off (retry_locked), so the caller waits
    instead of seeing the error; nothing of the caller's block has run when it is retried.  If
    the lock is still held after every attempt, one clear StoreError says so.
    """
    stack = ExitStack()
    started = time.monotonic()
    try:
        conn = retry_locked(lambda: stack.enter_context(writer.begin()), WRITE_LOCK_ATTEMPTS)
    except OperationalError as exc:
        if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
            raise
        waited = time.monotonic() - started
        raise StoreError(tr(f"存储正被另一个进程写入，等待 {waited:.0f} 秒后仍未释放；请稍后重试",
                            f"the store is being written by another process and was not released "
                            f"within {waited:.0f} s; try again later")) from None
    with stack:
        yield conn


def retry_locked(fn, attempts: int = 8):
    """Run fn(), retrying with back-off when the database reports it is locked or busy."""
    delay = 0.05
    for i in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            text = str(exc).lower()
            # PostgreSQL: serialization failure, deadlock (retry the whole transaction)
            state = getattr(getattr(exc, "orig", None), "sqlstate", None)
            if i == attempts - 1 or not ("locked" in text or "busy" in text or "deadlock" in text
                                         or "could not serialize" in text or state in ("40001", "40P01")):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

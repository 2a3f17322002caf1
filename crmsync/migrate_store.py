"""Moving a whole store between backends (SQLite ⇄ PostgreSQL), verified.

    report = move_store("sqlite:///crm.db", "postgresql://crm@db/crm")
    report.ok            # every table's row count and checksum match, the audit chains agree

Everything moves: every table (records, users, lists, custom fields, settings, ID counters, sync
bookkeeping), the audit log with its chain head — so the history and the hash chain arrive intact
and `crmsync audit verify` passes on the new store.  The destination gets its schema from the
migrations of this crmsync (it keeps its own schema_migrations), then the rows are copied inside
one destination transaction that holds the store's write lock, and verified before it commits:
per table a row count and a checksum (order-independent, so SQLite's and PostgreSQL's sort orders do
not matter), and the audit chain re-verified on the copy.  Any mismatch rolls everything back.

The source is read in one snapshot (SQLite: a read transaction on a read-only connection;
PostgreSQL: REPEATABLE READ), so moving or backing up a store others are using is consistent.
The same code makes PostgreSQL backups: a backup is an SQLite store file (see engine.backup).
"""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Boolean, Float, Integer, MetaData, Numeric, create_engine, event, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SAWarning

from . import audit, engine as dialect
from .errors import InvalidInput, NotFound, StoreError
from .i18n import tr
from .tables import MIGRATIONS

# The destination keeps its own record of the migrations that built its schema.
OWN_TABLES = frozenset({"schema_migrations"})
BATCH = 5_000
_MOD = 1 << 256


@dataclass
class TableCheck:
    name: str
    source_rows: int
    dest_rows: int
    source_sum: str
    dest_sum: str
    columns: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.source_rows == self.dest_rows and self.source_sum == self.dest_sum


@dataclass
class MoveReport:
    source: str
    dest: str
    tables: list[TableCheck] = field(default_factory=list)
    audit_entries: int = 0
    audit_problems: list[tuple[int, str]] = field(default_factory=list)  # of the source, carried over
    problems: list[str] = field(default_factory=list)  # differences between source and copy

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return sum(t.dest_rows for t in self.tables)


# ---- connections -----------------------------------------------------------------------------------

def source_engine(url: str) -> Engine:
    """An engine that only reads: a read-only SQLite connection (a backup file stays untouched)."""
    path = dialect.sqlite_path(url)
    if path is None:
        if dialect.is_sqlite(url):
            raise InvalidInput(tr("内存中的 SQLite 不能作为来源", "an in-memory SQLite store cannot be a source"))
        return dialect.create_store_engine(url)
    if not path.exists():
        raise NotFound(tr(f"存储 {path} 不存在", f"store {path} does not exist"))

    def connect():
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                               timeout=dialect.BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.isolation_level = None  # BEGIN below: one snapshot for the whole read
        return conn

    engine = create_engine("sqlite://", creator=connect)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN")

    return engine


def _snapshot(conn: Connection) -> Connection:
    """Make conn read one consistent snapshot for the rest of its transaction."""
    if conn.dialect.name == "postgresql":
        return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def _reflect(conn: Connection) -> MetaData:
    """Every table as the database holds it (tables added by any migration included)."""
    meta = MetaData()
    with warnings.catch_warnings():  # expression indexes are not reflected: the copy needs columns only
        warnings.simplefilter("ignore", SAWarning)
        meta.reflect(conn)
    return meta


# ---- values and checksums ------------------------------------------------------------------------

def _kind(sql_type) -> str:
    if isinstance(sql_type, Boolean):
        return "bool"
    if isinstance(sql_type, Integer):
        return "int"
    if isinstance(sql_type, (Float, Numeric)):
        return "float"
    return "text"


def _converter(kinds: list[str]) -> Callable[[Iterable], tuple]:
    """A function that gives a row's values the destination's Python types where backends differ.

    Read through SQLAlchemy's types, ints and text already agree; booleans (SQLite keeps 0/1) and
    floats (a REAL may come back as an int) are made bool and float, so that copy and checksum
    see the same values on both sides.  Only those columns are touched: at 100,000 rows of 40
    columns a per-value conversion would cost more than the copy.
    """
    fix = [(i, bool if k == "bool" else float) for i, k in enumerate(kinds) if k in ("bool", "float")]
    if not fix:
        return tuple

    def convert(row) -> tuple:
        values = list(row)
        for i, f in fix:
            if values[i] is not None:
                values[i] = f(values[i])
        return tuple(values)

    return convert


def _row_hash(values: tuple) -> int:
    return int.from_bytes(hashlib.sha256(orjson.dumps(values)).digest(), "big")


def _digest(total: int) -> str:
    return f"{total:064x}"


def table_checksum(conn: Connection, table, columns: list[str], kinds: list[str]) -> tuple[int, str]:
    """Return (rows, checksum) of a table: the sum of the rows' hashes, so row order does not matter."""
    convert = _converter(kinds)
    count, total = 0, 0
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
        select(*(table.c[c] for c in columns)))
    for row in result:
        count += 1
        total = (total + _row_hash(convert(row))) % _MOD
    return count, _digest(total)


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """(rows, checksum) of every table of a store, for comparing two stores after the fact."""
    eng = source_engine(dialect.store_url(url))
    try:
        with eng.connect() as conn, _snapshot(conn).begin():
            meta = _reflect(conn)
            out = {}
            for t in meta.sorted_tables:
                if t.name in OWN_TABLES:
                    continue
                cols = [c.name for c in t.columns]
                out[t.name] = table_checksum(conn, t, cols, [_kind(c.type) for c in t.columns])
            return out
    finally:
        eng.dispose()


# ---- the move --------------------------------------------------------------------------------------

def move_store(source, dest, *, replace: bool = False,
               on_table: Callable[[str, int], None] | None = None) -> MoveReport:
    """Copy every table of the store at source into dest, verify the copy, commit; return the report.

    dest is created if needed (a PostgreSQL database too, given the rights).  A dest that already
    holds records or audit entries is refused unless replace=True (then its content is replaced).
    Raises StoreError, with nothing changed in dest, when the copy does not verify.
    """
    src_url, dst_url = dialect.store_url(source), dialect.store_url(dest)
    if src_url == dst_url:
        raise InvalidInput(tr("来源和目标是同一个存储", "source and destination are the same store"))
    src = source_engine(src_url)
    try:
        return _move(src, src_url, dst_url, replace, on_table)
    except DBAPIError as exc:  # an unreadable file, a lost connection: one line naming the stores
        why = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(tr(f"无法迁移 {dialect.display_url(src_url)} → {dialect.display_url(dst_url)}: {why}",
                            f"cannot move {dialect.display_url(src_url)} → {dialect.display_url(dst_url)}: {why}")) from None
    finally:
        src.dispose()


def _move(src: Engine, src_url: str, dst_url: str, replace: bool, on_table) -> MoveReport:
    from .store import Store

    with src.connect() as sconn, _snapshot(sconn).begin():
        smeta = _reflect(sconn)
        _check_source(smeta, sconn, src_url)
        Store(dst_url, create=True).close()  # the schema, from this crmsync's migrations
        dst = dialect.create_store_engine(dst_url)
        try:
            with dst.execution_options(**dialect.WRITE).begin() as dconn:  # the write lock
                dmeta = _reflect(dconn)
                if not replace:
                    _check_fresh(dconn, dmeta, dst_url)
                report = MoveReport(dialect.display_url(src_url), dialect.display_url(dst_url))
                _copy(sconn, dconn, smeta, dmeta, report, on_table)
                _verify(dconn, dmeta, report)
                if report.problems:
                    raise StoreError(tr("复制后校验失败，目标未改动: ", "the copy did not verify; "
                                        "destination left unchanged: ") + "; ".join(report.problems[:5]))
        finally:
            dst.dispose()
    return report


def _check_source(meta: MetaData, conn: Connection, url: str) -> None:
    for needed in ("audit_log", "audit_head", "schema_migrations"):
        if needed not in meta.tables:
            raise StoreError(tr(f"{dialect.display_url(url)} 不是 crmsync 存储（缺少表 {needed}）",
                                f"{dialect.display_url(url)} is not a crmsync store (no {needed} table)"))
    applied = {r[0] for r in conn.execute(select(meta.tables["schema_migrations"].c.number))}
    unknown = applied - {n for n, _, _ in MIGRATIONS}
    if unknown:
        raise StoreError(tr(f"来源存储由更新版本的 crmsync 创建（迁移 {sorted(unknown)}）；请先升级 crmsync",
                            f"the source store was made by a newer crmsync (migrations {sorted(unknown)}); "
                            "upgrade crmsync first"))


def _check_fresh(conn: Connection, meta: MetaData, url: str) -> None:
    head = conn.execute(select(meta.tables["audit_head"].c.seq)).scalar() or 0
    if head:
        raise InvalidInput(tr(f"目标存储 {dialect.display_url(url)} 已有数据（{head} 条审计记录）；"
                              "用 --replace 覆盖它",
                              f"the destination store {dialect.display_url(url)} already holds data "
                              f"({head} audit entries); use --replace to overwrite it"))


def _copy(sconn, dconn, smeta: MetaData, dmeta: MetaData, report: MoveReport, on_table) -> None:
    for t in reversed(dmeta.sorted_tables):  # children first: foreign keys stay satisfied
        if t.name not in OWN_TABLES:
            dconn.execute(t.delete())
    for st in smeta.sorted_tables:
        if st.name in OWN_TABLES:
            continue
        dt = dmeta.tables.get(st.name)
        if dt is None:
            raise StoreError(tr(f"目标存储没有表 {st.name}", f"the destination store has no table {st.name}"))
        cols = [c.name for c in st.columns]
        missing = [c for c in cols if c not in dt.c]
        if missing:
            raise StoreError(tr(f"目标表 {st.name} 缺少列 {', '.join(missing)}",
                                f"destination table {st.name} lacks columns {', '.join(missing)}"))
        kinds = [_kind(dt.c[c].type) for c in cols]
        convert = _converter(kinds)
        count, total = 0, 0
        result = sconn.execution_options(stream_results=True, yield_per=BATCH).execute(
            select(*(st.c[c] for c in cols)))
        for part in result.partitions(BATCH):
            rows = [convert(r) for r in part]
            for r in rows:
                total = (total + _row_hash(r)) % _MOD
            dialect.bulk_insert(dconn, st.name, cols, rows)  # COPY on PostgreSQL
            count += len(rows)
        report.tables.append(TableCheck(st.name, count, -1, _digest(total), "", cols))
        if on_table:
            on_table(st.name, count)
    if dconn.dialect.name == "postgresql":
        _reset_sequences(dconn, dmeta)


def _reset_sequences(conn: Connection, meta: MetaData) -> None:
    """Move serial counters past the copied ids, so the next insert does not collide."""
    for t in meta.sorted_tables:
        for c in t.primary_key.columns:
            if not isinstance(c.type, Integer):
                continue
            seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, %(c)s)",
                                       {"t": f'"{t.name}"', "c": c.name}).scalar()
            if seq:
                conn.exec_driver_sql(f'SELECT setval(%(s)s, COALESCE((SELECT max("{c.name}") FROM "{t.name}"), 0) + 1, false)',
                                     {"s": seq})


def _verify(dconn, dmeta: MetaData, report: MoveReport) -> None:
    """Read the copy back inside its transaction: counts, checksums, and the audit chain."""
    for check in report.tables:
        dt = dmeta.tables[check.name]
        kinds = [_kind(dt.c[c].type) for c in check.columns]
        check.dest_rows, check.dest_sum = table_checksum(dconn, dt, check.columns, kinds)
        if not check.ok:
            report.problems.append(tr(f"表 {check.name}: 来源 {check.source_rows} 行，目标 {check.dest_rows} 行，校验和"
                                      f"{'相同' if check.source_sum == check.dest_sum else '不同'}",
                                      f"table {check.name}: {check.source_rows} rows in the source, "
                                      f"{check.dest_rows} in the copy, checksums "
                                      f"{'equal' if check.source_sum == check.dest_sum else 'differ'}"))
    # The chain is re-verified on the copy.  audit_log and audit_head matched the source row for
    # row above, so the source's chain has exactly these problems too (a tampered store moves
    # as it is, and the report says so).
    after = audit.verify(dconn)
    report.audit_entries, report.audit_problems = after.entries, after.problems


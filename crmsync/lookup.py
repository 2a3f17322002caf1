"""Fast, cached, read-only look-ups in the store: what the worksheet functions (udfs.py) ask.

    lk = Lookup("crm.db", user="zhang")
    lk.value("C202405210001", "客户名称")      # '上海示例科技有限公司'
    lk.history("C202405210001", "status")       # [[time, user, old, new], ...] newest first
    lk.duplicates("上海示例科技股份有限公司", "+86 138-1234-5678")   # ['C202405210001']
    lk.next_followup("C202405210001"), lk.count("status", "成交客户")

A worksheet recalculates the same formulas again and again, from Excel's UDF server: one Python
process per workbook that lives as long as Excel (xlwings starts one per command line, and the
command line carries the workbook's path).  So a ``Lookup`` keeps one long-lived read connection
and caches every answer, and each call first asks whether the store changed:

- **SQLite**: ``PRAGMA data_version`` on that connection, a few microseconds.  Its value changes
  when any *other* connection (another process, or another Store object in this one) commits, so
  the first call after someone's sync sees it; then every cache is dropped at once.  The
  connection is in autocommit mode and ``query_only`` (each statement its own read transaction,
  none left open), memory-maps the file; in WAL mode readers never wait for writers.
- **Other backends** (PostgreSQL): no cheap change counter, so caches live at most ``ttl``
  seconds (2 by default): another process's commit shows within that time.

A cache hit costs a dict look-up plus that check; a miss is one prepared SELECT by primary key of
the whole row (kept, so the next field of the same record is a hit too).  Caches are dropped
whole when they pass ``CACHE_LIMIT`` answers or ``ROW_CACHE_LIMIT`` rows (memory stays bounded).

Permissions: when the acting user is known (``CRMSYNC_USER`` in the environment of Excel's
process) a record is shown only if access.check allows ``view``, counts cover only what the user
may view, and sensitive fields are masked unless ``see_sensitive`` is allowed.  The user is never
taken from the workbook: a file cannot vouch for who opened it (DESIGN.md §5).  With no user
known, the reader acts for whoever can open the store file.

Finding the store and the acting user (``settings``/``current``/``shared``): lookup_config.py.

Errors are exceptions of crmsync.errors with one-line messages; udfs.py turns them into text.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime

from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from . import access, audit, engine as dialect
from .access import User
from .enums import Enums
from .errors import CrmsyncError, InvalidInput, NotFound, PermissionDenied, StoreError
from .i18n import lang, tr
from .schema import (CUSTOM_DATA_KEY, ENTITIES, EnumItem, Entity, Field, header_index,
                     normalise_header)
from .tables import ENTITY_TABLES, custom_fields, enums as enums_table

from .lookup_config import (CONF_TTL, Settings, close_all, current, forget_settings, settings,  # noqa: F401
                            shared, workbook_conf)

__all__ = ["CACHE_LIMIT", "CONF_TTL", "HISTORY_ROWS", "Lookup", "Settings", "close_all",
           "current", "error_text", "forget_settings", "mask", "name_key", "settings", "shared",
           "workbook_conf"]

#: How long answers are kept for a store without a change counter (seconds).
STORE_TTL = 2.0
#: How many changes CRM_HISTORY shows, newest first.
HISTORY_ROWS = 20
#: Answers, and whole rows (a few KB each), kept before the cache is dropped whole.
CACHE_LIMIT = 200_000
ROW_CACHE_LIMIT = 20_000
#: How long a read waits on a locked SQLite file (ms): short, Excel is waiting.
READ_TIMEOUT_MS = 2_000
#: How much of an SQLite store the reader maps into memory, and its page cache (KiB).
MMAP_BYTES = 256 * 1024 * 1024
CACHE_KIB = 32 * 1024
#: The function crmsync.dedupe may provide for CRM_DUPES (see Lookup.duplicates).
DEDUPE_HOOK = "customer_matches"

_ID = re.compile(r"([A-Z])(\d{12,})")
_BY_PREFIX = {e.id_prefix: e for e in ENTITIES.values()}
_CHANGES = (audit.CREATE, audit.UPDATE, audit.DELETE, audit.RESTORE)
_MISS = object()


# ---- values as a cell shows them --------------------------------------------------------------

def mask(f: Field, text: str) -> str:
    """A sensitive value with its middle hidden: 138****5678, z***@example.com, 110101********1234."""
    if not text:
        return text
    if f.type == "email" and "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if f.type == "id_number" and len(text) >= 10:
        return text[:6] + "*" * (len(text) - 10) + text[-4:]
    if len(text) >= 8:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "****"


_LEGAL_SUFFIXES = tuple(sorted({
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "总公司", "公司", "集团", "股份公司",
    "co.,ltd.", "co.,ltd", "co.ltd.", "co.ltd", "companylimited", "limited", "ltd.", "ltd",
    "inc.", "inc", "corporation", "corp.", "corp", "llc", "co.",
}, key=len, reverse=True))
_NAME_SPACE = re.compile(r"[\s\u3000]+")
# the suffixes reversed, longest first, matched at the start of the reversed name
_SUFFIX_AT_END = re.compile("|".join(re.escape(x[::-1]) for x in _LEGAL_SUFFIXES))


def name_key(name: object) -> str:
    """A company name compared for CRM_DUPES: full-width folded (NFKC), lower case, without
    whitespace, and without trailing legal suffixes (有限公司, 股份有限公司, 集团, Co., Ltd., …).

    >>> name_key("上海示例科技 股份有限公司") == name_key("上海示例科技有限公司") == "上海示例科技"
    True
    """
    s = _NAME_SPACE.sub("", unicodedata.normalize("NFKC", str(name or ""))).lower().rstrip(".,")
    while s and s not in _LEGAL_SUFFIXES:
        m = _SUFFIX_AT_END.match(s[::-1])
        if m is None or m.end() >= len(s):
            break
        s = s[: len(s) - m.end()].rstrip(".,")
    return s


def _as_date(text: str):
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return text


def _as_datetime(text: str):
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def _plain(value: object) -> str:
    return "" if value is None else str(value)


# ---- the reader -------------------------------------------------------------------------------

class Lookup:
    """Cached read-only answers from one store, for one acting user (or none).

    :param location: a path or SQLAlchemy URL, as for Store (the store must exist).
    :param user: the acting user's name; None reads without restrictions.
    :param watch: "data_version" (SQLite default) or "ttl" (any backend; caches live ttl s).
    Raises NotFound when an SQLite store file does not exist, StoreError when the location is
    not a crmsync store.
    """

    def __init__(self, location, *, user: str | None = None, ttl: float = STORE_TTL,
                 watch: str | None = None):
        self.url = dialect.store_url(location)
        self.user_name = user or None
        self.ttl = ttl
        path = dialect.sqlite_path(self.url)
        self.watch = watch or ("data_version" if path is not None else "ttl")
        if self.watch == "data_version" and path is None:
            raise ValueError("data_version works for SQLite stores only")
        self._lock = threading.RLock()
        self._store = None  # a full Store, only for crmsync.dedupe's hook
        self.stats: Counter = Counter()  # hits, misses, reloads: for tests and the benchmark
        if path is not None:
            if not path.is_file():
                raise NotFound(tr(f"中心库 {path} 不存在；请检查 CRMSYNC_STORE", f"store {path} does not exist; check CRMSYNC_STORE"))
            raw = None
            try:
                raw = sqlite3.connect(path.as_uri() + "?mode=rw", uri=True, isolation_level=None,
                                      check_same_thread=False, timeout=READ_TIMEOUT_MS / 1000)
                raw.execute("PRAGMA query_only=ON")
                # A long-lived reader of a file the OS mostly holds in memory: map it instead of
                # copying each page in with a read call (about 15% off a point read here), and
                # keep more pages per connection.
                raw.execute(f"PRAGMA mmap_size={MMAP_BYTES}").fetchall()
                raw.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            except sqlite3.Error as exc:
                if raw is not None:
                    raw.close()
                raise StoreError(tr(f"无法打开中心库 {path}: {exc}", f"cannot open store {path}: {exc}")) from None
            self._raw = raw
            # every statement on this one connection: data_version speaks for what it reads
            self.engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool)
            self._mark = "?"
        else:
            self.engine = dialect.create_store_engine(self.url)
            try:
                self._raw = dialect.raw_reader(self.engine)
            except Exception as exc:  # a server that is down, a wrong password
                self.engine.dispose()
                raise StoreError(tr(f"无法连接中心库 {self.url}: {str(exc).splitlines()[0]}",
                                    f"cannot connect to store {self.url}: {str(exc).splitlines()[0]}")) from None
            self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._version: object = None
        self._stamp = time.monotonic()
        self._results: dict = {}
        self._values: dict = {}
        self._rows: dict = {}
        self._meta: dict = {}
        self._fields: dict = {}
        self._sql: dict = {}
        try:
            self._read_version()
            self._query("SELECT number FROM schema_migrations WHERE number = 1")
        except Exception as exc:
            self.close()
            raise StoreError(tr(f"{location} 不是 crmsync 中心库（{str(exc).splitlines()[0]}）",
                                f"{location} is not a crmsync store ({str(exc).splitlines()[0]})")) from None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._raw is not None:
                self._raw.close()
                self._raw = None
            self.engine.dispose()

    # ---- freshness and caches ----------------------------------------------------------------

    def _read_version(self) -> object:
        if self.watch == "data_version":
            return self._raw.execute("PRAGMA data_version").fetchone()[0]
        return None

    def refresh(self) -> bool:
        """Drop every cache if the store changed since the last call; return whether it did."""
        if self.watch == "data_version":
            version = self._raw.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version:
                return False
            self._version = version
        else:
            now = time.monotonic()
            if now - self._stamp < self.ttl:
                return False
            self._stamp = now
        self.clear()
        return True

    def clear(self) -> None:
        """Forget every cached answer, record and setting."""
        self._results.clear()
        self._values.clear()
        self._rows.clear()
        self._meta.clear()
        self._fields.clear()
        self._sql.clear()  # a migration may have added columns
        self.stats["reloads"] += 1

    def _cached(self, key, compute: Callable[[], object]):
        """The answer for key, computed once per store state; errors are cached too."""
        with self._lock:
            self.refresh()
            try:
                found = self._results.get(key, _MISS)
            except TypeError:  # an unhashable argument: answer without caching
                self.stats["misses"] += 1
                return compute()
            if found is not _MISS:
                self.stats["hits"] += 1
                if isinstance(found, CrmsyncError):
                    raise found.with_traceback(None)
                return found
            self.stats["misses"] += 1
            if len(self._results) >= CACHE_LIMIT:
                self._results.clear()
            try:
                value = compute()
            except CrmsyncError as exc:
                self._results[key] = exc.with_traceback(None)
                raise
            self._results[key] = value
            return value

    def _meta_get(self, key, build: Callable[[], object]):
        try:
            return self._meta[key]
        except KeyError:
            value = self._meta[key] = build()
            return value

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one driver-level statement (``?`` marks; rewritten for other drivers)."""
        if self._mark != "?":
            sql = sql.replace("?", self._mark)
        cur = self._raw.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            cur.close()

    def _select(self, stmt) -> list:
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()

    # ---- configuration: lists, fields, the acting user ----------------------------------------

    def enums(self) -> Enums:
        """The store's current enumerations (the admin may have edited them)."""
        def build():
            e = enums_table.c
            rows = self._select(select(e.list_key, e.key, e.zh, e.en, e.sort, e.synonyms).where(e.active))
            return Enums(EnumItem(r[0], r[1], r[2], r[3], r[4],
                                  tuple(s for s in (r[5] or "").split("|") if s)) for r in rows)
        return self._meta_get("enums", build)

    def entity(self, key: str) -> Entity:
        """The entity with the admin's custom fields."""
        def build():
            c = custom_fields.c
            rows = self._select(select(c.key, c.zh, c.en, c.type, c.required, c.enum, c.sensitive)
                                .where(c.entity == key).order_by(c.created_at, c.key))
            extra = tuple(Field(r[0], r[1], r[2], r[3], required=bool(r[4]), enum=r[5],
                                sensitive=bool(r[6]), custom=True) for r in rows)
            return ENTITIES[key].with_custom(extra)
        return self._meta_get(("entity", key), build)

    def field(self, entity_key: str, text: object) -> Field:
        """The field a key, a Chinese or English label or a known synonym names; raises InvalidInput."""
        try:
            return self._fields[(entity_key, text)]
        except (KeyError, TypeError):
            pass
        found = self._field(entity_key, text)
        try:
            self._fields[(entity_key, text)] = found
        except TypeError:
            pass
        return found

    def _field(self, entity_key: str, text: object) -> Field:
        ent = self.entity(entity_key)
        index = self._meta_get(("fields", entity_key), lambda: header_index(ent))
        key = index.get(normalise_header(text)) if isinstance(text, str) else None
        if key is None or key not in ent.by_key:
            shown = _plain(text)
            raise InvalidInput(tr(f"{ent.zh}没有字段“{shown}”（可用字段键或列名，如 customer_name 或 客户名称）",
                                  f"no field '{shown}' in {ent.en} (use a field key or column label, e.g. customer_name)"))
        return ent.by_key[key]

    def actor(self) -> User | None:
        """The acting user as the store knows them, or None when no user is set."""
        if self.user_name is None:
            return None

        def build():
            rows = self._query("SELECT name, role, team, display_name, active FROM users WHERE name = ?",
                               (self.user_name,))
            if not rows:
                return NotFound(tr(f"用户 {self.user_name} 不存在（CRMSYNC_USER）", f"user {self.user_name} does not exist (CRMSYNC_USER)"))
            r = rows[0]
            return User(r[0], r[1], r[2], r[3], bool(r[4]))
        found = self._meta_get("user", build)
        if isinstance(found, NotFound):
            raise found.with_traceback(None)
        return found

    # ---- records -----------------------------------------------------------------------------

    def _columns(self, ent: Entity) -> tuple[str, dict[str, int]]:
        """The point SELECT of an entity and its column positions."""
        found = self._sql.get(ent.key)
        if found is None:
            table = ENTITY_TABLES[ent.key]
            names = [c.name for c in table.columns]
            quoted = ", ".join(f'"{n}"' for n in names)
            sql = f'SELECT {quoted} FROM {table.name} WHERE "{ent.id_field}" = ?'
            if self._mark != "?":
                sql = sql.replace("?", self._mark)
            found = self._sql[ent.key] = (sql, {n: i for i, n in enumerate(names)})
        return found

    def row(self, ent: Entity, record_id: str) -> tuple | None:
        """The stored row of a record (deleted ones too), cached."""
        key = (ent.key, record_id)
        found = self._rows.get(key, _MISS)
        if found is not _MISS:
            return found
        sql = self._columns(ent)[0]
        cur = self._raw.cursor()
        try:
            cur.execute(sql, (record_id,))
            found = cur.fetchone()
        finally:
            cur.close()  # resets the statement: no read transaction stays open
        if len(self._rows) >= ROW_CACHE_LIMIT:
            self._rows.clear()
        self._rows[key] = found
        return found

    def _get(self, ent: Entity, row: tuple, key: str):
        cols = self._columns(ent)[1]
        i = cols.get(key)
        if i is not None:
            return row[i]
        custom = row[cols[CUSTOM_DATA_KEY]]
        return json.loads(custom).get(key) if custom else None

    def _record(self, value: object, want: str | None = None) -> tuple[Entity, str, tuple]:
        """(entity, id, row) of the record an id names, checked for existence and visibility."""
        if isinstance(value, (list, tuple)):
            raise InvalidInput(tr("请只传入一个单元格作为编号", "pass one cell as the id, not a range"))
        m = _ID.fullmatch(value) if value.__class__ is str else None
        if m is not None:
            text = value
        else:
            text = unicodedata.normalize("NFKC", _plain(value)).strip().upper()
            m = _ID.fullmatch(text)
        ent = _BY_PREFIX.get(m.group(1)) if m else None
        if ent is None or (want is not None and ent.key != want):
            example = ENTITIES[want or "customer"].id_prefix + "202405210001"
            raise InvalidInput(tr(f"“{_plain(value)}”不是有效的{ENTITIES[want].zh + '编号' if want else '记录编号'}（应如 {example}）",
                                  f"'{_plain(value)}' is not a valid {'customer ' if want else ''}id (e.g. {example})"))
        row = self.row(ent, text)
        if row is None:
            raise NotFound(tr(f"{ent.zh} {text} 不存在", f"{ent.en}: {text} does not exist"))
        if self._get(ent, row, "deleted"):
            raise NotFound(tr(f"{ent.zh} {text} 已删除", f"{ent.en}: {text} is deleted"))
        user = self.actor()
        if user is not None and not access.check(user, "view", self._owner(ent, row)):
            raise PermissionDenied(tr(f"无权查看{ent.zh} {text}", f"you may not view {text}"))
        return ent, text, row

    def _owner(self, ent: Entity, row: tuple) -> dict:
        """owner and team of the customer a record belongs to (what access.check reads)."""
        if ent.key != "customer":
            cust = ENTITIES["customer"]
            parent = self.row(cust, self._get(ent, row, "customer_id") or "")
            if parent is None:
                return {"owner": None, "team": None}
            ent, row = cust, parent
        return {"owner": self._get(ent, row, "owner"), "team": self._get(ent, row, "team")}

    def _hidden(self, ent: Entity, row: tuple, f: Field) -> bool:
        """Whether f must be masked for the acting user on this record."""
        if not f.sensitive:
            return False
        user = self.actor()
        return user is not None and not access.check(user, "see_sensitive", self._owner(ent, row))

    def _cell(self, f: Field, value: object):
        """A stored value as a cell shows it: labels for lists, numbers, TRUE/FALSE, dates."""
        if value is None or value == "":
            return ""
        if f.type == "enum" and f.enum:
            return self.enums().label(f.enum, value, lang())
        if f.type == "bool":
            return bool(value)
        if f.type == "int":
            return int(value)
        if f.type == "money":
            return float(value)
        if f.type == "date" and isinstance(value, str):
            return _as_date(value)
        if f.type == "datetime" and isinstance(value, str):
            return _as_datetime(value)
        return value if isinstance(value, (str, int, float)) else str(value)

    def _text(self, f: Field | None, value: object) -> str:
        """A value as text, for history rows (labels for lists, 是/否, plain numbers)."""
        if value is None or value == "":
            return ""
        if f is None:
            return str(value)
        shown = self._cell(f, value)
        if shown is True or shown is False:
            return tr("是", "yes") if shown else tr("否", "no")
        return str(shown)

    # ---- the answers -------------------------------------------------------------------------

    def value(self, record_id: object, field: object):
        """A record's current value of a field (key or label), as a cell shows it ("" when empty).

        Any entity: the id's letter says which (C customer, P contact, F follow-up, S service,
        D deal).  Raises InvalidInput (bad id or field), NotFound (no such or deleted record),
        PermissionDenied (the user may not view it).  The hottest path: written out, not
        through _cached.
        """
        key = (record_id, field)
        with self._lock:
            self.refresh()
            try:
                found = self._values.get(key, _MISS)
            except TypeError:  # an unhashable argument
                return self._value(record_id, field)
            if found is _MISS:
                self.stats["misses"] += 1
                try:
                    found = self._value(record_id, field)
                except CrmsyncError as exc:
                    found = exc.with_traceback(None)
                if len(self._values) >= CACHE_LIMIT:
                    self._values.clear()
                self._values[key] = found
            else:
                self.stats["hits"] += 1
            if isinstance(found, CrmsyncError):
                raise found.with_traceback(None)  # a cached error: no frames pile up on it
            return found

    def _value(self, record_id: object, field: object):
        ent, _, row = self._record(record_id)
        f = self.field(ent.key, field)
        shown = self._cell(f, self._get(ent, row, f.key))
        if shown != "" and self._hidden(ent, row, f):
            return mask(f, shown if isinstance(shown, str) else str(shown))
        return shown

    def history(self, record_id: object, field: object = None, limit: int = HISTORY_ROWS) -> list[list]:
        """Recent changes of a record, newest first, as rows.

        With a field: [time, user, old, new] (the first value, from the record's creation, has an
        empty old).  Without: [time, user, field, old, new], creation shown as one row.  Values
        are text as a person reads them.  An empty list when nothing changed.
        """
        def compute():
            ent, text, row = self._record(record_id)
            f = self.field(ent.key, field) if field not in (None, "") else None
            sql = ('SELECT at, "user", field, old_value, new_value FROM audit_log '
                   "WHERE entity = ? AND record_id = ? AND action IN (?, ?, ?, ?)")
            params: tuple = (ent.key, text, *_CHANGES)
            if f is not None:
                sql += " AND (field = ? OR field = '*')"
                params += (f.key,)
            # served by the index on (entity, record_id, seq)
            rows = self._query(sql + " ORDER BY seq DESC LIMIT ?", params + (limit + 1,))
            hidden = f is not None and self._hidden(ent, row, f)
            out = []
            for at, user, key, old, new in rows:
                old, new = audit.load_value(old), audit.load_value(new)
                if f is not None:
                    if key == "*":  # the creation: its snapshot holds the first value
                        new, old = (new or {}).get(f.key), None
                        if new is None:
                            continue
                    old_t, new_t = self._text(f, old), self._text(f, new)
                    if hidden:
                        old_t, new_t = mask(f, old_t), mask(f, new_t)
                    out.append([at, user or "", old_t, new_t])
                elif key == "*":
                    out.append([at, user or "", tr("（新建）", "(created)"), "", ""])
                else:
                    g = ent.by_key.get(key)
                    old_t, new_t = self._text(g, old), self._text(g, new)
                    if g is not None and self._hidden(ent, row, g):
                        old_t, new_t = mask(g, old_t), mask(g, new_t)
                    out.append([at, user or "", g.label(lang()) if g else key, old_t, new_t])
            return out[:limit]
        return self._cached(("history", record_id, field, limit), compute)

    def next_followup(self, customer_id: object):
        """The customer's 下次跟进时间, else the next time planned in its latest follow-up, else ""."""
        def compute():
            ent, text, row = self._record(customer_id, want="customer")
            planned = self._get(ent, row, "next_follow_up")
            if not planned:
                found = self._query(
                    "SELECT next_time FROM followups WHERE customer_id = ? AND deleted = ? AND "
                    "next_time IS NOT NULL ORDER BY follow_time DESC, follow_id DESC LIMIT 1",
                    (text, False))
                planned = found[0][0] if found else None
            return _as_datetime(planned) if planned else ""
        return self._cached(("next", customer_id), compute)

    def count(self, field: object, value: object) -> int:
        """How many customers (not deleted; those the user may view) have this value of a field.

        The value is read as the workbook would take it (a list's label or synonym, a phone in any
        format); an empty value counts customers with the field empty; for tags, customers that
        carry the tag.  Raises InvalidInput for a value the field cannot have.
        """
        def compute():
            if isinstance(value, (list, tuple)):
                raise InvalidInput(tr("请只传入一个单元格作为要计数的值", "pass one cell as the value to count"))
            f = self.field("customer", field)
            from .normalise import field_checker

            wanted, code = field_checker(f, self.enums())(value)
            if code is not None and code != "bad_characters":
                from .validate import problem_message

                raise InvalidInput(problem_message(code, f, value, lang(), self.enums()))
            counts = self._meta_get(("counts", f.key), lambda: self._counts(f))
            return counts.get(_count_key(f, wanted), 0)
        return self._cached(("count", field, value), compute)

    def _counts(self, f: Field) -> Counter:
        table = ENTITY_TABLES["customer"]
        column = table.c[CUSTOM_DATA_KEY] if f.custom else table.c[f.key]
        stmt = select(column).where(table.c.deleted.is_(False))
        user = self.actor()
        if user is not None:
            for key, val in (access.visible_filter(user) or {}).items():
                stmt = stmt.where(table.c[key] == val)
        counts: Counter = Counter()
        for (v,) in self._select(stmt):
            if f.custom:
                v = json.loads(v).get(f.key) if v else None
            if f.type == "tags" and v:
                counts.update(t for t in str(v).split(",") if t)
            else:
                counts[_count_key(f, v)] += 1
        return counts

    def duplicates(self, name: object, phone: object) -> list[str]:
        """Ids of existing customers (not deleted) this name and phone may duplicate, sorted.

        Calls ``crmsync.dedupe.customer_matches(store, {"customer_name": name, "mobile": phone})``
        when that module and function exist (it returns ids, or tuples whose first item is the
        id).  Until then: exact matches only — the same normalised mobile or landline (customers
        and their contacts), or the same company name compared by name_key (no legal suffixes,
        whitespace or full-width differences).  Every customer is searched whoever the user is:
        knowing that a customer exists is what prevents a duplicate, and an id shows nothing
        else (CRM_LOOKUP still checks permission).
        """
        def compute():
            if isinstance(name, (list, tuple)) or isinstance(phone, (list, tuple)):
                raise InvalidInput(tr("请只传入单个单元格", "pass single cells, not ranges"))
            hook = self._meta_get("hook", _dedupe_hook)
            if hook is not None:
                return self._hook_matches(hook, name, phone)
            if name in (None, "") and phone in (None, ""):
                return []
            index = self._meta_get("dupes", self._dupe_index)
            found: set[str] = set()
            key = name_key(name) if name not in (None, "") else ""
            if key:
                found.update(index["name"].get(key, ()))
            for number in _phone_keys(phone):
                found.update(index["phone"].get(number, ()))
            return sorted(found)
        return self._cached(("dupes", name, phone), compute)

    def _dupe_index(self) -> dict:
        names: dict[str, list[str]] = {}
        phones: dict[str, set[str]] = {}
        alive = set()
        for cid, cname, mobile, landline in self._query(
                "SELECT customer_id, customer_name, mobile, phone FROM customers WHERE deleted = ?", (False,)):
            alive.add(cid)
            k = name_key(cname)
            if k:
                names.setdefault(k, []).append(cid)
            for number in (mobile, landline):
                if number:
                    phones.setdefault(number, set()).add(cid)
        for cid, mobile, landline in self._query(
                "SELECT customer_id, mobile, phone FROM contacts WHERE deleted = ?", (False,)):
            if cid in alive:
                for number in (mobile, landline):
                    if number:
                        phones.setdefault(number, set()).add(cid)
        return {"name": names, "phone": phones}

    def _hook_matches(self, hook: Callable, name: object, phone: object) -> list[str]:
        if self._store is None:  # the dedupe engine works on a Store; opened once
            from .store import Store

            self._store = Store(self.url)
        found = hook(self._store, {"customer_name": name, "mobile": phone})
        ids = {m[0] if isinstance(m, (tuple, list)) else m for m in found or ()}
        return sorted(str(i) for i in ids if i)


def _count_key(f: Field, value: object):
    """Stored and asked-for values in one comparable form."""
    if value is None or value == "":
        return None
    if f.type == "bool":
        return bool(value)
    if f.type in ("int", "money"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def _phone_keys(phone: object) -> Iterable[str]:
    """The stored forms a typed phone may have: the normalised mobile, else the landline."""
    if phone in (None, ""):
        return ()
    from .normalise import normalise_value

    mobile, code = normalise_value(phone, "mobile")
    if code is None and mobile:
        return (mobile,)
    landline, code = normalise_value(phone, "phone")
    return (landline,) if code is None and landline else ()


def _dedupe_hook() -> Callable | None:
    """crmsync.dedupe's customer_matches (None only if that module cannot be imported)."""
    module = sys.modules.get("crmsync.dedupe")
    if module is None:
        import importlib.util

        if importlib.util.find_spec("crmsync.dedupe") is None:
            return None
        import importlib

        module = importlib.import_module("crmsync.dedupe")
    return getattr(module, DEDUPE_HOOK, None)


def error_text(exc: BaseException) -> str:
    """One line for an unexpected error in a cell (never a traceback)."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return tr(f"出错：{type(exc).__name__}: {first}", f"error: {type(exc).__name__}: {first}")

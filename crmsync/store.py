"""The canonical store: records with versions, ID allocation, the audit log, users and lists.

    store = Store("crm.db", create=True)
    with store.transaction(user="admin", source="cli") as tx:
        c = tx.create("customer", {"customer_name": "上海示例科技有限公司", "mobile": "13812345678"})
        tx.update("customer", c["customer_id"], {"status": "intent"})
    store.history("customer", c["customer_id"])      # every change, old and new values
    store.version("customer", c["customer_id"], 1)   # the record as it was at version 1

Every change goes through a Tx, which validates (validate.py), checks permissions (access.py), bumps
the record's version, and appends audit entries — all in one database transaction.  Deletes are soft.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

from sqlalchemy import and_, bindparam, func, select

from . import access, audit, clock, engine as dialect
from .access import User
from .enums import Enums
from .i18n import lang, tr
from .errors import InvalidInput, NotFound, PermissionDenied, StaleVersion, StoreError
from .schema import CUSTOM_DATA_KEY, ENTITIES, EnumItem, Entity, Field, custom_field, entity, seed_enums
from .tables import (ENTITY_TABLES, custom_fields, enums as enums_table, id_counters, migrate, roles,
                     settings as settings_table, teams, users)

META_KEYS = ("created_at", "created_by", "updated_at", "updated_by", "version", "deleted")


@cache
def _default_settings_text() -> str:
    return resources.files("crmsync.data").joinpath("settings.json").read_text("utf-8")


def default_settings() -> dict:
    return json.loads(_default_settings_text())



def format_id(prefix: str, day: str, serial: int) -> str:
    """C + YYYYMMDD + a 4-digit serial that widens past 9,999 (C2024052110000) instead of failing."""
    return f"{prefix}{day}{serial:04d}"


class Store:
    """The canonical store at a path or SQLAlchemy URL.

    :param create: create (and migrate) the store if it does not exist; otherwise NotFound.
    Raises StoreError when the location cannot be opened.
    """

    def __init__(self, location, *, create: bool = False, lang: str = "zh"):
        self.url = dialect.store_url(location)
        self.lang = lang
        path = dialect.sqlite_path(self.url)
        if path is not None and not path.exists():
            if not create:
                raise NotFound(tr(f"存储 {path} 不存在；请先运行 crmsync init", f"store {path} does not exist; run crmsync init first"))
            path.parent.mkdir(parents=True, exist_ok=True)
        if create and path is None:
            dialect.ensure_database(self.url)  # PostgreSQL: the database itself, when missing
        self.engine = dialect.create_store_engine(self.url)
        self._writer = self.engine.execution_options(**dialect.WRITE)
        self._cache: dict[str, object] = {}
        self._point: dict[str, tuple] = {}
        self._raw = None
        try:
            with dialect.begin_write(self._writer) as conn:
                migrate(conn)
                self._seed(conn)
        except Exception as exc:  # a locked, corrupt or foreign file: one clear line
            if isinstance(exc, (StoreError, NotFound)):
                raise
            where = dialect.display_url(self.url)  # never the password
            why = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(tr(f"无法打开存储 {where}: {why}", f"cannot open store {where}: {why}")) from exc

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- seed data (loaded once; afterwards the admin owns it) -----------------------------------

    def _seed(self, conn) -> None:
        if conn.execute(select(func.count()).select_from(enums_table)).scalar():
            return
        conn.execute(roles.insert(), [{"key": k, "zh": zh, "en": en} for k, (zh, en) in access.ROLES.items()])
        conn.execute(enums_table.insert(), [
            {"list_key": i.list_key, "key": i.key, "zh": i.zh, "en": i.en, "sort": i.sort,
             "synonyms": "|".join(i.synonyms)} for i in seed_enums()])
        conn.execute(settings_table.insert(), [{"key": k, "value": json.dumps(v)}
                                               for k, v in default_settings().items()])
        conn.execute(users.insert().values(name="admin", role="admin", display_name="系统管理员",
                                           created_at=clock.now_text()))

    # ---- configuration: lists, custom fields, settings, users -------------------------------------

    def enums(self) -> Enums:
        if "enums" not in self._cache:
            with self.engine.connect() as conn:
                rows = conn.execute(select(enums_table).where(enums_table.c.active)).mappings().all()
            self._cache["enums"] = Enums(EnumItem(r["list_key"], r["key"], r["zh"], r["en"], r["sort"],
                                                  tuple(s for s in (r["synonyms"] or "").split("|") if s))
                                         for r in rows)
        return self._cache["enums"]

    def entity(self, key: str) -> Entity:
        """The entity with the admin's custom fields appended."""
        ent = entity(key)
        cache_key = f"entity:{ent.key}"
        if cache_key not in self._cache:
            with self.engine.connect() as conn:
                rows = conn.execute(select(custom_fields).where(custom_fields.c.entity == ent.key)
                                    .order_by(custom_fields.c.created_at, custom_fields.c.key)).mappings().all()
            extra = tuple(Field(r["key"], r["zh"], r["en"], r["type"], required=r["required"],
                                enum=r["enum"], sensitive=r["sensitive"], custom=True) for r in rows)
            self._cache[cache_key] = ent.with_custom(extra)
        return self._cache[cache_key]

    def settings(self) -> dict:
        with self.engine.connect() as conn:
            stored = {r.key: json.loads(r.value) for r in conn.execute(select(settings_table))}
        return {**default_settings(), **stored}

    def set_setting(self, key: str, value, *, user: str = "admin") -> None:
        with self.transaction(user, "cli") as tx:
            tx.require("configure")
            old = self.settings().get(key)
            tx.conn.execute(settings_table.delete().where(settings_table.c.key == key))
            tx.conn.execute(settings_table.insert().values(key=key, value=json.dumps(value)))
            tx.log("configure", entity="setting", record_id=key, old=old, new=value)

    def user(self, name: str) -> User:
        """The user with this name; raises NotFound."""
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if r is None:
            raise NotFound(tr(f"用户 {name} 不存在；用 crmsync user add {name} --role rep 添加", f"user {name} does not exist; add it with crmsync user add {name} --role rep"))
        return User(r["name"], r["role"], r["team"], r["display_name"], bool(r["active"]))

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [User(r["name"], r["role"], r["team"], r["display_name"], bool(r["active"])) for r in rows]

    def add_user(self, name: str, role: str, team: str | None = None, display_name: str | None = None,
                 *, by: str = "admin") -> User:
        """Create a user (and their team if new); raises InvalidInput for an unknown role or a taken name."""
        if role not in access.ROLES:
            raise InvalidInput(tr(f"未知角色 {role}：可选 {', '.join(access.ROLES)}", f"unknown role {role}: use one of {', '.join(access.ROLES)}"))
        if not name.strip():
            raise InvalidInput(tr("用户名不能为空", "a user name cannot be empty"))
        with self.transaction(by, "cli") as tx:
            tx.require("configure")
            if tx.conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise InvalidInput(tr(f"用户 {name} 已存在", f"user {name} already exists"))
            if team and not tx.conn.execute(select(teams.c.name).where(teams.c.name == team)).first():
                tx.conn.execute(teams.insert().values(name=team, created_at=clock.now_text()))
                tx.log("configure", entity="team", record_id=team, new={"name": team})
            tx.conn.execute(users.insert().values(name=name, role=role, team=team,
                                                  display_name=display_name, created_at=clock.now_text()))
            tx.log("configure", entity="user", record_id=name,
                   new={"name": name, "role": role, "team": team})
        return self.user(name)

    def teams(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.name for r in conn.execute(select(teams.c.name).order_by(teams.c.name))]

    def rebuild_report_tables(self, by: str = "admin") -> tuple[int, int]:
        """Recompute the report tables (crmsync.report_tables) from the records and the audit
        log, e.g. after the database was edited by hand; return (counters, stays).  Admin only."""
        from . import report_tables

        with self.transaction(by, "cli") as tx:
            tx.require("configure")
            return report_tables.rebuild(tx.conn)

    def add_enum(self, list_key: str, key: str, zh: str, en: str | None = None, *,
                 synonyms: Iterable[str] = (), by: str = "admin") -> None:
        """Add a value to an enumeration (a new list if list_key is new)."""
        with self.transaction(by, "cli") as tx:
            tx.require("configure")
            exists = tx.conn.execute(select(enums_table.c.key).where(and_(
                enums_table.c.list_key == list_key, enums_table.c.key == key))).first()
            if exists:
                raise InvalidInput(tr(f"列表 {list_key} 已有值 {key}", f"list {list_key} already has {key}"))
            sort = tx.conn.execute(select(func.coalesce(func.max(enums_table.c.sort), 0))
                                   .where(enums_table.c.list_key == list_key)).scalar() + 1
            tx.conn.execute(enums_table.insert().values(list_key=list_key, key=key, zh=zh, en=en or zh,
                                                        sort=sort, synonyms="|".join(synonyms)))
            tx.log("configure", entity="enum", record_id=f"{list_key}.{key}", new={"zh": zh, "en": en or zh})
        self._cache.pop("enums", None)

    def add_custom_field(self, entity_key: str, key: str, zh: str, en: str | None = None,
                         type: str = "text", enum: str | None = None, required: bool = False,
                         sensitive: bool = False, *, by: str = "admin") -> Field:
        """Define a custom field (it appears as a workbook column); raises InvalidInput if unusable."""
        try:
            f = custom_field(entity_key, key, zh, en, type, enum, required, sensitive)
        except (KeyError, ValueError) as exc:
            raise InvalidInput(str(exc).strip("'")) from None
        if enum and enum not in self.enums().lists():
            raise InvalidInput(tr(f"列表 {enum} 不存在；先用 crmsync enum add {enum} … 创建", f"list {enum} does not exist; create it with crmsync enum add {enum} …"))
        ent = entity(entity_key)
        with self.transaction(by, "cli") as tx:
            tx.require("configure")
            if tx.conn.execute(select(custom_fields.c.key).where(and_(
                    custom_fields.c.entity == ent.key, custom_fields.c.key == key))).first():
                raise InvalidInput(tr(f"{ent.key} 已有自定义字段 {key}", f"{ent.key} already has a custom field {key}"))
            tx.conn.execute(custom_fields.insert().values(
                entity=ent.key, key=key, zh=zh, en=f.en, type=type, enum=f.enum, required=required,
                sensitive=sensitive, created_at=clock.now_text()))
            tx.log("configure", entity="custom_field", record_id=f"{ent.key}.{key}",
                   new={"zh": zh, "type": type, "enum": f.enum})
        self._cache.pop(f"entity:{ent.key}", None)
        return f

    # ---- reading records ---------------------------------------------------------------------------

    def get(self, entity_key: str, record_id: str) -> dict | None:
        """Return the current record (deleted ones included, with deleted=True), or None.

        The hot path of worksheet look-ups: one prepared statement on a kept DBAPI connection.
        """
        ent = self.entity(entity_key)
        sql, positional, cols = self._point_sql(ent)
        if self._raw is None:
            self._raw = dialect.raw_reader(self.engine)
        cur = self._raw.cursor()
        cur.execute(sql, (record_id,) if positional else {"record_id": record_id})
        row = cur.fetchone()
        cur.close()
        return None if row is None else self._to_record(ent, dict(zip(cols, row)))

    def _point_sql(self, ent: Entity):
        if ent.key not in self._point:
            table = ENTITY_TABLES[ent.key]
            stmt = select(table).where(table.c[ent.id_field] == bindparam("record_id"))
            compiled = stmt.compile(dialect=self.engine.dialect)
            positional = self.engine.dialect.paramstyle in ("qmark", "format", "numeric")
            self._point[ent.key] = (str(compiled), positional, [c.name for c in table.columns])
        return self._point[ent.key]

    def _to_record(self, ent: Entity, row: dict) -> dict:
        custom = row.pop(CUSTOM_DATA_KEY, None)
        for f in ent.fields:
            if f.type == "bool" and row.get(f.key) is not None:
                row[f.key] = bool(row[f.key])
        if custom:
            row.update(json.loads(custom))
        for f in ent.fields:
            if f.custom:
                row.setdefault(f.key, None)
        return row

    def require(self, entity_key: str, record_id: str) -> dict:
        """The current record; raises NotFound naming the id."""
        rec = self.get(entity_key, record_id)
        if rec is None:
            raise NotFound(tr(f"{entity(entity_key).zh} {record_id} 不存在", f"{entity(entity_key).en} {record_id} does not exist"))
        return rec

    def list(self, entity_key: str, *, where: Mapping[str, object] | None = None,
             visible_to: User | None = None, include_deleted: bool = False,
             limit: int | None = None, offset: int = 0, ids: Collection[str] | None = None) -> list[dict]:
        """Return records matching equality filters, limited to what visible_to may view.

        :param ids: only these records (in id order, as always).
        """
        if ids is not None:  # in slices: a bound parameter per id, and SQLite allows 32,766
            ids = sorted(ids)
            return [r for i in range(0, len(ids), 10_000)
                    for r in self._list(entity_key, where, visible_to, include_deleted, None, 0, ids[i:i + 10_000])]
        return self._list(entity_key, where, visible_to, include_deleted, limit, offset, None)

    def _list(self, entity_key, where, visible_to, include_deleted, limit, offset, only) -> list[dict]:
        ent = self.entity(entity_key)
        table = ENTITY_TABLES[ent.key]
        stmt = self._visible(ent, select(table), visible_to, where, include_deleted)
        if only is not None:
            stmt = stmt.where(table.c[ent.id_field].in_(only))
        stmt = stmt.order_by(table.c[ent.id_field]).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [self._to_record(ent, dict(r)) for r in conn.execute(stmt).mappings()]

    def ids(self, entity_key: str, *, visible_to: User | None = None) -> set[str]:
        """The ids of the records visible_to may view (not deleted): one narrow query."""
        ent = self.entity(entity_key)
        table = ENTITY_TABLES[ent.key]
        stmt = self._visible(ent, select(table.c[ent.id_field]), visible_to, None, False)
        with self.engine.connect() as conn:
            return set(conn.execute(stmt).scalars())

    def _visible(self, ent, stmt, visible_to: User | None, where: Mapping[str, object] | None, include_deleted: bool):
        table = ENTITY_TABLES[ent.key]
        filters = dict(where or {})
        if visible_to is not None:
            scope = access.visible_filter(visible_to)
            if scope and ent.key == "customer":
                filters.update(scope)
            elif scope:
                cust = ENTITY_TABLES["customer"]
                (col, val), = scope.items()
                stmt = stmt.where(table.c.customer_id.in_(select(cust.c.customer_id).where(cust.c[col] == val)))
        for key, value in filters.items():
            if key not in table.c:
                raise InvalidInput(tr(f"{ent.zh}没有字段 {key}", f"{ent.en} has no field {key}"))
            stmt = stmt.where(table.c[key] == value)
        if not include_deleted:
            stmt = stmt.where(table.c.deleted.is_(False))
        return stmt

    def count(self, entity_key: str, *, include_deleted: bool = False) -> int:
        table = ENTITY_TABLES[entity(entity_key).key]
        stmt = select(func.count()).select_from(table)
        if not include_deleted:
            stmt = stmt.where(table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def history(self, entity_key: str, record_id: str) -> list[dict]:
        """Return every audit entry of a record, oldest first, with values decoded."""
        ent = entity(entity_key)
        log = audit.audit_log
        with self.engine.connect() as conn:
            rows = conn.execute(select(log).where(and_(log.c.entity == ent.key, log.c.record_id == record_id))
                                .order_by(log.c.seq)).mappings().all()
        return [{**r, "old_value": audit.load_value(r["old_value"]),
                 "new_value": audit.load_value(r["new_value"])} for r in rows]

    def version(self, entity_key: str, record_id: str, version: int) -> dict:
        """Return the record as it was at that version; raises NotFound."""
        entries = [{**e, "old_value": audit.dump_value(e["old_value"]),
                    "new_value": audit.dump_value(e["new_value"])}
                   for e in self.history(entity_key, record_id)]
        rec = audit.replay_version(entries, version)
        if rec is None:
            raise NotFound(tr(f"{entity(entity_key).zh} {record_id} 没有版本 {version}", f"{entity(entity_key).en} {record_id} has no version {version}"))
        return rec

    def verify_audit(self) -> audit.VerifyReport:
        with self.engine.connect() as conn:
            return audit.verify(conn)

    # ---- writing -----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, user: str | User, source: str = "cli"):
        """Yield a Tx; everything it does commits together with its audit entries, or not at all."""
        actor = user if isinstance(user, User) else self.user(user)
        with dialect.begin_write(self._writer) as conn:
            tx = Tx(self, conn, actor, source)
            yield tx
            tx.counts.flush(conn)
            with bulk_gc():
                audit.append(conn, tx.entries)

    def create(self, entity_key: str, values: Mapping, *, user: str = "admin", source: str = "cli",
               reason: str | None = None) -> dict:
        """Create one record in its own transaction and return it."""
        with self.transaction(user, source) as tx:
            return tx.create(entity_key, values, reason=reason)

    def update(self, entity_key: str, record_id: str, changes: Mapping, *, user: str = "admin",
               source: str = "cli", reason: str | None = None, base_version: int | None = None) -> dict:
        with self.transaction(user, source) as tx:
            return tx.update(entity_key, record_id, changes, reason=reason, base_version=base_version)

    def backup(self, dest: Path) -> Path:
        """Write an online, consistent backup of the store to dest."""
        dialect.backup(self.engine, Path(dest))
        return Path(dest)

    def restore(self, backup_file: Path) -> None:
        """Replace this store's content with a backup (checked before anything is touched)."""
        backup_file = Path(backup_file)
        if not backup_file.exists():
            raise NotFound(tr(f"备份文件 {backup_file} 不存在", f"backup file {backup_file} does not exist"))
        self.close()
        dialect.restore(backup_file, self.url)
        self._cache.clear()
        self.engine = dialect.create_store_engine(self.url)
        self._writer = self.engine.execution_options(**dialect.WRITE)


# The transaction object lives in its own module to keep this one readable.
from .tx import Tx, bulk_gc  # noqa: E402  (Tx needs Store's helpers above)

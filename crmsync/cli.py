"""The `crmsync` command: a thin layer over the library.

Each command parses its arguments, opens the store, calls one library function and prints the
result.  A library error (CrmsyncError) becomes one line on stderr and exit code 1 — no traceback.
Shared options (--store, --lang, --user) are declared once below and accepted both before the
command (`crmsync --store x customer list`) and after it (`crmsync customer list --store x`).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from . import i18n
from .errors import CrmsyncError
from .i18n import tr

app = typer.Typer(help="crmsync: 以 Excel 为界面的客户管理 / a CRM for teams that live in Excel.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
customer_app = typer.Typer(help="客户 customers: add, show, list, update, history, delete, restore",
                           no_args_is_help=True)
user_app = typer.Typer(help="用户 users: add, list", no_args_is_help=True)
enum_app = typer.Typer(help="下拉列表 enumerations: list, add", no_args_is_help=True)
field_app = typer.Typer(help="自定义字段 custom fields: add, list", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志 audit log: verify, list", no_args_is_help=True)
workbook_app = typer.Typer(help="工作簿 workbook: build", no_args_is_help=True)
for sub, name in ((customer_app, "customer"), (user_app, "user"), (enum_app, "enum"),
                  (field_app, "field"), (audit_app, "audit"), (workbook_app, "workbook")):
    app.add_typer(sub, name=name)

console = Console(highlight=False)


def _table(*headers: str, show_header: bool = True) -> Table:
    """A rich table that folds long values instead of cutting them (ids and phones must stay whole)."""
    table = Table(show_header=show_header, box=box.SIMPLE_HEAD if show_header else None)
    for h in headers:
        table.add_column(h, overflow="fold")
    return table
err_console = Console(stderr=True, highlight=False)

# ---- shared options, defined once ----------------------------------------------------------------

StoreOpt = Annotated[Optional[str], typer.Option(
    "--store", envvar="CRMSYNC_STORE", help="存储位置：文件路径或 SQLAlchemy URL / store path or URL")]
LangOpt = Annotated[Optional[str], typer.Option("--lang", envvar="CRMSYNC_LANG", help="zh | en")]
UserOpt = Annotated[Optional[str], typer.Option(
    "--user", envvar="CRMSYNC_USER", help="以该用户身份操作 / act as this user (default admin)")]

_defaults: dict[str, str | None] = {"store": None, "lang": None, "user": None}


@app.callback()
def _global(store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    _defaults.update(store=store, lang=lang, user=user)
    i18n.set_lang(lang)


def _store_location(store: str | None) -> str:
    return store or _defaults["store"] or "crm.db"


def _user(user: str | None) -> str:
    return user or _defaults["user"] or "admin"


def open_store(store: str | None, create: bool = False):
    from .store import Store

    return Store(_store_location(store), create=create, lang=i18n.lang())


def command(group: typer.Typer, name: str | None = None):
    """Register a command whose CrmsyncError becomes 'Error: …' on stderr and exit code 1."""

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if kwargs.get("lang"):
                i18n.set_lang(kwargs["lang"])
            if not console.is_terminal:  # piped into a file or script: never fold an id or a phone
                console.width = 240
            try:
                return fn(*args, **kwargs)
            except CrmsyncError as exc:
                err_console.print(f"{tr('错误', 'Error')}: {exc}", markup=False, soft_wrap=True)
                raise typer.Exit(1)

        group.command(name)(run)
        return fn

    return decorate


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    from .errors import InvalidInput

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(tr(f"--set 需要 字段=值 的形式: {pair}", f"--set needs field=value: {pair}"))
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def _resolve_keys(store, entity_key: str, values: dict) -> dict:
    """Accept field keys or labels (客户状态=意向客户) on the command line."""
    from .errors import InvalidInput
    from .schema import header_index, normalise_header

    index = header_index(store.entity(entity_key))
    out = {}
    for key, value in values.items():
        field = index.get(normalise_header(key))
        if field is None:
            raise InvalidInput(tr(f"未知字段 {key}", f"unknown field {key}"))
        out[field] = value
    return out


def _show_record(store, entity_key: str, rec: dict) -> None:
    from .display import display_value

    ent = store.entity(entity_key)
    table = _table("", "", show_header=False)
    for f in ent.fields:
        value = display_value(store, f, rec.get(f.key))
        if value != "":
            table.add_row(f.label(i18n.lang()), value)
    console.print(table)


# ---- project -------------------------------------------------------------------------------------

@command(app, "init")
def init(directory: Annotated[Path, typer.Argument(help="目录 / directory")] = Path("."),
         store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Create a store and a workbook in DIRECTORY (the store: DIRECTORY/crm.db, or --store URL).

    Example: crmsync init ./crm
             crmsync init ./crm --store postgresql://crm@db.example.com/crm
    """
    from .engine import display_url
    from .project import init_project

    location, workbook = init_project(directory, lang=i18n.lang(), store=store or _defaults["store"])
    shown = display_url(location) if "://" in str(location) else location
    console.print(tr(f"已创建存储 {shown}\n已创建工作簿 {workbook}",
                     f"Created store {shown}\nCreated workbook {workbook}"))


@command(app, "demo")
def demo(directory: Annotated[Path, typer.Argument(help="目录 / directory")] = Path("demo"),
         customers: Annotated[int, typer.Option(help="演示客户数 / number of demo customers")] = 300,
         lang: LangOpt = None) -> None:
    """Create a store and workbook in DIRECTORY filled with realistic demo data (fixed seed).

    Example: crmsync demo ./demo
    """
    from .demo import create_demo

    summary = create_demo(directory, customers=customers, lang=i18n.lang(), console=console)
    console.print(summary)


# ---- customers -----------------------------------------------------------------------------------

@command(customer_app, "add")
def customer_add(name: Annotated[str, typer.Option("--name", help="客户名称 / customer name")],
                 owner: Annotated[Optional[str], typer.Option(help="负责人 / owner")] = None,
                 set_: Annotated[list[str], typer.Option("--set", help="字段=值 field=value")] = [],
                 store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Add a customer; the store assigns its id.

    Example: crmsync customer add --name 上海示例科技有限公司 --set 手机号=13812345678 --set 所属行业=软件开发
    """
    with open_store(store) as s:
        values = _resolve_keys(s, "customer", _parse_sets(set_))
        values["customer_name"] = name
        if owner:
            values["owner"] = owner
        rec = s.create("customer", values, user=_user(user))
        console.print(rec["customer_id"])


@command(customer_app, "update")
def customer_update(customer_id: str,
                    set_: Annotated[list[str], typer.Option("--set", help="字段=值 field=value")] = [],
                    reason: Annotated[Optional[str], typer.Option(help="变更原因 / reason")] = None,
                    store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Change fields of a customer (core fields need --reason).

    Example: crmsync customer update C202405210001 --set 客户状态=流失客户 --set 流失原因=价格过高 --reason 客户选择竞品
    """
    with open_store(store) as s:
        rec = s.update("customer", customer_id, _resolve_keys(s, "customer", _parse_sets(set_)),
                       user=_user(user), reason=reason)
        console.print(tr(f"{customer_id} 已更新到版本 {rec['version']}", f"{customer_id} is now at version {rec['version']}"))


@command(customer_app, "show")
def customer_show(customer_id: str, version: Annotated[Optional[int], typer.Option(help="历史版本")] = None,
                  store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Show one customer (or a past version of it).

    Example: crmsync customer show C202405210001 --version 1
    """
    from .access import check
    from .errors import NotFound, PermissionDenied

    with open_store(store) as s:
        rec = s.version("customer", customer_id, version) if version else s.get("customer", customer_id)
        if rec is None:
            raise NotFound(tr(f"客户 {customer_id} 不存在", f"customer {customer_id} does not exist"))
        decision = check(s.user(_user(user)), "view", rec)
        if not decision:
            raise PermissionDenied(decision.reason)
        _show_record(s, "customer", rec)


@command(customer_app, "list")
def customer_list(owner: Annotated[Optional[str], typer.Option(help="负责人")] = None,
                  status: Annotated[Optional[str], typer.Option(help="客户状态")] = None,
                  limit: Annotated[int, typer.Option(help="最多显示 / at most")] = 50,
                  deleted: Annotated[bool, typer.Option("--deleted", help="包括已删除")] = False,
                  store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """List customers the user may see.

    Example: crmsync customer list --status 意向客户 --limit 20
    """
    from .display import display_value

    with open_store(store) as s:
        where = {}
        if owner:
            where["owner"] = owner
        if status:
            where["status"] = s.enums().normalise("customer_status", status) or status
        actor = s.user(_user(user))
        rows = s.list("customer", where=where, visible_to=actor, include_deleted=deleted, limit=limit)
        ent = s.entity("customer")
        keys = ["customer_id", "customer_name", "status", "customer_level", "industry", "owner", "mobile"]
        table = _table(*[ent.get(k).label(i18n.lang()) for k in keys])
        for r in rows:
            table.add_row(*[display_value(s, ent.get(k), r.get(k)) for k in keys])
        console.print(table)
        console.print(tr(f"共 {s.count('customer')} 个客户，显示 {len(rows)} 个",
                         f"{s.count('customer')} customers, {len(rows)} shown"))


@command(customer_app, "history")
def customer_history(customer_id: str, store: StoreOpt = None, lang: LangOpt = None,
                     user: UserOpt = None) -> None:
    """Show every change of a customer with old and new values.

    Example: crmsync customer history C202405210001
    """
    from .access import check
    from .errors import PermissionDenied
    from .display import history_rows

    with open_store(store) as s:
        rec = s.require("customer", customer_id)
        decision = check(s.user(_user(user)), "view", rec)
        if not decision:
            raise PermissionDenied(decision.reason)
        table = _table(*(tr("序号 时间 用户 来源 操作 版本 字段 旧值 新值 原因", "seq time user source action "
                           "version field old new reason").split()))
        for row in history_rows(s, "customer", s.history("customer", customer_id)):
            table.add_row(*row)
        console.print(table)


@command(customer_app, "delete")
def customer_delete(customer_id: str, reason: Annotated[Optional[str], typer.Option(help="原因")] = None,
                    store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Soft-delete a customer (restorable; managers and admins only).

    Example: crmsync customer delete C202405210001 --reason 重复录入
    """
    with open_store(store) as s:
        with s.transaction(_user(user)) as tx:
            tx.delete("customer", customer_id, reason=reason)
        console.print(tr(f"{customer_id} 已删除（可恢复）", f"{customer_id} deleted (restorable)"))


@command(customer_app, "restore")
def customer_restore(customer_id: str, reason: Annotated[Optional[str], typer.Option(help="原因")] = None,
                     store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Restore a deleted customer.

    Example: crmsync customer restore C202405210001
    """
    with open_store(store) as s:
        with s.transaction(_user(user)) as tx:
            tx.restore("customer", customer_id, reason=reason)
        console.print(tr(f"{customer_id} 已恢复", f"{customer_id} restored"))


# ---- users, lists, fields ------------------------------------------------------------------------

@command(user_app, "add")
def user_add(name: str, role: Annotated[str, typer.Option(help="rep | manager | admin")],
             team: Annotated[Optional[str], typer.Option(help="团队 / team")] = None,
             display_name: Annotated[Optional[str], typer.Option(help="显示名")] = None,
             store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Add a user with a role (and a team, created if new).

    Example: crmsync user add zhangwei --role rep --team 华东销售部
    """
    with open_store(store) as s:
        u = s.add_user(name, role, team, display_name, by=_user(user))
        console.print(tr(f"已添加用户 {u.name}（{u.role}）", f"Added user {u.name} ({u.role})"))


@command(user_app, "list")
def user_list(store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """List users, their roles and teams.

    Example: crmsync user list
    """
    from .access import ROLES

    with open_store(store) as s:
        table = _table(*tr("用户 角色 团队 显示名", "user role team name").split())
        en = i18n.lang() == "en"
        for u in s.users():
            table.add_row(u.name, ROLES[u.role][1 if en else 0], u.team or "", u.display_name or "")
        console.print(table)


@command(enum_app, "list")
def enum_list(list_key: Annotated[Optional[str], typer.Argument(help="列表名 / list")] = None,
              store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Show the enumerations (drop-down lists) or one of them.

    Example: crmsync enum list customer_status
    """
    with open_store(store) as s:
        e = s.enums()
        table = _table(*tr("列表 键 中文 英文", "list key zh en").split())
        for lk in ([list_key] if list_key else e.lists()):
            for item in e.items.get(lk, []):
                table.add_row(lk, item.key, item.zh, item.en)
        console.print(table)


@command(enum_app, "add")
def enum_add(list_key: str, key: str, zh: Annotated[str, typer.Option("--zh", help="中文标签")],
             en: Annotated[Optional[str], typer.Option("--en", help="English label")] = None,
             synonym: Annotated[list[str], typer.Option("--synonym", help="导入时的同义词")] = [],
             store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Add a value to a drop-down list (admin).

    Example: crmsync enum add industry new_energy --zh 新能源 --en "New energy"
    """
    with open_store(store) as s:
        s.add_enum(list_key, key, zh, en, synonyms=synonym, by=_user(user))
        console.print(tr(f"已添加 {list_key}.{key}", f"Added {list_key}.{key}"))


@command(field_app, "add")
def field_add(entity_key: Annotated[str, typer.Argument(help="customer | contact | followup | service | deal")],
              key: str, zh: Annotated[str, typer.Option("--zh", help="中文列名")],
              en: Annotated[Optional[str], typer.Option("--en", help="English label")] = None,
              type_: Annotated[str, typer.Option("--type", help="text|longtext|int|money|date|datetime|bool|enum|tags")] = "text",
              enum: Annotated[Optional[str], typer.Option("--enum", help="下拉列表名")] = None,
              required: Annotated[bool, typer.Option("--required")] = False,
              sensitive: Annotated[bool, typer.Option("--sensitive")] = False,
              store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Add a custom field; it becomes a workbook column.

    Example: crmsync field add customer cooperation_years --zh 合作年限 --type int
    """
    with open_store(store) as s:
        s.add_custom_field(entity_key, key, zh, en, type_, enum, required, sensitive, by=_user(user))
        console.print(tr(f"已添加自定义字段 {entity_key}.{key}", f"Added custom field {entity_key}.{key}"))


@command(field_app, "list")
def field_list(entity_key: Annotated[str, typer.Argument()] = "customer", store: StoreOpt = None,
               lang: LangOpt = None) -> None:
    """List the fields of an entity (custom ones marked).

    Example: crmsync field list customer
    """
    with open_store(store) as s:
        table = _table(*tr("键 中文 英文 类型 必填 核心 敏感 自定义", "key zh en type required core sensitive custom").split())
        for f in s.entity(entity_key).fields:
            table.add_row(f.key, f.zh, f.en, f.type, *("✓" if x else "" for x in
                                                        (f.required, f.core, f.sensitive, f.custom)))
        console.print(table)


# ---- audit, backup -------------------------------------------------------------------------------

@command(audit_app, "verify")
def audit_verify(store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Check the audit chain; exit 1 naming every altered, removed or reordered entry.

    Example: crmsync audit verify
    """
    with open_store(store) as s:
        report = s.verify_audit()
    if report.ok:
        console.print(tr(f"审计日志完整：{report.entries} 条记录，哈希链校验通过",
                         f"Audit log intact: {report.entries} entries, hash chain verified"))
        return
    for seq, problem in report.problems:
        err_console.print(tr(f"审计记录 #{seq}: {problem}", f"audit entry #{seq}: {problem}"), markup=False)
    raise typer.Exit(1)


@command(audit_app, "list")
def audit_list(limit: Annotated[int, typer.Option()] = 30, store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Show the latest audit entries.

    Example: crmsync audit list --limit 10
    """
    from .display import recent_audit_rows

    with open_store(store) as s:
        table = _table(*(tr("序号 时间 用户 来源 操作 对象 版本 字段 旧值 新值 原因", "seq time user source "
                           "action record version field old new reason").split()))
        for row in recent_audit_rows(s, limit):
            table.add_row(*row)
        console.print(table)


@command(app, "backup")
def backup(file: Path, store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Write an online backup of the store to FILE (others may keep working).

    Example: crmsync backup backups/crm-2024-05-21.db
    """
    with open_store(store) as s:
        s.backup(file)
    console.print(tr(f"已备份到 {file}", f"Backed up to {file}"))


@command(app, "restore")
def restore(file: Path, store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Replace the store's content with a backup FILE (checked first).

    Example: crmsync restore backups/crm-2024-05-21.db
    """
    with open_store(store, create=True) as s:
        s.restore(file)
    console.print(tr(f"已从 {file} 恢复", f"Restored from {file}"))


@command(workbook_app, "build")
def workbook_build(out: Annotated[Path, typer.Argument(help="输出文件")] = Path("crm_workbook.xlsm"),
                   lang: LangOpt = None) -> None:
    """Build the macro-enabled workbook from templates/ (reproducible: same sources, same bytes).

    Example: crmsync workbook build --lang en crm_workbook_en.xlsm
    """
    from .build import build_workbook

    path = build_workbook(out, lang=i18n.lang())
    console.print(tr(f"已生成 {path}", f"Built {path}"))


@command(app, "validate")
def validate(file: Annotated[Path, typer.Argument(help="工作簿文件 / workbook file")],
             marks: Annotated[bool, typer.Option("--marks/--no-marks",
                                                 help="在文件中标出问题并写“校验结果” / mark problems in the file")] = True,
             limit: Annotated[int, typer.Option(help="最多列出 / list at most")] = 200,
             store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Check every sheet of a workbook file, as the 校验 button does; exit 1 when there are problems.

    Invalid cells get a red fill and a note, and the 校验结果 sheet lists every problem with a link
    to its cell (--no-marks leaves the file untouched).

    Example: crmsync validate crm_workbook.xlsm
    """
    from .actions import check_workbook
    from .book_file import FileBook

    if store or _defaults["store"]:
        os.environ["CRMSYNC_STORE"] = _store_location(store)  # check against the store's lists
    with console.status(tr("正在校验…", "Checking…")) as spinner:
        book = FileBook(file, on_status=lambda text: spinner.update(text))
        outcome = check_workbook(book, write=marks, lang=i18n.lang())
    if outcome.problems:
        table = _table(tr("工作表", "Sheet"), tr("行", "Row"), tr("列", "Column"), tr("值", "Value"),
                       tr("问题", "Problem"))
        for sheet, row, _col, label, value, message in outcome.problems[:limit]:
            table.add_row(sheet, str(row), label, "" if value is None else str(value), message)
        console.print(table)
        if len(outcome.problems) > limit:
            console.print(tr(f"（只列出前 {limit} 个）", f"(first {limit} shown)"))
    console.print(f"{file.name}: {outcome.message}")
    if outcome.problems:
        raise typer.Exit(1)


# Commands of the later pieces of work live in their own modules; importing them registers them.
from . import cli_dedupe, cli_import, cli_reports, cli_store, cli_sync, cli_watch  # noqa: E402,F401


def main() -> None:
    """Console entry point."""
    if sys.platform == "win32":  # Chinese in a Windows console
        os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()

"""`crmsync` commands: checkout, sync, conflict list|resolve, approve.  Registered by importing this module at the end of cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import i18n
from .cli import LangOpt, StoreOpt, UserOpt, _table, _user, app, command, console, open_store
from .i18n import tr

conflict_app = typer.Typer(help="冲突 conflicts: list, resolve", no_args_is_help=True)
app.add_typer(conflict_app, name="conflict")


@command(app, "checkout")
def checkout_cmd(out: Annotated[Path, typer.Argument(help="个人副本文件 / the copy to write (.xlsm)")],
                 store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Write a personal workbook copy holding exactly what --user may see.

    Example: crmsync checkout --user zhang zhang.xlsm
    """
    from .sync_copy import checkout

    with open_store(store) as s, console.status(tr("正在生成副本…", "Writing the copy…")):
        written = checkout(s, _user(user), out, lang=i18n.lang())
    counts = tr("，", ", ").join(f"{s_label} {n}" for s_label, n in _labels(written))
    console.print(tr(f"已生成 {out}：{counts}", f"Wrote {out}: {counts}"))


def _labels(written: dict[str, int]):
    from .schema import ENTITIES

    for key, n in written.items():
        yield ENTITIES[key].label(i18n.lang()), n


@command(app, "sync")
def sync_cmd(file: Annotated[Path, typer.Argument(help="工作簿副本 / workbook copy")],
             write_back: Annotated[bool, typer.Option(
                 "--write-back/--no-write-back",
                 help="把编号、版本、他人修改和标记写回文件 / write ids, versions, incoming changes and marks into the file")] = True,
             copy_id: Annotated[Optional[str], typer.Option(
                 "--copy-id", help="副本标识（默认为文件路径）/ the copy's identity (default: its path)")] = None,
             store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Sync a workbook copy with the store as --user (the same as the 同步 button).

    Example: crmsync sync zhang.xlsm --user zhang
    """
    from .sync_copy import ingest_copy

    with open_store(store) as s, console.status(tr("正在同步…", "Syncing…")) as spinner:
        result = ingest_copy(s, file, _user(user), copy_id=copy_id, write_back=write_back,
                             on_status=lambda text: spinner.update(text))
    if result.details:
        table = _table(tr("工作表", "Sheet"), tr("行", "Row"), tr("说明", "What"))
        for sheet, row, text in result.details:
            table.add_row(sheet, "" if row is None else str(row), text)
        console.print(table)
    console.print(f"{file.name}: {result.message}")


@command(conflict_app, "list")
def conflict_list(all_: Annotated[bool, typer.Option("--all", help="包括已处理的 / include resolved ones")] = False,
                  store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """List conflicts kept by syncs (open ones unless --all).

    Example: crmsync conflict list --user wang
    """
    from .conflicts import list_conflicts
    from .schema import ENTITIES

    with open_store(store) as s:
        found = list_conflicts(s, status=None if all_ else "open", user=_user(user))
    if not found:
        console.print(tr("没有冲突", "No conflicts"))
        return
    table = _table("#", tr("记录", "Record"), tr("字段", "Field"), tr("本表的值 mine", "Mine"),
                   tr("库中的值 theirs", "Theirs"), tr("本表修改人", "By (mine)"), tr("库中修改人", "By (theirs)"),
                   tr("库中修改时间", "When (theirs)"), tr("副本", "Copy"), tr("状态", "Status"))
    for c in found:
        ent = ENTITIES[c.entity]
        label = ent.get(c.field).label(i18n.lang()) if c.field in ent.keys else c.field
        status = tr("待处理", "open") if c.status == "open" else tr(f"已处理：{c.resolution}", f"resolved: {c.resolution}")
        table.add_row(str(c.id), c.record_id, label, _s(c.local), _s(c.store), c.local_user or "",
                      c.store_user or "", c.store_time or "", Path(c.copy_id or "").name, status)
    console.print(table)


def _s(v) -> str:
    return "" if v is None else str(v)


@command(conflict_app, "resolve")
def conflict_resolve(conflict_id: Annotated[int, typer.Argument(help="冲突编号 / conflict number")],
                     take: Annotated[str, typer.Option("--take", help="mine | theirs | 一个值 a value")],
                     store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Resolve a conflict: keep the copy's value (mine), the store's (theirs) or a new value.

    Example: crmsync conflict resolve 3 --take mine --user wang
    """
    from .conflicts import resolve_conflict

    how = take if take in ("mine", "theirs") else "value"
    with open_store(store) as s:
        c = resolve_conflict(s, conflict_id, how, user=_user(user), value=take if how == "value" else None)
    console.print(tr(f"冲突 #{c.id} 已处理：{c.record_id} {c.field} = {_s(c.resolution['value'])}",
                     f"Conflict #{c.id} resolved: {c.record_id} {c.field} = {_s(c.resolution['value'])}"))


@command(app, "approve")
def approve_cmd(ids: Annotated[Optional[list[str]], typer.Argument(help="客户编号（省略则为全部待审核）/ customer ids (default: all pending)")] = None,
                store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Approve new customers waiting for approval (managers); all you may approve when no id is given.

    Example: crmsync approve C202405210001 --user wang
    """
    from .sync_apply import approve_customers

    with open_store(store) as s:
        approved, refused = approve_customers(s, _user(user), ids or None)
    for cid, why in refused:
        console.print(f"{cid}: {why}")
    console.print(tr(f"已审核 {len(approved)} 个客户", f"Approved {len(approved)} customers")
                  + (tr(f"，{len(refused)} 个未通过", f"; {len(refused)} refused") if refused else ""))
    if refused and not approved:
        raise typer.Exit(1)

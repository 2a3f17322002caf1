"""`crmsync` commands: import FILE, template import.  Registered by importing this module at the end of cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import i18n
from .cli import LangOpt, StoreOpt, UserOpt, _table, _user, app, command, console, open_store  # noqa: F401
from .i18n import tr

template_app = typer.Typer(help="模板 templates: import", no_args_is_help=True)
app.add_typer(template_app, name="template")

_STAGES = {"read": ("读取文件", "Reading"), "address": ("拆分地址", "Addresses"), "validate": ("校验", "Checking"),
           "duplicates": ("查重", "Duplicates"), "write": ("写入", "Writing")}


class _Progress:
    """Rich progress bars for the stages of an import (shown only on a terminal)."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True,
                            disable=not console.is_terminal)
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(tr(*_STAGES.get(stage, (stage, stage))), total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


@command(app, "import")
def import_file(file: Annotated[Path, typer.Argument(help="要导入的文件 .xlsx/.xlsm/.xls/.csv / file to import")],
                sheet: Annotated[Optional[str], typer.Option("--sheet", help="工作表名或序号 / sheet name or number")] = None,
                dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示将会发生什么，不写入 / show what would happen, change nothing")] = False,
                map_: Annotated[list[str], typer.Option("--map", help="列名=字段，覆盖自动匹配 / column=field override")] = [],
                errors: Annotated[Optional[Path], typer.Option("--errors", help="错误工作簿 / error workbook (.xlsx)")] = None,
                keep_duplicates: Annotated[bool, typer.Option("--keep-duplicates", help="疑似重复的行也导入 / import likely duplicates too")] = False,
                limit: Annotated[int, typer.Option(help="最多列出多少个问题 / list at most this many problems")] = 20,
                store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None) -> None:
    """Import customers from a legacy spreadsheet: valid rows in one transaction, bad rows to an error workbook.

    The header is found under title rows; columns match fields by label or synonym, in any order; unmapped columns are kept with each customer.

    Rows with problems go, every problem marked per cell, to the error workbook (--errors; default FILE-导入错误.xlsx beside FILE).

    Example: crmsync import 老客户名单.xlsx --map "客户全名=customer_name" --dry-run
    """
    from .importer import apply_import, plan_import, write_error_workbook

    who = _user(user)
    with open_store(store) as s, _Progress() as progress:
        plan = plan_import(s, file, sheet=sheet, mapping=map_, user=who, keep_duplicates=keep_duplicates,
                           progress=progress)
        result = None if dry_run else apply_import(s, plan, user=who, progress=progress)
    _print_plan(plan, limit)
    s_ = plan.summary()
    if (plan.problems or plan.duplicates) and (errors or not dry_run):
        out = errors or file.with_name(f"{file.stem}-{tr('导入错误', 'import-errors')}.xlsx")
        write_error_workbook(plan, out)
        console.print(tr(f"错误工作簿：{out}（改正标红的单元格后可再次导入）",
                         f"Error workbook: {out} (fix the red cells and import it again)"))
    if result is None:
        console.print(tr(f"试运行：将导入 {s_['valid']} 行；未写入任何数据",
                         f"Dry run: {s_['valid']} rows would be imported; nothing was written"))
    else:
        span = f" ({result.ids[0]} … {result.ids[-1]})" if result.ids else ""
        console.print(tr(f"已导入 {len(result.ids)} 个客户{span}；有错误 {s_['invalid']} 行，疑似重复 {s_['duplicates']} 行",
                         f"Imported {len(result.ids)} customers{span}; {s_['invalid']} rows with problems, "
                         f"{s_['duplicates']} likely duplicates"))


def _print_plan(plan, limit: int) -> None:
    src = plan.source
    console.print(tr(f"{src.where()}：表头在第 {plan.header_row} 行，数据 {plan.total} 行",
                     f"{src.where()}: header on row {plan.header_row}, {plan.total} data rows"))
    for note in plan.notes:
        console.print(f"  · {note}")
    lang = i18n.lang()
    table = _table(tr("列", "Column"), tr("表头", "Header"), tr("字段", "Field"))
    for c in plan.columns.columns:
        if not c.header:
            continue
        target = plan.entity.get(c.field).label(lang) if c.field else tr("（未匹配，保留为附加数据）", "(unmapped, kept as extra data)")
        table.add_row(c.letter, c.header, target)
    console.print(table)
    unmapped = plan.unmapped
    if unmapped:
        console.print(tr(f"未匹配的列：{'、'.join(unmapped)}（保存在客户的附加数据中；可用 --map 列名=字段 指定）",
                         f"Unmapped columns: {', '.join(unmapped)} (kept as extra data; use --map column=field)"))
    s = plan.summary()
    console.print(tr(f"共 {s['rows']} 行：可导入 {s['valid']}，有错误 {s['invalid']}（{s['problems']} 个问题），疑似重复 {s['duplicates']}",
                     f"{s['rows']} rows: {s['valid']} valid, {s['invalid']} with problems ({s['problems']}), "
                     f"{s['duplicates']} likely duplicates"))
    if plan.problems:
        table = _table(tr("行", "Row"), tr("列", "Column"), tr("表头", "Header"), tr("问题", "Problem"))
        for p in plan.problems[:limit]:
            table.add_row(str(p.row), p.column, p.header, p.message)
        console.print(table)
        if len(plan.problems) > limit:
            console.print(tr(f"（只列出前 {limit} 个问题）", f"(first {limit} problems shown)"))
    if plan.duplicates:
        table = _table(tr("行", "Row"), tr("疑似重复", "Likely duplicate of"), tr("依据", "Evidence"))
        for d in plan.duplicates[:limit]:
            table.add_row(str(d.row), ", ".join(d.matches), d.evidence)
        console.print(table)


@command(template_app, "import")
def template_import(out: Annotated[Path, typer.Argument(help="输出文件 .xlsx / output file")],
                    store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Write the blank customer import template: one column per field, drop-downs, instructions.

    Example: crmsync template import 客户导入模板.xlsx
    """
    from .import_template import write_import_template

    enums = entity = None
    if store or _store_given():
        with open_store(store) as s:
            enums, entity = s.enums(), s.entity("customer")
    path = write_import_template(out, enums=enums, entity=entity, lang=i18n.lang())
    console.print(tr(f"已生成导入模板 {path}", f"Wrote the import template {path}"))


def _store_given() -> bool:
    from .cli import _defaults

    return bool(_defaults.get("store"))

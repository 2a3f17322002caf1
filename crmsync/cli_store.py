"""`crmsync` commands that move a whole store: migrate-store.  Registered at the end of cli.py."""

from __future__ import annotations

from typing import Annotated

import typer

from .cli import LangOpt, _table, app, command, console  # noqa: F401
from .i18n import tr


@command(app, "migrate-store")
def migrate_store(
        source: Annotated[str, typer.Option("--from", help="来源存储：文件路径或 URL / source store path or URL")],
        dest: Annotated[str, typer.Option("--to", help="目标存储：文件路径或 URL / destination store path or URL")],
        replace: Annotated[bool, typer.Option("--replace", help="目标已有数据时覆盖 / overwrite a destination that holds data")] = False,
        lang: LangOpt = None) -> None:
    """Move a whole store (every table, the history, the audit chain) to another backend, verified.

    The copy is checked before it commits: rows and a checksum per table, and the audit chain.
    The source is read in one snapshot and never changed.

    Example: crmsync migrate-store --from crm.db --to postgresql://crm@db.example/crm
    """
    from .migrate_store import move_store

    with console.status(tr("正在复制…", "Copying…")) as spinner:
        report = move_store(source, dest, replace=replace,
                            on_table=lambda name, rows: spinner.update(tr(f"已复制 {name}（{rows} 行）",
                                                                          f"Copied {name} ({rows} rows)")))
    table = _table(tr("表", "Table"), tr("来源行数", "Source rows"), tr("目标行数", "Copied rows"),
                   tr("校验和", "Checksum"))
    for t in report.tables:
        table.add_row(t.name, str(t.source_rows), str(t.dest_rows),
                      tr("一致", "match") if t.ok else tr("不一致", "DIFFERS"))
    console.print(table)
    console.print(tr(f"已将 {report.source} 迁移到 {report.dest}：{len(report.tables)} 张表，{report.rows} 行，"
                     f"审计记录 {report.audit_entries} 条，校验通过",
                     f"Moved {report.source} to {report.dest}: {len(report.tables)} tables, {report.rows} rows, "
                     f"{report.audit_entries} audit entries, verified"))
    if report.audit_problems:  # carried over faithfully, but the admin must hear about it
        console.print(tr(f"注意：来源的审计链本身有 {len(report.audit_problems)} 处问题（已原样复制）；"
                         "运行 crmsync audit verify 查看",
                         f"Note: the source's audit chain itself has {len(report.audit_problems)} problems "
                         "(copied as they are); run crmsync audit verify to see them"))

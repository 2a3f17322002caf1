"""`crmsync` commands: dedupe, merge, unmerge.  Registered by importing this module at the end of cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli import LangOpt, StoreOpt, UserOpt, _table, _user, app, command, console, open_store  # noqa: F401
from .i18n import tr


def _say(text: str) -> None:
    if console.is_terminal:
        console.print(f"[dim]{text}[/dim]")


@command(app, "dedupe")
def dedupe(
    file: Annotated[Optional[Path], typer.Option("--file", help="检查该文件内部的重复（不导入）/ find duplicates inside this file")] = None,
    sheet: Annotated[Optional[str], typer.Option("--sheet", help="工作表 / sheet")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="用该列的值标识行（默认行号）/ identify rows by this column")] = None,
    pairs_out: Annotated[Optional[Path], typer.Option("--pairs-out", help="把判定为重复的每一对写入 CSV / write every duplicate pair to this CSV")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="比较字段与分块键（JSON）/ compared fields and blocking keys (JSON)")] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=0.5, max=0.9999, help="匹配概率阈值 / match probability")] = 0.9,
    report: Annotated[Optional[Path], typer.Option("--report", help="中心库查重：审核工作簿 / the review workbook (store)")] = None,
    store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None,
) -> None:
    """查重：文件内部（--file）或整个中心库。Find duplicate customers in a file or in the store.

    Example: crmsync dedupe --file 客户.xlsx --id-column 编号 --pairs-out pairs.csv
    Example: crmsync dedupe --report 查重.xlsx   (then: crmsync merge 查重.xlsx)
    """
    from dataclasses import replace

    if file is not None:
        from .dedupe import find_duplicates
        from .dedupe_io import read_rows, write_pairs

        rows, ids, cfg = read_rows(file, sheet=sheet, config=config, id_column=id_column)
        result = find_duplicates(rows, replace(cfg, probability=threshold), progress=_say)
        table = _table(tr("甲", "A"), tr("乙", "B"), tr("匹配度", "Score"), tr("依据", "Evidence"))
        for m in sorted(result.pairs, key=lambda m: -m.score)[:20]:
            table.add_row(str(ids[m.a]), str(ids[m.b]), f"{m.score:.3f}", m.evidence)
        if result.pairs:
            console.print(table)
        if pairs_out is not None:
            write_pairs(pairs_out, result.pairs, ids)
        console.print(tr(f"{file.name}: {len(rows)} 行，{len(result.clusters)} 组重复，{len(result.pairs)} 对"
                         + (f"，已写入 {pairs_out}" if pairs_out else ""),
                         f"{file.name}: {len(rows)} rows, {len(result.clusters)} duplicate groups, {len(result.pairs)} pairs"
                         + (f", written to {pairs_out}" if pairs_out else "")))
        return
    from .merge import write_review

    with open_store(store) as s:
        s.user(_user(user))  # an unknown user is named before any work
        out, groups = write_review(s, report or Path(tr("查重.xlsx", "duplicates.xlsx")), probability=threshold,
                                   progress=_say)
    console.print(tr(f"找到 {groups} 组疑似重复客户，已写入 {out}；勾选后运行 crmsync merge {out}",
                     f"{groups} groups of likely duplicates written to {out}; tick them, then run crmsync merge {out}"))


@command(app, "merge")
def merge_cmd(
    review: Annotated[Path, typer.Argument(help="填好的查重工作簿 / the filled-in review workbook")],
    store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None,
) -> None:
    """按查重工作簿合并客户。Merge the customers ticked in a review workbook.

    Example: crmsync merge 查重.xlsx --user wang
    """
    from .merge import apply_review

    with open_store(store) as s:
        done, skipped = apply_review(s, review, user=_user(user))
    for m in done:
        console.print(tr(f"{m.merge_id}: {', '.join(m.merged)} 合并到 {m.survivor}（移动 {m.moved} 条关联记录）",
                         f"{m.merge_id}: {', '.join(m.merged)} merged into {m.survivor} ({m.moved} related records moved)"))
    for text in skipped:
        console.print(tr(f"跳过 {text}", f"skipped {text}"), markup=False)
    console.print(tr(f"完成 {len(done)} 次合并，跳过 {len(skipped)} 组；撤销：crmsync unmerge 合并编号",
                     f"{len(done)} merges done, {len(skipped)} groups skipped; undo with: crmsync unmerge MERGE_ID"))
    if skipped and not done:
        raise typer.Exit(1)


@command(app, "unmerge")
def unmerge_cmd(
    id: Annotated[str, typer.Argument(help="合并编号 M…，或保留/被合并客户的编号 / merge id, or a customer id")],
    store: StoreOpt = None, lang: LangOpt = None, user: UserOpt = None,
) -> None:
    """撤销一次合并，所有记录恢复原样。Undo a merge: every record as it was.

    Example: crmsync unmerge M202405210001 --user wang
    """
    from .merge import unmerge

    with open_store(store) as s:
        m = unmerge(s, id, user=_user(user))
    console.print(tr(f"已撤销 {m.merge_id}：{', '.join(m.merged)} 已恢复，{m.moved} 条关联记录已移回",
                     f"undid {m.merge_id}: {', '.join(m.merged)} restored, {m.moved} related records moved back"))

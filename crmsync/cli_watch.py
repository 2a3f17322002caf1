"""`crmsync` commands: watch FOLDER.  Registered by importing this module at the end of cli.py.

The work is in crmsync/watch.py; this module reads the options, opens the store, shows progress
and a summary per copy with rich, and turns Ctrl-C / SIGTERM into a clean stop.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .cli import LangOpt, StoreOpt, _defaults, _table, app, command, console
from .errors import InvalidInput
from .i18n import tr
from .xlsx_limits import shown

_STATUS = {"ingested": ("已读取", "ingested", "green"), "unreadable": ("无法读取", "unreadable", "red"),
           "failed": ("失败", "failed", "red"), "unmapped": ("未配置", "unmapped", "yellow")}


class ConsoleListener:
    """Shows the watcher's work: a progress bar per batch of saved copies, then one table row per copy."""

    def __init__(self):
        self.progress: Progress | None = None
        self.task = None

    def batch_started(self, relpaths: list[str]) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task = self.progress.add_task(tr("读取副本", "reading copies"), total=len(relpaths))
        self.progress.start()

    def copy_started(self, relpath: str, user: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"{shown(relpath)} ({user})")

    def copy_status(self, relpath: str, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=f"{shown(relpath)}: {text}"[:80])

    def copy_finished(self, outcome) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def batch_finished(self, outcomes: list) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if outcomes:
            console.print(outcome_table(outcomes))
        for o in outcomes:  # why rows were refused or conflicted, so the admin can tell the rep
            for line in o.details:
                console.print(f"  {_escape(shown(o.relpath))}: {_escape(line)}")

    def note(self, text: str) -> None:
        console.print(f"[yellow]{_escape(text)}[/yellow]")


def outcome_table(outcomes: list):
    """One row per copy: file, user, result, applied / new / deleted / conflicts / refused, message."""
    table = _table(tr("副本", "Copy"), tr("用户", "User"), tr("结果", "Result"), tr("已应用", "Applied"),
                   tr("新建", "New"), tr("删除", "Deleted"), tr("冲突", "Conflicts"), tr("拒绝", "Refused"),
                   tr("耗时", "Time"), tr("说明", "Message"))
    for o in outcomes:
        zh, en, colour = _STATUS.get(o.status, (o.status, o.status, "white"))
        result = f"[{colour}]{tr(zh, en)}[/{colour}]"
        if o.ok and o.held_open:
            result += tr("（Excel 打开中，未写回）", " (open in Excel, not written back)")
        counts = [str(n) for n in (o.applied, o.created, o.deleted, o.conflicts, o.refused)] if o.ok else [""] * 5
        table.add_row(shown(o.relpath), o.user or "", result, *counts, f"{o.seconds:.2f}s",
                      "" if o.ok else o.message)
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@command(app, "watch")
def watch(folder: Annotated[Path, typer.Argument(help="被监视的文件夹 / the folder holding the team's copies")],
          config: Annotated[Optional[Path], typer.Option(
              "--config", help="监视配置（默认 文件夹/crmsync-watch.toml）/ the configuration file")] = None,
          once: Annotated[bool, typer.Option(
              "--once", help="补读上次以来改动的副本后退出（适合定时任务）/ catch up and exit (cron)")] = False,
          init: Annotated[bool, typer.Option(
              "--init", help="生成一份配置模板，列出文件夹中的工作簿 / write a starting configuration")] = False,
          status: Annotated[bool, typer.Option(
              "--status", help="显示每个副本上次读取的情况与待处理的文件 / show what was ingested and what is set aside")] = False,
          write_back: Annotated[Optional[bool], typer.Option(
              "--write-back/--no-write-back",
              help="把新编号与版本写回未被 Excel 打开的副本（默认取配置）/ write back into copies Excel does not hold open")] = None,
          poll: Annotated[bool, typer.Option(
              "--poll", help="轮询文件夹（网络共享盘上用）/ poll instead of OS events (network shares)")] = False,
          store: StoreOpt = None, lang: LangOpt = None) -> None:
    """Watch FOLDER and sync each workbook copy saved into it as the user the configuration maps it to.

    Files and sub-folders are mapped to users in crmsync-watch.toml (crmsync watch FOLDER --init
    writes one to fill in).  Each saved copy is read once it is complete; a file that cannot be
    read is reported and tried again when it changes.  Ctrl-C stops after the copy in hand.

    Example: crmsync watch ./team --store crm.db
    """
    from .watch import Watcher
    from .watch_config import check_users, config_path, load_config, others_can_write, sample_config

    if not folder.is_dir():
        raise InvalidInput(tr(f"文件夹 {shown(str(folder))} 不存在", f"folder {shown(str(folder))} does not exist"))
    cfg_path = config_path(folder, config)
    if init:
        if cfg_path.exists():
            raise InvalidInput(tr(f"{shown(str(cfg_path))} 已存在，未改动", f"{shown(str(cfg_path))} exists already; left as it is"))
        cfg_path.write_text(sample_config(folder), encoding="utf-8")
        cfg_path.chmod(0o644)  # only its owner may change who each copy is synced as
        console.print(tr(f"已写入 {cfg_path}：为每个副本填写用户后运行 crmsync watch {folder}",
                         f"Wrote {cfg_path}: fill in each copy's user, then run crmsync watch {folder}"))
        why = others_can_write(cfg_path)
        if why:
            console.print(tr(f"[yellow]注意：{why}；监视将拒绝这份配置。请把它移到只有管理员能写的地方，用 --config 指定[/]",
                             f"[yellow]Note: {why}; the watcher will refuse this configuration. Move it where only "
                             f"the admin can write and pass --config[/]"))
        return
    cfg = load_config(cfg_path)
    if status:
        _show_status(cfg)
        return
    location = store or _defaults["store"] or cfg.store
    from . import engine
    from .cli import open_store
    from .watch import WATCH_SQLITE_CACHE_KIB

    bulk_cache, engine.SQLITE_CACHE_KIB = engine.SQLITE_CACHE_KIB, WATCH_SQLITE_CACHE_KIB  # for months
    try:
        with open_store(location) as s:
            check_users(cfg, s)
            watcher = Watcher(s, folder, cfg, listener=ConsoleListener(), poll=poll, write_back=write_back)
            if not once:
                console.print(tr(f"正在监视 {folder}（配置 {cfg_path.name}，日志 {cfg.log_path}）；按 Ctrl-C 停止",
                                 f"Watching {folder} (configuration {cfg_path.name}, log {cfg.log_path}); Ctrl-C stops"))
            _run_until_signal(watcher, watcher.run_once if once else watcher.run)
    finally:
        engine.SQLITE_CACHE_KIB = bulk_cache
    ingested = watcher.ingested_total
    problems = watcher.state.problems
    stopped = not once or watcher.stop_requested
    console.print(tr(f"{'已停止。' if stopped else ''}本次读取 {ingested} 个副本；{len(problems)} 个文件待处理",
                     f"{'Stopped. ' if stopped else ''}Ingested {ingested} copies; {len(problems)} set aside"))
    for rel, entry in sorted(problems.items()):
        console.print(f"[red]{_escape(shown(rel))}[/red]: {_escape(entry.get('message', ''))}")
    if once and problems:
        raise typer.Exit(1)


def _run_until_signal(watcher, run) -> None:
    """Run the watcher; the first Ctrl-C or SIGTERM asks it to stop after the copy in hand, a
    second Ctrl-C interrupts at once (the store transaction in flight rolls back)."""

    def on_signal(signum, _frame):
        console.print(tr("正在停止…", "Stopping…"))
        watcher.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run()
    except KeyboardInterrupt:
        console.print(tr("已中断", "Interrupted"))
        raise typer.Exit(130)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _show_status(cfg) -> None:
    from .watch import WatchState

    state = WatchState(cfg.state_path)
    table = _table(tr("副本", "Copy"), tr("用户", "User"), tr("上次读取", "Last ingested"), tr("次数", "Times"),
                   tr("已应用", "Applied"), tr("新建", "New"), tr("冲突", "Conflicts"), tr("拒绝", "Refused"),
                   tr("待写回", "Write-back waiting"))
    for rel, e in sorted(state.copies.items()):
        r = e.get("result", {})
        table.add_row(shown(rel), e.get("user", ""), e.get("at", ""), str(e.get("ingested", 0)),
                      *(str(r.get(k, 0)) for k in ("applied", "created", "conflicts", "refused")),
                      tr("是", "yes") if e.get("write_back_pending") else "")
    console.print(table)
    for rel, e in sorted(state.problems.items()):
        console.print(f"[red]{_escape(shown(rel))}[/red] ({e.get('at', '')}): {_escape(e.get('message', ''))}")
    for rel in sorted(state.unmapped):
        console.print(f"[yellow]{_escape(shown(rel))}[/yellow]: " + tr("未配置用户，已忽略", "no user configured; ignored"))
    if not state.copies and not state.problems:
        console.print(tr("尚未读取任何副本", "no copy ingested yet"))

"""The folder watcher: ingest each workbook copy saved into a folder, once per change.

    cfg = load_config(folder / "crmsync-watch.toml")
    watcher = Watcher(store, folder, cfg, listener=my_listener)
    watcher.run_once()          # catch up on what changed since the last run, then return
    watcher.run()               # catch up, then follow file events until watcher.stop()

How a file gets ingested:

1. A file event (watchdog) or the catch-up scan at start names a file.  Excel's lock and temporary
   files (``~$…``, ``.tmp``, the 8-hex-digit names it saves through) and unmapped files are never
   read; an unmapped workbook is reported once per version.
2. The file must keep its size and modification time for ``settle_seconds`` (a copy still being
   written keeps changing), then pass ``xlsx_safety.check_package``.  A file that fails the check
   is given ``grace`` more seconds to be completed before it is reported.
3. Its content hash is compared with the one last ingested (the state file): a file only touched,
   or written back by the watcher itself, is not ingested again.
4. ``ingest_copy`` syncs it as the mapped user, with the mapped copy id (never anything the file
   says about itself); it writes the file back only when the configuration asks for it and no
   lock file says Excel holds it open; otherwise the write-back waits until the lock goes away.
   Files are ingested one at a time, so work on one file is never interleaved with itself, and
   the store sees one writer.
5. A file that cannot be read (corrupt, truncated, encrypted, not a workbook) or that fails is
   reported (listener, log, state) and tried again when it changes.

What was last ingested from each copy is kept in a JSON file beside the configuration
(``crmsync-watch.state.json``, see watch_state.py for why not in the store).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from . import clock
from .errors import CrmsyncError, InvalidFile, InvalidInput, StoreError
from .i18n import tr
from .watch_config import CopyMapping, WatchConfig, find_workbooks, is_held_open, locked_target
from .watch_state import WatchState, file_digest
from .xlsx_limits import shown
from .xlsx_safety import check_package

__all__ = ["CopyOutcome", "WatchListener", "WatchState", "Watcher", "file_digest"]

RETRY_SECONDS = 30.0  # a copy that failed because the store was unreachable is tried again after this
_DETAILS = 20  # refusals and conflicts kept per outcome for the console (all are in the store)


@dataclass
class CopyOutcome:
    """What the watcher did with one version of one file.

    ``status``: "ingested", "unreadable" (InvalidFile: put aside until it changes), "failed"
    (another error: likewise, but a store that could not be reached is tried again after
    RETRY_SECONDS), "unmapped" (no user for it in the configuration).
    """

    relpath: str
    status: str
    user: str | None = None
    copy_id: str | None = None
    applied: int = 0
    created: int = 0
    deleted: int = 0
    conflicts: int = 0
    refused: int = 0
    message: str = ""
    seconds: float = 0.0
    wrote_back: bool = False
    held_open: bool = False
    details: list[str] = field(default_factory=list)  # "sheet row N: why", for refusals and conflicts

    @property
    def ok(self) -> bool:
        return self.status == "ingested"


class WatchListener:
    """Receives what the watcher does (the CLI shows it with rich); every method is optional."""

    def batch_started(self, relpaths: list[str]) -> None: ...
    def copy_started(self, relpath: str, user: str) -> None: ...
    def copy_status(self, relpath: str, text: str) -> None: ...
    def copy_finished(self, outcome: CopyOutcome) -> None: ...
    def batch_finished(self, outcomes: list[CopyOutcome]) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass
class _Pending:
    """A file named by an event or the scan, waiting to be stable."""

    sig: tuple[int, int] | None = None
    since: float = 0.0  # monotonic time since which the file has had ``sig``
    check_after: float = 0.0  # a file that failed the package check is looked at again from then
    force: bool = False  # ingest even if unchanged (a write-back that waited for Excel)
    first_look: bool = True


def _signature(st: os.stat_result) -> tuple[int, int]:
    return (st.st_size, st.st_mtime_ns)


def _default_ingest(*args, **kwargs):
    from .sync_copy import ingest_copy  # imported when first needed: the sync engine is heavy

    return ingest_copy(*args, **kwargs)


#: How many recent outcomes a watcher keeps for its caller (totals are counted, not kept).
KEEP_OUTCOMES = 1_000
#: The page cache of each SQLite connection of a running watcher (KiB), instead of the 64 MB bulk
#: writes want: it runs for months while the store grows, and a copy's sync touches few pages, so
#: its memory is bounded by this, not by the size of the store (bench/RESULTS.md, soak).
WATCH_SQLITE_CACHE_KIB = 8 * 1024


class Watcher:
    """Ingests the copies in ``folder`` that ``config`` maps to users, once per change.

    :param ingest: the sync function, ``ingest(store, path, user, *, copy_id, write_back,
        on_status)`` returning a SyncResult; default ``crmsync.sync_copy.ingest_copy``.
    :param grace: seconds a stable file that fails the package check gets to be completed
        before it is reported (default: settle + 1.5 s).
    :param poll: follow the folder by polling instead of OS events (network shares, where the
        OS does not report other machines' writes).
    """

    def __init__(self, store, folder: str | Path, config: WatchConfig, *, ingest: Callable[..., Any] | None = None,
                 listener: WatchListener | None = None, grace: float | None = None, tick: float = 0.1,
                 poll: bool = False, write_back: bool | None = None):
        self.store = store
        self.folder = Path(folder).resolve()
        self.config = config
        self.ingest = ingest or _default_ingest
        self.listener = listener or WatchListener()
        self.settle = config.settle_seconds
        self._grace = grace
        self.tick = tick
        self.poll = poll
        self._write_back_given = write_back
        self.write_back = config.write_back if write_back is None else write_back
        self._config_file = config.path.resolve()
        self.state = WatchState(config.state_path)
        # The most recent outcomes only (a watcher runs for months: memory must stay flat); the
        # totals are counted.
        self.outcomes: list[CopyOutcome] = []
        self.ingested_total = 0
        self._once_outcomes: list[CopyOutcome] | None = None
        self._pending: dict[str, _Pending] = {}
        self._touched: set[tuple[str, bool]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._log_fp = None
        self._held = None
        self._once = False
        if self.state.damaged:
            self._log("STATE", "-", tr("状态文件损坏，已重新开始：每个副本会再读取一次",
                                      "state file was damaged and is started afresh: each copy is read once more"))

    # ---- running ----------------------------------------------------------------------------------

    def run_once(self) -> list[CopyOutcome]:
        """Catch up on every mapped copy changed since its last ingestion; return what was done.

        Waits for files still being written to settle (and gives a file failing the package
        check ``grace`` seconds); returns early when ``stop()`` is called.
        """
        self._once_outcomes = []
        self._once = True
        self._hold_folder()
        self._log("START", str(self.folder), "once")
        try:
            self.catch_up()
            while self._pending and not self._stop.is_set():
                self._step()
                if self._pending:
                    self._wake.wait(self._next_wait())
                    self._wake.clear()
        finally:
            self._finish()
        done, self._once_outcomes = self._once_outcomes, None
        return done

    def run(self) -> None:
        """Catch up, then ingest copies as they are saved, until ``stop()`` is called.

        The current copy is finished before returning; nothing is left half-done.
        """
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        self._hold_folder()
        observer = PollingObserver(timeout=1) if self.poll else Observer()
        observer.schedule(_Handler(self), str(self.folder), recursive=True)
        observer.start()  # before the scan, so nothing saved meanwhile is missed
        self._log("START", str(self.folder), "poll" if self.poll else "events")
        try:
            self.catch_up()
            while not self._stop.is_set():
                self._step()
                self._wake.wait(self._next_wait())
                self._wake.clear()
        finally:
            observer.stop()
            observer.join(timeout=5)
            self._finish()

    @property
    def grace(self) -> float:
        return self.settle + 1.5 if self._grace is None else self._grace

    def stop(self) -> None:
        """Ask ``run``/``run_once`` to return after the copy in hand (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def catch_up(self) -> None:
        """Queue every workbook in the folder; those unchanged since their last ingestion are
        skipped by size and time, the rest read when stable."""
        for rel in find_workbooks(self.folder, self.config):
            self._pend(rel)
        for rel, entry in self.state.copies.items():
            if entry.get("write_back_pending") and not is_held_open(self.folder / rel):
                self._pend(rel, force=True)  # Excel let go of it while we were stopped

    # ---- events -----------------------------------------------------------------------------------

    def touch(self, path: str | Path, is_directory: bool = False) -> None:
        """Note that something happened at ``path`` (called from the observer's thread)."""
        with self._lock:
            self._touched.add((os.fsdecode(path), is_directory))
        self._wake.set()

    def _drain_touched(self) -> None:
        with self._lock:
            touched, self._touched = self._touched, set()
        for raw, is_dir in sorted(touched):
            path = Path(raw)
            if path == self._config_file and not is_dir:
                if path.exists():  # an editor replacing the file: the event of the new one follows
                    self._reload_config()
                continue
            rel = self._relpath(path)
            if rel is None:
                continue
            if is_dir:
                if path.is_dir():  # a folder moved in or created: its workbooks are news
                    for sub in find_workbooks(path, self.config):
                        self._pend(f"{rel}/{sub}" if rel != "." else sub)
            elif path.name.startswith(("~$", ".~lock.")):
                if not path.exists():  # Excel let go of a file: a write-back it was waiting for can run
                    for target in locked_target(path):
                        trel = self._relpath(target)
                        if trel and self.state.copies.get(trel, {}).get("write_back_pending"):
                            self._pend(trel, force=True)
            elif self.config.is_workbook_name(path.name):
                self._pend(rel)

    def _reload_config(self) -> None:
        """The admin edited the configuration: use it from now on (a broken edit keeps the old one).

        Its state and log files stay where they are until a restart.
        """
        from .watch_config import check_users, load_config

        try:
            cfg = load_config(self.config.path)
            if self.store is not None:
                check_users(cfg, self.store)
        except CrmsyncError as exc:
            text = tr(f"配置未生效，仍按原配置运行：{exc}", f"configuration not applied, the previous one stays: {exc}")
            self._log("CONFIG", self.config.path.name, text)
            self.listener.note(text)
            return
        cfg.state_path, cfg.log_path = self.config.state_path, self.config.log_path
        if (cfg.files, cfg.folders, cfg.patterns, cfg.settle_seconds, cfg.write_back) == (
                self.config.files, self.config.folders, self.config.patterns, self.config.settle_seconds,
                self.config.write_back):
            return  # saved without a change
        self.config = cfg
        self.settle = cfg.settle_seconds
        if self._write_back_given is None:
            self.write_back = cfg.write_back
        self.state.unmapped.clear()  # report what is still unmapped under the new map
        text = tr(f"已重新读取配置 {cfg.path.name}", f"configuration {cfg.path.name} reloaded")
        self._log("CONFIG", cfg.path.name, text)
        self.listener.note(text)
        self.catch_up()  # files the new map gives a user are read now

    def _relpath(self, path: Path) -> str | None:
        """The path relative to the folder, or None for paths outside it or in hidden folders."""
        try:
            rel = path.relative_to(self.folder)
        except ValueError:
            return None
        if any(part.startswith(".") for part in rel.parts[:-1]):
            return None
        return rel.as_posix()

    def _pend(self, rel: str, force: bool = False) -> None:
        entry = self._pending.get(rel)
        if entry is None:
            self._pending[rel] = _Pending(force=force, since=time.monotonic())
        else:
            entry.force |= force

    # ---- deciding what is ready -------------------------------------------------------------------

    def _step(self) -> None:
        """Take in new events, then ingest every file that is ready, oldest first."""
        self._drain_touched()
        ready = self._ready()
        if not ready:
            return
        self.listener.batch_started(ready)
        done = []
        for rel in ready:
            if self._stop.is_set():
                break
            outcome = self._process(rel)
            if outcome is not None:
                done.append(outcome)
        self.listener.batch_finished(done)

    def _ready(self) -> list[str]:
        now = time.monotonic()
        ready = []
        for rel in list(self._pending):
            p = self._pending[rel]
            path = self.folder / rel
            try:
                st = path.stat()
            except FileNotFoundError:  # deleted, or renamed away while Excel saves: a later event brings it back
                del self._pending[rel]
                continue
            except OSError:
                continue
            sig = _signature(st)
            if sig != p.sig:
                p.sig, p.since, p.check_after = sig, now, 0.0
                age = time.time() - st.st_mtime
                if p.first_look and age >= self.settle:  # untouched for long enough already (the catch-up scan)
                    p.since = now - min(age, self.grace)
                p.first_look = False
            if now - p.since < self.settle or now < p.check_after:
                continue
            mapping = self.config.resolve(rel)
            if mapping is None:
                del self._pending[rel]
                self._report_unmapped(rel, sig)
                continue
            known = self.state.copies.get(rel)
            problem = self.state.problems.get(rel)
            if problem and problem.get("retry"):
                problem = None  # failed for the store's sake, not the file's: try it again
            if not p.force and ((known and _same_sig(known, sig)) or (problem and _same_sig(problem, sig))):
                del self._pending[rel]  # unchanged since it was ingested (or set aside)
                continue
            if p.force and known and _same_sig(known, sig) and is_held_open(path):
                del self._pending[rel]  # its write-back waits for Excel again
                continue
            ready.append(rel)
        ready.sort(key=lambda r: self._pending[r].since)
        return ready

    def _next_wait(self) -> float:
        """How long to sleep before something pending may be ready (a new event wakes us sooner)."""
        if not self._pending:
            return 1.0
        now = time.monotonic()
        due = min(max(p.since + self.settle, p.check_after) for p in self._pending.values())
        return min(max(due - now, 0.01), self.tick)

    # ---- ingesting one file -------------------------------------------------------------------------

    def _process(self, rel: str) -> CopyOutcome | None:
        p = self._pending[rel]
        path = self.folder / rel
        mapping = self.config.resolve(rel)
        try:
            sig = _signature(path.stat())
            digest = file_digest(path)
        except FileNotFoundError:
            del self._pending[rel]
            return None
        except OSError:  # e.g. Windows: Excel holds it locked while saving; try again shortly
            p.check_after = time.monotonic() + max(self.settle, 0.5)
            return None
        if sig != p.sig:
            return None  # changed since it looked stable: wait again
        known = self.state.copies.get(rel)
        problem = self.state.problems.get(rel)
        if not p.force and known and known.get("hash") == digest:
            known.update(size=sig[0], mtime_ns=sig[1])  # only touched (or our own write-back)
            del self._pending[rel]
            self.state.save()
            return None
        if problem and problem.get("hash") == digest and not problem.get("retry"):
            problem.update(size=sig[0], mtime_ns=sig[1])
            del self._pending[rel]
            self.state.save()
            return None
        unreadable = None
        try:
            check_package(path)
        except InvalidFile as exc:
            if time.monotonic() - p.since < self.grace:
                p.check_after = p.since + self.grace  # perhaps still being written: give it time
                return None
            unreadable = exc
        except OSError:
            p.check_after = time.monotonic() + self.settle  # e.g. locked for a moment on a share
            return None
        outcome = self._ingest(rel, path, mapping, sig, digest, unreadable)
        try:
            after = _signature(path.stat())
        except OSError:
            after = None
        if outcome.wrote_back and after is not None and after != sig:
            self.state.copies[rel].update(size=after[0], mtime_ns=after[1], hash=file_digest(path))
            after = sig
        if outcome.status == "failed" and self.state.problems.get(rel, {}).get("retry") and not self._once:
            p.check_after = time.monotonic() + RETRY_SECONDS  # the store may be back by then
        elif after == sig or after is None:
            del self._pending[rel]
        else:  # saved again while it was being ingested: look at it again once it settles
            p.sig, p.since, p.force, p.first_look = None, time.monotonic(), False, False
        self.state.save()
        self._record(outcome)
        self.listener.copy_finished(outcome)
        return outcome

    def _ingest(self, rel: str, path: Path, mapping: CopyMapping, sig: tuple[int, int], digest: str,
                unreadable: InvalidFile | None) -> CopyOutcome:
        held = is_held_open(path)
        write_back = self.write_back and not held
        copy_id = mapping.copy_id or str(path.resolve())
        outcome = CopyOutcome(rel, "ingested", mapping.user, copy_id, held_open=held)
        self.listener.copy_started(rel, mapping.user)
        started = time.perf_counter()
        retry = False
        try:
            if unreadable is not None:
                raise unreadable  # failed the package check and stayed so: not handed to the sync
            result = self.ingest(self.store, path, mapping.user, copy_id=copy_id, write_back=write_back,
                                 on_status=lambda text: self.listener.copy_status(rel, text))
        except InvalidFile as exc:
            outcome.status, outcome.message = "unreadable", str(exc)
        except (StoreError, DBAPIError) as exc:  # the store, not the copy: tried again
            outcome.status, outcome.message, retry = "failed", str(exc).splitlines()[0], True
        except CrmsyncError as exc:
            outcome.status, outcome.message = "failed", str(exc)
        except Exception as exc:  # one bad copy must not stop the watcher: log it whole, report one line
            outcome.status, outcome.message = "failed", f"{type(exc).__name__}: {exc}"
            self._log("TRACEBACK", rel, traceback.format_exc().replace("\n", "\n    "))
        else:
            for key in ("applied", "created", "deleted", "conflicts", "refused"):
                setattr(outcome, key, int(getattr(result, key, 0) or 0))
            outcome.message = str(getattr(result, "message", "") or "")
            for sheet, row, text in list(getattr(result, "details", None) or [])[:_DETAILS]:
                outcome.details.append(tr(f"{sheet} 第 {row} 行：{text}", f"{sheet} row {row}: {text}"))
            outcome.wrote_back = write_back
        outcome.seconds = time.perf_counter() - started
        signature = {"size": sig[0], "mtime_ns": sig[1], "hash": digest, "user": mapping.user,
                     "copy_id": copy_id, "at": clock.now_text()}
        if outcome.ok:
            previous = self.state.copies.get(rel, {})
            self.state.copies[rel] = {**signature, "ingested": previous.get("ingested", 0) + 1,
                                      "write_back_pending": self.write_back and held,
                                      "result": {k: getattr(outcome, k) for k in
                                                 ("applied", "created", "deleted", "conflicts", "refused")},
                                      "message": outcome.message}
            self.state.problems.pop(rel, None)
            extra = tr("；Excel 正打开此文件，稍后写回", "; Excel holds it open, written back later") \
                if self.write_back and held else ""
            self._log("INGESTED", rel, f"user={mapping.user} applied={outcome.applied} new={outcome.created} "
                      f"deleted={outcome.deleted} conflicts={outcome.conflicts} refused={outcome.refused} "
                      f"write_back={'yes' if write_back else 'no'} {outcome.seconds:.2f}s {outcome.message}{extra}")
        else:
            self.state.problems[rel] = {**signature, "status": outcome.status, "message": outcome.message,
                                        "retry": retry}
            self._log("UNREADABLE" if outcome.status == "unreadable" else "FAILED", rel,
                      f"user={mapping.user} {outcome.message} — " +
                      (tr("中心库不可用，稍后重试", "the store is unavailable; retried later") if retry else
                       tr("已搁置，文件改动后重试", "set aside; retried when the file changes")))
        return outcome

    def _report_unmapped(self, rel: str, sig: tuple[int, int]) -> None:
        if self.state.unmapped.get(rel) == list(sig):
            return  # reported already, this version
        self.state.unmapped[rel] = list(sig)
        self.state.save()
        text = tr(f"{shown(rel)}：监视配置中没有它的用户，已忽略（在 [files] 或 [folders] 中添加）",
                  f"{shown(rel)}: no user for it in the watch configuration; ignored (add it under [files] or [folders])")
        self._log("UNMAPPED", rel, text)
        outcome = CopyOutcome(rel, "unmapped", message=text)
        self._record(outcome)
        self.listener.note(text)

    # ---- the log ----------------------------------------------------------------------------------

    def _log(self, kind: str, rel: str, text: str) -> None:
        """Append one line to the log file: time, what, which file, details."""
        path = self.config.log_path
        if path is None:
            return
        if self._log_fp is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log_fp = open(path, "a", encoding="utf-8", buffering=1)
        self._log_fp.write(f"{clock.now_text()} {kind} {shown(rel)} {text}\n")

    def _record(self, outcome: CopyOutcome) -> None:
        self.outcomes.append(outcome)
        if len(self.outcomes) > 2 * KEEP_OUTCOMES:
            del self.outcomes[:-KEEP_OUTCOMES]
        if outcome.ok:
            self.ingested_total += 1
        if self._once_outcomes is not None:
            self._once_outcomes.append(outcome)

    def _finish(self) -> None:
        self.state.save()
        self._log("STOP", str(self.folder), f"ingested={self.ingested_total} problems={len(self.state.problems)}")
        if self._log_fp is not None:
            self._log_fp.close()
            self._log_fp = None
        if self._held is not None:
            self._held.close()  # the OS lock goes with the file handle (and with the process, if it dies)
            self._held = None

    def _hold_folder(self) -> None:
        """Take the lock beside the state file, so a second watcher of the same configuration refuses
        to start instead of racing this one for the same copies; InvalidInput if it is taken."""
        if self.config.state_path is None or self._held is not None:
            return
        path = self.config.state_path.with_name(self.config.state_path.name + ".lock")
        fp = open(path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                fp.seek(0)
                msvcrt.locking(fp.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fp.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fp.seek(0)
            other = fp.read().strip() or "?"
            fp.close()
            raise InvalidInput(tr(f"另一个监视进程（pid {other}）正在使用 {shown(self.config.path.name)}；请先停止它",
                                  f"another watcher (pid {other}) is using {shown(self.config.path.name)}; "
                                  f"stop it first")) from None
        fp.seek(0)
        fp.truncate()
        fp.write(str(os.getpid()))
        fp.flush()
        self._held = fp


def _same_sig(entry: dict, sig: tuple[int, int]) -> bool:
    return (entry.get("size"), entry.get("mtime_ns")) == sig


class _Handler:
    """watchdog's handler: every event becomes a ``touch`` (work happens in the watcher's loop)."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def dispatch(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.watcher.touch(event.src_path, event.is_directory)
        dest = getattr(event, "dest_path", "")
        if dest:
            self.watcher.touch(dest, event.is_directory)


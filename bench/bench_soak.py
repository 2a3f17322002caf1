"""Soak benchmark: many checked-out copies in a watched folder saved in bursts, with an import
and a report loop running alongside, for a long time (issue #8, item 5).

What runs, all real and in separate processes:
- ``crmsync watch FOLDER`` over COPIES personal copies (one rep each, checked out into the folder);
- this process saves a random BURST of the copies every EVERY seconds, as Excel does (the edited
  file is renamed over the copy): each saved copy gets one new customer typed in and its own
  customer's 备注 changed;
- ``crmsync import FILE.csv`` of IMPORT_ROWS new customers every IMPORT_EVERY seconds;
- ``crmsync report KIND`` run again and again (as a manager and as admin, cycling REPORT_KINDS).

Printed: the watcher's resident memory (psutil if installed, else /proc/PID/status VmRSS) at the
start, every few minutes and at the end; then changes applied, new records, conflicts, refused,
failures; and the exactly-once check (every typed customer once, every last 备注 in the store,
every imported row once), lock errors seen by any process, and the audit chain verification.

Run: .venv/bin/python bench/bench_soak.py [--minutes 60] [--copies 200] [--burst 40] [--every 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from crmsync import clock
from crmsync.book_file import FileBook
from crmsync.store import Store
from crmsync.sync_copy import checkout
from crmsync.watch import file_digest

ROOT = Path(__file__).resolve().parents[1]
LOCKED = re.compile(r"database is locked|database is busy|locked", re.I)
TEAMS = 10
REPORT_KINDS = ("funnel", "all", "distribution", "quality")  # the report loop cycles through these


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (psutil when installed, else Linux's /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def crmsync_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CRMSYNC_LANG", "CRMSYNC_STORE", "CRMSYNC_USER", "XLWINGS_LICENSE_KEY")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def crmsync(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "crmsync", *map(str, args)], cwd=ROOT, env=crmsync_env(),
                            **popen)


def rep_name(i: int) -> str:
    return f"rep{i:03d}"


# ---- the team: a store, its reps, one copy each in the watched folder --------------------------

def make_team(workdir: Path, copies: int, *, progress=print) -> tuple[Path, Path, dict[str, str]]:
    """Create the store (one rep and one customer per copy) and check every copy out into the
    folder; return (store path, folder, {relpath: the rep's own customer id})."""
    db, folder = workdir / "crm.db", workdir / "team"
    folder.mkdir(parents=True)
    store = Store(db, create=True)
    store.add_user("boss", "manager", "t0")
    own: dict[str, str] = {}
    for i in range(copies):
        store.add_user(rep_name(i), "rep", f"t{i % TEAMS}")
    with store.transaction("admin", "bench") as tx:
        for i in range(copies):
            c = tx.create("customer", {"customer_name": f"{rep_name(i)}的老客户有限公司", "mobile": f"139{i:08d}",
                                       "contact_name": "张三", "customer_type": "企业客户", "status": "潜在客户",
                                       "owner": rep_name(i)})
            own[f"{rep_name(i)}.xlsm"] = c["customer_id"]
    started = time.perf_counter()
    for i in range(copies):
        checkout(store, rep_name(i), folder / f"{rep_name(i)}.xlsm")
        if progress and (i + 1) % 50 == 0:
            progress(f"  checked out {i + 1}/{copies} copies ({time.perf_counter() - started:.0f}s)")
    store.close()
    lines = ["settle_seconds = 0.5", "write_back = false", "[files]"]
    lines += [f'"{rep_name(i)}.xlsm" = "{rep_name(i)}"' for i in range(copies)]
    (folder / "crmsync-watch.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "crmsync-watch.toml").chmod(0o644)  # the watcher refuses a map others can write
    return db, folder, own


# ---- the people: saving copies in bursts -------------------------------------------------------

@dataclass
class Edits:
    """What the reps typed: the exactly-once check compares the store with this."""

    new_names: list[str] = field(default_factory=list)
    last_remark: dict[str, str] = field(default_factory=dict)  # customer id -> the last 备注 saved
    saves: int = 0
    bursts: int = 0


def edit_copy(path: Path, customer_id: str, name: str, mobile: str, remark: str) -> None:
    """Type one new customer into the next empty row and change the own customer's 备注; save."""
    with FileBook(path) as book:
        table = book.read_table("客户")
        id_col = table.column("客户编号") - 1
        row = max(table.row_numbers, default=1) + 1
        cells = {(row, table.column(label)): v for label, v in
                 {"客户名称": name, "客户类型": "企业客户", "客户状态": "潜在客户", "联系人": "王五",
                  "手机号": mobile}.items()}
        for number, values in zip(table.row_numbers, table.rows):
            if values[id_col] == customer_id:
                cells[(number, table.column("备注"))] = remark
        book.write_cells("客户", cells)
        book.save()


def save_burst(folder: Path, staging: Path, own: dict[str, str], rels: list[str], edits: Edits) -> None:
    """Edit each copy aside, then rename them all over their copies at once: one burst of saves."""
    ready = []
    n = edits.bursts
    for rel in rels:
        k = len(edits.new_names)
        name, mobile, remark = f"压测{rel[:-5]}新客户{k:06d}有限公司", f"135{k:08d}", f"第{n}批修改 {rel}"
        temp = staging / rel
        shutil.copyfile(folder / rel, temp)
        edit_copy(temp, own[rel], name, mobile, remark)
        ready.append((temp, folder / rel))
        edits.new_names.append(name)
        edits.last_remark[own[rel]] = remark
    for temp, target in ready:
        os.replace(temp, target)
    edits.saves += len(rels)
    edits.bursts += 1


# ---- the other processes: an import loop and a report loop -------------------------------------

@dataclass
class Loop:
    """Runs of one command: exit codes and any lock message seen."""

    runs: int = 0
    failures: list[str] = field(default_factory=list)
    lock_messages: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def record(self, what: str, proc: subprocess.CompletedProcess, seconds: float) -> None:
        self.runs += 1
        self.seconds.append(seconds)
        text = (proc.stdout or b"").decode(errors="replace") + (proc.stderr or b"").decode(errors="replace")
        if LOCKED.search(text):
            self.lock_messages.append(f"{what}: {text.strip()[-300:]}")
        if proc.returncode != 0:
            self.failures.append(f"{what}: exit {proc.returncode}: {text.strip()[-300:]}")


def import_file(workdir: Path, batch: int, rows: int) -> Path:
    path = workdir / f"导入{batch:04d}.csv"
    lines = ["客户名称,手机号,联系人,客户类型,客户状态"] + [
        f"压测导入{batch:04d}批{i:05d}有限公司,136{batch:04d}{i:04d},张三,企业客户,潜在客户" for i in range(rows)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def run_loop(what, make_args, stop: threading.Event, loop: Loop, pause: float) -> None:
    """Run `crmsync ARGS` again and again until stop is set (each run to its end)."""
    n = 0
    while not stop.is_set():
        args = make_args(n)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "crmsync", *map(str, args)], cwd=ROOT, env=crmsync_env(),
                              capture_output=True, timeout=900)
        loop.record(f"{what} #{n}", proc, time.perf_counter() - t)
        n += 1
        stop.wait(pause)


# ---- waiting for the watcher -------------------------------------------------------------------

def watcher_state(folder: Path) -> dict:
    try:
        return json.loads((folder / "crmsync-watch.state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # being rewritten at this instant: look again


def caught_up(folder: Path, rels) -> bool:
    """True when the watcher has ingested the current content of every copy."""
    copies = watcher_state(folder).get("copies", {})
    return all(copies.get(rel, {}).get("hash") == file_digest(folder / rel) for rel in rels)


def wait_caught_up(folder: Path, rels, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if caught_up(folder, rels):
            return True
        time.sleep(0.5)
    return False


def log_totals(folder: Path) -> dict:
    """Sum the watcher log's INGESTED counts; count its FAILED/UNREADABLE/TRACEBACK lines."""
    text = (folder / "crmsync-watch.log").read_text(encoding="utf-8")
    totals = {"ingested": 0, "applied": 0, "new": 0, "deleted": 0, "conflicts": 0, "refused": 0}
    for m in re.finditer(r" INGESTED \S+ user=\S+ applied=(\d+) new=(\d+) deleted=(\d+) conflicts=(\d+) "
                         r"refused=(\d+)", text):
        totals["ingested"] += 1
        for key, value in zip(("applied", "new", "deleted", "conflicts", "refused"), m.groups()):
            totals[key] += int(value)
    for kind in ("FAILED", "UNREADABLE", "TRACEBACK"):
        totals[kind.lower()] = len(re.findall(rf"^\S+ \S+ {kind} ", text, re.M))
    totals["lock_lines"] = [line for line in text.splitlines() if LOCKED.search(line)][:5]
    return totals


# ---- the whole run -----------------------------------------------------------------------------

def soak(workdir: Path, *, copies: int, seconds: float, burst: int, every: float, import_rows: int,
         import_every: float, report_pause: float, rss_every: float, seed: int = 8, progress=print) -> dict:
    """Run the soak in workdir; return the figures (and raise nothing on a failed check: the
    caller asserts or prints)."""
    clock.set_now("2024-05-21 10:00:00")
    progress = progress or (lambda text: None)
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    db, folder, own = make_team(workdir, copies, progress=progress)
    setup_s = time.perf_counter() - t0
    staging = workdir / "staging"
    staging.mkdir()
    rels = sorted(own)

    out = open(workdir / "watch.out", "wb")
    watcher = crmsync("--store", db, "watch", folder, stdout=out, stderr=subprocess.STDOUT)
    try:
        return _run(workdir, db, folder, own, rels, staging, watcher, out, rnd, setup_s, copies=copies,
                    seconds=seconds, burst=burst, every=every, import_rows=import_rows, import_every=import_every,
                    report_pause=report_pause, rss_every=rss_every, progress=progress)
    finally:
        if watcher.poll() is None:  # a check failed on the way: never leave the watcher behind
            watcher.kill()
            watcher.wait()
        out.close()


def _run(workdir, db, folder, own, rels, staging, watcher, out, rnd, setup_s, *, copies, seconds, burst, every,
         import_rows, import_every, report_pause, rss_every, progress) -> dict:
    if not wait_caught_up(folder, rels, timeout=max(120.0, copies * 1.5)):  # its catch-up of every copy
        raise RuntimeError(f"the watcher did not catch up with the checked-out copies; see {workdir / 'watch.out'}")
    start = time.perf_counter()
    samples = [(0.0, rss_mb(watcher.pid))]
    progress(f"  watcher pid {watcher.pid} caught up with {copies} copies; RSS {samples[0][1]:.1f} MB")

    stop = threading.Event()
    imports, reports = Loop(), Loop()
    def import_args(n):
        return ("--store", db, "import", import_file(workdir, n, import_rows), "--keep-duplicates")

    threads = [
        threading.Thread(target=run_loop, args=("import", import_args, stop, imports, import_every)),
        threading.Thread(target=run_loop, args=("report", lambda n: ("--store", db, "--user", "boss" if n % 2 else "admin",
                                                                     "report", REPORT_KINDS[n % len(REPORT_KINDS)]), stop, reports, report_pause)),
    ]
    for t in threads:
        t.start()

    edits = Edits()
    next_rss = rss_every
    try:
        while time.perf_counter() - start < seconds:
            if watcher.poll() is not None:
                raise RuntimeError(f"the watcher exited with {watcher.returncode}; see {workdir / 'watch.out'}")
            burst_started = time.perf_counter()
            save_burst(folder, staging, own, rnd.sample(rels, min(burst, len(rels))), edits)
            elapsed = time.perf_counter() - start
            if elapsed >= next_rss:
                samples.append((elapsed, rss_mb(watcher.pid)))
                progress(f"  {elapsed / 60:5.1f} min: RSS {samples[-1][1]:.1f} MB, {edits.saves} saves, "
                         f"{imports.runs} imports, {reports.runs} reports")
                next_rss += rss_every
            time.sleep(max(0.0, every - (time.perf_counter() - burst_started)))
    finally:
        stop.set()
        for t in threads:
            t.join(900)
    ran = time.perf_counter() - start
    done = wait_caught_up(folder, rels, timeout=600)
    samples.append((time.perf_counter() - start, rss_mb(watcher.pid)))
    watcher.send_signal(signal.SIGINT)  # Ctrl-C: finishes the copy in hand, saves its state, exits 0
    try:
        watcher_rc = watcher.wait(timeout=120)
    except subprocess.TimeoutExpired:
        watcher.kill()
        watcher_rc = watcher.wait()
    out.close()
    watch_out = (workdir / "watch.out").read_text(encoding="utf-8", errors="replace")

    store = Store(db)
    customers = store.list("customer")
    names = [c["customer_name"] for c in customers]
    typed = [n for n in names if n.startswith("压测rep")]
    imported = [n for n in names if n.startswith("压测导入")]
    remarks = {c["customer_id"]: c.get("remark") for c in customers}
    ok_imports = imports.runs - len(imports.failures)
    verify = store.verify_audit()
    store.close()
    totals = log_totals(folder)
    return {
        "copies": copies, "seconds": ran, "setup_seconds": setup_s, "bursts": edits.bursts, "saves": edits.saves,
        "caught_up": done, "watcher_exit": watcher_rc,
        "watch_lock_lines": [line for line in watch_out.splitlines() if LOCKED.search(line)][:5] + totals.pop("lock_lines"),
        **{f"log_{k}": v for k, v in totals.items()},
        "typed": len(edits.new_names), "typed_in_store": len(typed), "typed_distinct": len(set(typed)),
        "typed_missing": len(set(edits.new_names) - set(typed)),
        "remarks_wrong": sum(remarks.get(cid) != text for cid, text in edits.last_remark.items()),
        "imports": imports.runs, "import_failures": imports.failures[:5], "import_locks": imports.lock_messages[:5],
        "imported_expected": ok_imports * import_rows, "imported_in_store": len(imported),
        "imported_distinct": len(set(imported)),
        "import_median_s": sorted(imports.seconds)[len(imports.seconds) // 2] if imports.seconds else None,
        "reports": reports.runs, "report_failures": reports.failures[:5], "report_locks": reports.lock_messages[:5],
        "report_median_s": sorted(reports.seconds)[len(reports.seconds) // 2] if reports.seconds else None,
        "audit_ok": verify.ok, "rss_mb": samples,
    }


def problems(r: dict) -> list[str]:
    """The checks the soak must pass, as messages (empty: all passed)."""
    out = []
    if not r["caught_up"]:
        out.append("the watcher did not catch up with the last saves")
    if r["watcher_exit"] != 0:
        out.append(f"the watcher exited {r['watcher_exit']}")
    if r["watch_lock_lines"] or r["import_locks"] or r["report_locks"]:
        out.append(f"lock messages: {r['watch_lock_lines'] + r['import_locks'] + r['report_locks']}")
    if r["log_failed"] or r["log_unreadable"] or r["log_traceback"]:
        out.append(f"watcher failures: failed={r['log_failed']} unreadable={r['log_unreadable']} "
                   f"traceback={r['log_traceback']}")
    if not (r["typed"] == r["typed_in_store"] == r["typed_distinct"]) or r["typed_missing"]:
        out.append(f"typed customers: {r['typed']} saved, {r['typed_in_store']} in store "
                   f"({r['typed_distinct']} distinct, {r['typed_missing']} missing)")
    if r["remarks_wrong"]:
        out.append(f"{r['remarks_wrong']} customers do not hold their last saved 备注")
    if r["import_failures"] or r["report_failures"]:
        out.append(f"failed runs: {r['import_failures'] + r['report_failures']}")
    if not (r["imported_expected"] == r["imported_in_store"] == r["imported_distinct"]):
        out.append(f"imported: expected {r['imported_expected']}, in store {r['imported_in_store']} "
                   f"({r['imported_distinct']} distinct)")
    if not r["audit_ok"]:
        out.append("the audit chain does not verify")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="how long to save copies (default 60)")
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--burst", type=int, default=40, help="copies saved together in one burst")
    ap.add_argument("--every", type=float, default=20.0, help="seconds from one burst to the next")
    ap.add_argument("--import-rows", type=int, default=200)
    ap.add_argument("--import-every", type=float, default=60.0, help="pause between imports (s)")
    ap.add_argument("--report-pause", type=float, default=2.0, help="pause between reports (s)")
    ap.add_argument("--rss-every", type=float, default=300.0, help="seconds between memory samples")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="load-soak-", dir="/tmp"))
    print(f"soak: {args.copies} copies, bursts of {args.burst} every {args.every:g}s for {args.minutes:g} min, "
          f"import of {args.import_rows} rows every {args.import_every:g}s, reports every {args.report_pause:g}s; "
          f"in {workdir}", flush=True)
    try:
        r = soak(workdir, copies=args.copies, seconds=args.minutes * 60, burst=args.burst, every=args.every,
                 import_rows=args.import_rows, import_every=args.import_every, report_pause=args.report_pause,
                 rss_every=args.rss_every, progress=lambda s: print(s, flush=True))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    rss = r["rss_mb"]
    print(f"\nran {r['seconds'] / 60:.1f} min (setup: store + {r['copies']} checkouts {r['setup_seconds']:.0f}s)")
    print(f"saves: {r['saves']} in {r['bursts']} bursts; watcher ingestions: {r['log_ingested']}")
    print(f"changes applied: {r['log_applied']}  new records: {r['log_new']}  conflicts: {r['log_conflicts']}  "
          f"refused: {r['log_refused']}  failures: {r['log_failed']} failed, {r['log_unreadable']} unreadable, "
          f"{r['log_traceback']} tracebacks")
    print(f"typed customers: {r['typed']} saved, {r['typed_in_store']} in store ({r['typed_distinct']} distinct); "
          f"last 备注 wrong: {r['remarks_wrong']}")
    print(f"imports: {r['imports']} runs (median {r['import_median_s'] or 0:.1f}s), rows expected "
          f"{r['imported_expected']}, in store {r['imported_in_store']} ({r['imported_distinct']} distinct)")
    print(f"reports: {r['reports']} runs (median {r['report_median_s'] or 0:.1f}s)")
    print(f"lock messages seen: {len(r['watch_lock_lines']) + len(r['import_locks']) + len(r['report_locks'])}; "
          f"failed runs: {len(r['import_failures']) + len(r['report_failures'])}; watcher exit {r['watcher_exit']}; "
          f"audit chain ok: {r['audit_ok']}")
    print("watcher RSS (MB): " + ", ".join(f"{t / 60:.1f} min {m:.1f}" for t, m in rss))
    print(f"watcher RSS start {rss[0][1]:.1f} MB, end {rss[-1][1]:.1f} MB "
          f"({rss[-1][1] - rss[0][1]:+.1f} MB), max {max(m for _, m in rss):.1f} MB")
    bad = problems(r)
    for p in bad:
        print("PROBLEM:", p)
    print("all checks passed" if not bad else f"{len(bad)} checks failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

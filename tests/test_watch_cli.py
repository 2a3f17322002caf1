"""`crmsync watch FOLDER`: --once, --init, --status, exit codes and one-line errors, and a real
process stopped with Ctrl-C (SIGINT) and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from records import customer
from watch_copies import add_customer, checkout, edit_customer, wait_for, write_config

from crmsync.watch import WatchState

from cli_run import run


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "team"
    f.mkdir()
    return f


def test_once_ingests_and_prints_a_summary_per_copy(team_store, store_path, folder):
    old = team_store.create("customer", {**customer(), "owner": "zhang"}, user="admin")["customer_id"]
    write_config(folder, settle_seconds=0, store=str(store_path), files={"zhang.xlsm": "zhang"})
    copy = checkout(team_store, folder / "zhang.xlsm", "zhang")
    add_customer(copy, "命令行新客户有限公司", "13500000001")
    edit_customer(copy, old, "负责人", "li")  # a rep may not hand a customer to someone else
    out = run("watch", folder, "--once")
    assert "zhang.xlsm" in out and "已读取" in out and "新建" in out
    row = next(line for line in out.splitlines() if "zhang.xlsm" in line and "已读取" in line)
    assert row.split()[3:8] == ["0", "1", "0", "0", "1"]  # applied, new, deleted, conflicts, refused
    assert re.search(r"zhang\.xlsm: 客户 第 2 行：.*负责人", out)  # why, on which row
    assert "本次读取 1 个副本；0 个文件待处理" in out
    assert sorted(r["customer_name"] for r in team_store.list("customer")) == ["上海示例科技有限公司", "命令行新客户有限公司"]
    assert team_store.get("customer", old)["owner"] == "zhang"
    assert "本次读取 0 个副本" in run("watch", folder, "--once")  # nothing changed since
    status = run("watch", folder, "--status")
    assert "zhang.xlsm" in status and "2024-05-21 10:00:00" in status


def test_once_exits_1_and_names_a_file_it_cannot_read(team_store, store_path, folder):
    write_config(folder, settle_seconds=0, files={"zhang.xlsm": "zhang"})
    (folder / "zhang.xlsm").write_bytes(b"PK\x03\x04 truncated")
    out = run("watch", folder, "--once", "--store", store_path, "--lang", "en", code=1)
    assert "unreadable" in out and "Ingested 0 copies; 1 set aside" in out and "zhang.xlsm" in out


def test_init_writes_a_configuration_listing_the_workbooks(folder, team_store):
    checkout(team_store, folder / "east" / "zhang.xlsm", "zhang")
    out = run("watch", folder, "--init")
    text = (folder / "crmsync-watch.toml").read_text(encoding="utf-8")
    assert "crmsync-watch.toml" in out and '"east/zhang.xlsm"' in text and "[folders]" in text
    assert run("watch", folder, "--init", code=1).startswith("错误: ")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_map_others_can_rewrite_stops_the_watcher_before_it_reads_anything(team_store, store_path, folder):
    config = write_config(folder, settle_seconds=0, files={"zhang.xlsm": "admin"})
    config.chmod(0o666)  # e.g. a rep pointed their own copy at admin
    checkout(team_store, folder / "zhang.xlsm", "zhang")
    out = run("watch", folder, "--once", "--store", store_path, code=1)
    assert out.startswith("错误: ") and len(out.strip().splitlines()) == 1
    assert "crmsync-watch.toml" in out and "不安全" in out and "chmod 644" in out
    assert not (folder / "crmsync-watch.state.json").exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_init_writes_the_map_for_its_owner_only_and_warns_in_a_shared_folder(folder, team_store):
    old = os.umask(0o002)  # a user-private-group umask: new files are group-writable
    try:
        folder.chmod(0o2775)  # a team folder everyone in the group writes
        out = run("watch", folder, "--init")
    finally:
        os.umask(old)
    assert (folder / "crmsync-watch.toml").stat().st_mode & 0o777 == 0o644
    assert "监视将拒绝这份配置" in out and "--config" in out


def test_the_watchers_page_cache_is_bounded_and_other_commands_keep_theirs(team_store, store_path, folder,
                                                                           monkeypatch):
    from crmsync import engine
    from crmsync.watch import WATCH_SQLITE_CACHE_KIB, Watcher

    seen = []
    original = Watcher.run_once

    def run_once(self):
        with self.store.engine.connect() as conn:
            seen.append(conn.exec_driver_sql("PRAGMA cache_size").scalar())
        return original(self)

    monkeypatch.setattr(Watcher, "run_once", run_once)
    write_config(folder, settle_seconds=0, files={})
    run("watch", folder, "--once", "--store", store_path)
    assert seen == [-WATCH_SQLITE_CACHE_KIB]  # months of running: memory bounded by this, not the store
    assert engine.SQLITE_CACHE_KIB == 64 * 1024  # an import in the same process still gets the bulk cache


def test_errors_are_one_line(folder, store_path, team_store):
    out = run("watch", folder, "--once", "--store", store_path, code=1)
    assert out.startswith("错误: 找不到监视配置") and out.count("\n") == 1
    write_config(folder, files={"x.xlsm": "zhao"})
    out = run("watch", folder, "--once", "--store", store_path, code=1)
    assert out == "错误: 监视配置 crmsync-watch.toml：用户 zhao 不存在（crmsync user add 添加）\n"
    out = run("watch", folder / "nope", "--once", code=1)
    assert "不存在" in out and out.count("\n") == 1


def _start(folder, store_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CRMSYNC_NOW": "2024-05-21 10:00:00", "COLUMNS": "200"}
    env.pop("CRMSYNC_LANG", None)
    proc = subprocess.Popen([sys.executable, "-m", "crmsync", "watch", str(folder), "--store", str(store_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8")
    lines: list[str] = []
    reader = __import__("threading").Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    wait_for(lambda: any("正在监视" in line for line in lines) or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, proc.stderr.read()
    return proc, lines, reader


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_running_watcher_stops_cleanly_on_a_signal(team_store, store_path, folder, sig):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    proc, lines, reader = _start(folder, store_path)
    try:
        copy = checkout(team_store, folder.parent / "staging" / "zhang.xlsm", "zhang")
        add_customer(copy, "信号测试客户有限公司", "13500000002")
        os.replace(copy, folder / "zhang.xlsm")  # saved into the watched folder in one step
        state = folder / "crmsync-watch.state.json"
        wait_for(lambda: "zhang.xlsm" in WatchState(state).copies, timeout=30)
        time.sleep(0.2)
        proc.send_signal(sig)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    err = proc.stderr.read()
    out = "".join(lines)
    assert code == 0, (out, err)
    assert "Traceback" not in err and err == ""
    assert "已停止。本次读取 1 个副本；0 个文件待处理" in out
    log = (folder / "crmsync-watch.log").read_text(encoding="utf-8")
    assert "INGESTED zhang.xlsm" in log and log.rstrip().splitlines()[-1].split()[2] == "STOP"
    assert [r["customer_name"] for r in team_store.list("customer")] == ["信号测试客户有限公司"]

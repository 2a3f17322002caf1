"""The watcher's file-event plumbing: which files it reads, when, and how often.

These tests are purely about file events (real watchdog events on a real folder), so the sync
they trigger is a recording stand-in that only checks the file opens as a workbook; everything
about what lands in the store is tested with the real ingest_copy in test_watch_sync.py.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from watch_copies import save_like_excel, wait_for, write_config, write_slowly
from workbook_fixtures import COMMITTED

from crmsync.errors import InvalidInput, NotFound
from crmsync.watch import Watcher, WatchListener, file_digest
from crmsync.watch_config import is_ignored_name, load_config
from crmsync.xlsx_safety import check_package

WORKBOOK = COMMITTED.read_bytes()


@dataclass
class _Result:
    applied: int = 1
    created: int = 0
    deleted: int = 0
    conflicts: int = 0
    refused: int = 0
    message: str = "ok"


class RecordingIngest:
    """Stand-in for ingest_copy in plumbing tests: checks the package, records the call."""

    def __init__(self):
        self.calls: list[tuple[str, str, str, bool]] = []
        self.lock = threading.Lock()

    def __call__(self, store, path, user, *, copy_id=None, write_back=False, on_status=None):
        check_package(path)
        with self.lock:
            self.calls.append((Path(path).name, user, copy_id, write_back))
        return _Result()

    def names(self):
        with self.lock:
            return [c[0] for c in self.calls]


class Notes(WatchListener):
    def __init__(self):
        self.notes: list[str] = []

    def note(self, text):
        self.notes.append(text)


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "team"
    f.mkdir()
    return f


def start(folder, ingest, **kw):
    cfg = load_config(folder / "crmsync-watch.toml")
    watcher = Watcher(None, folder, cfg, ingest=ingest, **kw)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    return watcher, thread


def stop(watcher, thread):
    watcher.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_excel_style_save_is_read_once_and_lock_and_temp_files_never(folder):
    write_config(folder, settle_seconds=0.2, files={"zhang.xlsm": "zhang"})
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest)
    try:
        (folder / "~$zhang.xlsm").write_bytes(b"owner file")  # Excel opens the copy
        (folder / "~zhang.tmp").write_bytes(WORKBOOK)
        save_like_excel(WORKBOOK, folder / "zhang.xlsm")
        wait_for(lambda: ingest.names() == ["zhang.xlsm"])
        (folder / "~$zhang.xlsm").unlink()  # Excel closes it
        (folder / "zhang.xlsm").touch()  # time changed, content the same: not read again
        time.sleep(0.8)
    finally:
        stop(watcher, thread)
    assert ingest.calls == [("zhang.xlsm", "zhang", str((folder / "zhang.xlsm").resolve()), False)]
    assert watcher.state.copies["zhang.xlsm"]["ingested"] == 1


def test_unmapped_workbooks_are_reported_once_and_never_read(folder):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    shutil.copy(COMMITTED, folder / "stranger.xlsm")
    ingest, notes = RecordingIngest(), Notes()
    cfg = load_config(folder / "crmsync-watch.toml")
    Watcher(None, folder, cfg, ingest=ingest, listener=notes).run_once()
    Watcher(None, folder, cfg, ingest=ingest, listener=notes).run_once()  # same file again: no second report
    assert ingest.calls == []
    assert len(notes.notes) == 1 and "stranger.xlsm" in notes.notes[0] and "忽略" in notes.notes[0]
    assert "UNMAPPED stranger.xlsm" in (folder / "crmsync-watch.log").read_text(encoding="utf-8")


def test_a_copy_written_slowly_is_read_once_complete_and_not_reported(folder):
    write_config(folder, settle_seconds=0.2, files={"li.xlsm": "li"})
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest, grace=3.0)
    try:
        write_slowly(WORKBOOK, folder / "li.xlsm", pause=0.8).join()
        wait_for(lambda: ingest.names() == ["li.xlsm"])
    finally:
        stop(watcher, thread)
    assert watcher.state.problems == {}
    assert [o.status for o in watcher.outcomes] == ["ingested"]


def test_write_back_waits_until_excel_lets_go_of_the_file(folder):
    write_config(folder, settle_seconds=0.1, write_back=True, files={"wang.xlsm": "wang"})
    (folder / "~$wang.xlsm").write_bytes(b"owner")
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest)
    try:
        save_like_excel(WORKBOOK, folder / "wang.xlsm")
        wait_for(lambda: len(ingest.calls) == 1)
        assert ingest.calls[0][3] is False  # Excel holds it: ingest only
        assert watcher.state.copies["wang.xlsm"]["write_back_pending"] is True
        (folder / "~$wang.xlsm").unlink()
        wait_for(lambda: len(ingest.calls) == 2)
    finally:
        stop(watcher, thread)
    assert ingest.calls[1][3] is True
    assert watcher.state.copies["wang.xlsm"]["write_back_pending"] is False


def test_a_sub_folder_moved_in_brings_its_copies(folder, tmp_path):
    write_config(folder, settle_seconds=0.1, folders={"south": "liu"})
    staging = tmp_path / "south"
    staging.mkdir()
    for name in ("a.xlsm", "b.xlsx"):
        shutil.copy(COMMITTED, staging / name)
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest)
    try:
        shutil.move(str(staging), str(folder / "south"))
        wait_for(lambda: sorted(ingest.names()) == ["a.xlsm", "b.xlsx"])
    finally:
        stop(watcher, thread)
    assert {c[2] for c in ingest.calls} == {str(folder.resolve() / "south" / n) for n in ("a.xlsm", "b.xlsx")}
    assert {c[1] for c in ingest.calls} == {"liu"}


def test_an_unreadable_file_is_set_aside_and_retried_when_it_changes(folder):
    write_config(folder, settle_seconds=0.1, files={"bad.xlsm": "zhang"})
    (folder / "bad.xlsm").write_bytes(b"not a workbook at all")
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest, grace=0.3)
    try:
        wait_for(lambda: "bad.xlsm" in watcher.state.problems)
        assert "bad.xlsm" in watcher.state.problems["bad.xlsm"]["message"]
        save_like_excel(WORKBOOK, folder / "bad.xlsm")
        wait_for(lambda: ingest.names() == ["bad.xlsm"])
    finally:
        stop(watcher, thread)
    assert watcher.state.problems == {}
    assert [o.status for o in watcher.outcomes] == ["unreadable", "ingested"]
    log = (folder / "crmsync-watch.log").read_text(encoding="utf-8")
    assert "UNREADABLE bad.xlsm" in log and "INGESTED bad.xlsm" in log


def test_an_edited_configuration_is_used_at_once_and_a_broken_edit_is_refused(folder):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    shutil.copy(COMMITTED, folder / "new-rep.xlsm")
    ingest, notes = RecordingIngest(), Notes()
    watcher, thread = start(folder, ingest, listener=notes)
    try:
        wait_for(lambda: any("new-rep.xlsm" in n for n in notes.notes))
        (folder / "crmsync-watch.toml").write_text("[files\n", encoding="utf-8")  # a typo while editing
        wait_for(lambda: any("仍按原配置运行" in n for n in notes.notes))
        write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang", "new-rep.xlsm": "li"})
        wait_for(lambda: ingest.names() == ["new-rep.xlsm"])
    finally:
        stop(watcher, thread)
    assert ingest.calls[0][1] == "li"
    assert "CONFIG" in (folder / "crmsync-watch.log").read_text(encoding="utf-8")


def test_a_copy_saved_again_while_it_is_being_read_is_read_again(folder, realistic):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    newer = realistic.read_bytes()  # another valid workbook: the rep's next save

    class SavedMeanwhile(RecordingIngest):
        def __call__(self, store, path, user, **kw):
            result = super().__call__(store, path, user, **kw)
            if len(self.calls) == 1:
                save_like_excel(newer, Path(path))  # the rep saves again before this read is done
            return result

    ingest = SavedMeanwhile()
    save_like_excel(WORKBOOK, folder / "zhang.xlsm")
    watcher, thread = start(folder, ingest)
    try:
        wait_for(lambda: len(ingest.calls) == 2)
        time.sleep(0.5)
    finally:
        stop(watcher, thread)
    assert len(ingest.calls) == 2
    assert watcher.state.copies["zhang.xlsm"]["hash"] == file_digest(folder / "zhang.xlsm")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("file_mode,folder_mode,why", [
    (0o664, 0o755, "组或其他用户写入"),  # a group member could rewrite the map
    (0o646, 0o755, "组或其他用户写入"),
    (0o644, 0o775, "所在文件夹可被组或其他用户写入"),  # … or replace the file in a shared folder
])
def test_a_configuration_others_can_change_is_refused(folder, file_mode, folder_mode, why):
    path = write_config(folder, files={"zhang.xlsm": "zhang"})
    path.chmod(file_mode)
    folder.chmod(folder_mode)
    with pytest.raises(InvalidInput) as err:
        load_config(path)
    assert "crmsync-watch.toml" in str(err.value) and "不安全" in str(err.value) and why in str(err.value)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_shared_folder_with_the_sticky_bit_keeps_its_configuration(folder):
    # /tmp-style: everyone may add files, only a file's owner may replace it
    path = write_config(folder, files={"zhang.xlsm": "zhang"})
    folder.chmod(0o1777)
    assert load_config(path).resolve("zhang.xlsm").user == "zhang"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_rep_rewriting_the_map_while_it_runs_is_not_obeyed(folder, realistic):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    shutil.copy(COMMITTED, folder / "zhang.xlsm")
    ingest, notes = RecordingIngest(), Notes()
    watcher, thread = start(folder, ingest, listener=notes)
    try:
        wait_for(lambda: ingest.names() == ["zhang.xlsm"])
        # the file made writable to all, then the map pointed at admin: the old map stays in force
        config = folder / "crmsync-watch.toml"
        config.chmod(0o666)
        config.write_text('settle_seconds = 0.1\n[files]\n"zhang.xlsm" = "admin"\n', encoding="utf-8")
        wait_for(lambda: any("不安全" in n for n in notes.notes))
        save_like_excel(realistic.read_bytes(), folder / "zhang.xlsm")  # the rep's next save
        wait_for(lambda: len(ingest.calls) == 2)
    finally:
        stop(watcher, thread)
    assert [call[1] for call in ingest.calls] == ["zhang", "zhang"]
    assert "不安全" in (folder / "crmsync-watch.log").read_text(encoding="utf-8")


def test_polling_finds_saves_where_the_os_reports_no_events(folder):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    ingest = RecordingIngest()
    watcher, thread = start(folder, ingest, poll=True)
    try:
        save_like_excel(WORKBOOK, folder / "zhang.xlsm")
        wait_for(lambda: ingest.names() == ["zhang.xlsm"])
    finally:
        stop(watcher, thread)


def test_a_second_watcher_of_the_same_folder_refuses_to_start(folder):
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})
    watcher, thread = start(folder, RecordingIngest())
    try:
        wait_for(lambda: (folder / "crmsync-watch.state.json.lock").exists())
        time.sleep(0.2)
        second = Watcher(None, folder, load_config(folder / "crmsync-watch.toml"), ingest=RecordingIngest())
        with pytest.raises(InvalidInput, match=f"pid {os.getpid()}"):
            second.run_once()
    finally:
        stop(watcher, thread)
    Watcher(None, folder, load_config(folder / "crmsync-watch.toml"), ingest=RecordingIngest()).run_once()  # free again


def test_a_copy_that_failed_because_the_store_was_down_is_tried_again(folder, monkeypatch):
    import crmsync.watch
    from crmsync.errors import StoreError

    monkeypatch.setattr(crmsync.watch, "RETRY_SECONDS", 0.2)
    write_config(folder, settle_seconds=0.1, files={"zhang.xlsm": "zhang"})

    class StoreDownOnce(RecordingIngest):
        def __call__(self, store, path, user, **kw):
            if not self.calls:
                self.calls.append(("down", user, None, False))
                raise StoreError("无法连接 PostgreSQL (db.example): connection refused")
            return super().__call__(store, path, user, **kw)

    ingest = StoreDownOnce()
    save_like_excel(WORKBOOK, folder / "zhang.xlsm")
    watcher, thread = start(folder, ingest)
    try:
        wait_for(lambda: ingest.names() == ["down", "zhang.xlsm"])
    finally:
        stop(watcher, thread)
    assert [o.status for o in watcher.outcomes] == ["failed", "ingested"] and watcher.state.problems == {}
    assert "稍后重试" in (folder / "crmsync-watch.log").read_text(encoding="utf-8")


# ---- the configuration ------------------------------------------------------------------------------


def test_config_maps_files_before_folders_and_deeper_folders_first(folder):
    write_config(folder, files={"east/boss.xlsm": {"user": "wang", "copy": "wang-laptop"}},
                 folders={"east": "zhang", "east/li": "li", ".": "admin"})
    cfg = load_config(folder / "crmsync-watch.toml")
    assert cfg.resolve("east/boss.xlsm").user == "wang" and cfg.resolve("east/boss.xlsm").copy_id == "wang-laptop"
    assert cfg.resolve("east/x.xlsm").user == "zhang" and cfg.resolve("east/x.xlsm").copy_id is None
    assert cfg.resolve("east/li/y.xlsm").user == "li"
    assert cfg.resolve("top.xlsm").user == "admin"
    assert cfg.state_path == folder / "crmsync-watch.state.json"


@pytest.mark.parametrize("name", ["~$zhang.xlsm", "~zhang.tmp", "zhang.xlsm.tmp", "A1B2C3D4", ".~lock.zhang.xlsm#",
                                  ".hidden.xlsm", "zhang.xlsm~"])
def test_lock_temp_and_hidden_names_are_ignored(name):
    assert is_ignored_name(name)


@pytest.mark.parametrize("text, message", [
    ('files = "x"', "[files] 与 [folders] 应为表"),
    ('[files]\n"../x.xlsm" = "zhang"', "应是被监视文件夹内的相对路径"),
    ('[files]\n"x.xlsm" = 3', "应写成"),
    ('settle_seconds = -1', "settle_seconds"),
    ('colour = "red"', "未知的设置 colour"),
    ('[files\n', "格式有误"),
    ('[files]\n"a.xlsm" = { user = "li", copy = "same" }\n"b.xlsm" = { user = "li", copy = "same" }',
     "多个文件使用同一副本标识 same"),
])
def test_a_bad_configuration_names_the_file_and_the_problem(folder, text, message):
    (folder / "crmsync-watch.toml").write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_config(folder / "crmsync-watch.toml")
    assert "crmsync-watch.toml" in str(err.value) and message in str(err.value)


def test_a_missing_configuration_says_how_to_make_one(folder):
    with pytest.raises(NotFound, match="--init"):
        load_config(folder / "crmsync-watch.toml")


def test_a_damaged_state_file_means_reading_each_copy_once_more(folder):
    write_config(folder, settle_seconds=0, files={"zhang.xlsm": "zhang"})
    shutil.copy(COMMITTED, folder / "zhang.xlsm")
    (folder / "crmsync-watch.state.json").write_text("{not json", encoding="utf-8")
    ingest = RecordingIngest()
    Watcher(None, folder, load_config(folder / "crmsync-watch.toml"), ingest=ingest).run_once()
    assert ingest.names() == ["zhang.xlsm"]
    assert "STATE" in (folder / "crmsync-watch.log").read_text(encoding="utf-8")


def test_a_long_running_watcher_keeps_recent_outcomes_only_and_counts_the_rest(folder, monkeypatch):
    """Memory stays flat over months of saves: outcomes are bounded, totals are counted."""
    import crmsync.watch as watch

    monkeypatch.setattr(watch, "KEEP_OUTCOMES", 3)
    write_config(folder, files={f"c{i}.xlsm": "li" for i in range(10)})
    for i in range(10):
        (folder / f"c{i}.xlsm").write_bytes(WORKBOOK)
    ingest = RecordingIngest()
    watcher = Watcher(None, folder, load_config(folder / "crmsync-watch.toml"), ingest=ingest)
    done = watcher.run_once()
    assert len(done) == 10 and watcher.ingested_total == 10
    assert len(watcher.outcomes) <= 6

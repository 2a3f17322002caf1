"""The ribbon's whitelist (crmsync.macros.ACTIONS) and its one entry point, on_ribbon."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from pathlib import Path
from xml.etree import ElementTree

import pytest

from crmsync import macros

REPO = Path(__file__).resolve().parent.parent
RIBBON_TEMPLATE = REPO / "templates" / "ribbon" / "customUI14.xml"
CUSTOMUI_NS = "{http://schemas.microsoft.com/office/2009/07/customui}"
BUTTONS = {"validate", "sync", "dedupe", "new_followup", "reminders", "dashboard", "import",
           "export", "approve"}


class FakeApp:
    status_bar = None


class FakeBook:
    def __init__(self):
        self.app = FakeApp()


@pytest.fixture(autouse=True)
def _defaults(monkeypatch):
    monkeypatch.delenv("XLWINGS_LICENSE_KEY", raising=False)
    monkeypatch.delenv("CRMSYNC_LANG", raising=False)


def test_whitelist_is_the_issue_s_buttons():
    assert set(macros.ACTIONS) == BUTTONS
    for key, action in macros.ACTIONS.items():
        assert action.id == key
        assert action.zh and action.en and action.tip_zh and action.tip_en
        module, _, func = action.target.partition(":")
        assert module.startswith("crmsync.") and func.isidentifier(), action.target


def test_ribbon_template_buttons_are_the_whitelist():
    root = ElementTree.parse(RIBBON_TEMPLATE).getroot()
    ids = [b.get("id") for b in root.iter(f"{CUSTOMUI_NS}button")]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(macros.ACTIONS)
    assert {b.get("onAction") for b in root.iter(f"{CUSTOMUI_NS}button")} == {"CrmRibbonClick"}


def test_unknown_button_runs_nothing(monkeypatch):
    imported = []
    real_import = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: imported.append(name) or real_import(name, *a))
    book = FakeBook()
    message = macros.on_ribbon("no_such_button", book=book)
    assert "no_such_button" in message and "未知" in message and "未执行" in message
    assert book.app.status_bar == message
    assert imported == []


def test_unknown_button_in_english():
    message = macros.on_ribbon("rm -rf", lang="en")
    assert message.startswith("Unknown button 'rm -rf'") and "nothing was run" in message


def test_known_button_without_implementation_says_not_available(monkeypatch):
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action(
        "sync", "同步", "Sync", "crmsync._no_such_module_:sync_workbook"))
    book = FakeBook()
    message = macros.on_ribbon("sync", book=book)
    assert message == "“同步”功能尚未可用，未执行任何操作。"
    assert book.app.status_bar == message
    assert macros.on_ribbon("sync", lang="en") == "'Sync' is not available yet: nothing was run."


def test_missing_function_in_an_existing_module_says_not_available(monkeypatch):
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action(
        "sync", "同步", "Sync", "crmsync.macros:no_such_function"))
    assert "尚未可用" in macros.on_ribbon("sync")


def test_known_button_runs_its_function_with_the_book(monkeypatch):
    calls = []
    fake = types.ModuleType("crmsync._fake_actions")
    fake.sync_workbook = lambda book: calls.append(book) or "已同步 3 条"
    monkeypatch.setitem(sys.modules, "crmsync._fake_actions", fake)
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action(
        "sync", "同步", "Sync", "crmsync._fake_actions:sync_workbook"))
    book = FakeBook()
    assert macros.on_ribbon("sync", book=book) == "已同步 3 条"
    assert calls == [book] and book.app.status_bar == "已同步 3 条"


def test_a_broken_action_module_is_not_hidden(monkeypatch, tmp_path):
    # An action module that exists but fails to import is a bug to show, not a missing action.
    (tmp_path / "broken_actions_mod.py").write_text("import a_dependency_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action(
        "sync", "同步", "Sync", "broken_actions_mod:sync_workbook"))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_missing"):
        macros.on_ribbon("sync")


def test_language_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRMSYNC_LANG", "en")
    assert macros.on_ribbon("nope").startswith("Unknown button")


def test_importing_macros_is_light(tmp_path):
    code = (
        "import sys\n"
        "import crmsync.macros as m\n"
        "heavy = [n for n in sys.modules if n.split('.')[0] in ('xlwings', 'pandas', 'numpy')\n"
        "         or n in ('crmsync.store', 'crmsync.actions')]\n"
        "assert not heavy, heavy\n"
        "m.on_ribbon('no_such_button')\n"
        "assert 'xlwings' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLWINGS_LICENSE_KEY"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path,
                   capture_output=True)


def test_every_ribbon_button_resolves_to_a_real_function():
    for action in macros.ACTIONS.values():
        func = action.resolve()
        assert callable(func), f"{action.id}: {action.target} does not exist"
        module, _, name = action.target.partition(":")
        assert (func.__module__, func.__name__) == (module, name), action.target  # defined where named


def test_no_ribbon_button_says_not_available_and_an_unknown_id_still_runs_nothing(tmp_path, monkeypatch):
    """Each button, clicked on a workbook with no store and no user configured: a one-line answer
    (what to set up, or what it did), never 尚未可用 and never a traceback."""
    import shutil

    from crmsync import lookup
    from crmsync.book_file import FileBook

    monkeypatch.delenv("CRMSYNC_STORE", raising=False)
    monkeypatch.delenv("CRMSYNC_USER", raising=False)
    monkeypatch.delenv("CRMSYNC_CHOSEN_FILE", raising=False)
    lookup.forget_settings()
    path = tmp_path / "crm.xlsm"
    shutil.copyfile(REPO / "crm_workbook.xlsm", path)
    unavailable = macros.message("unavailable", label="")
    for button in macros.ACTIONS:
        book = FileBook(path)
        text = macros.on_ribbon(button, book=book)
        assert text and "\n" not in text and "尚未可用" not in text, (button, text)
        assert text != unavailable
    lookup.forget_settings()
    before = path.read_bytes()
    text = macros.on_ribbon("no_such_button", book=FileBook(path))
    assert text == "未知的按钮“no_such_button”，未执行任何操作。请更新工作簿（crmsync workbook build）。"
    assert path.read_bytes() == before


def test_a_refusal_from_an_action_is_its_message_and_a_bug_is_not_hidden(monkeypatch):
    from crmsync.errors import InvalidInput

    fake = types.ModuleType("crmsync._refusing_actions")

    def refuses(book):
        raise InvalidInput("请先选中一个客户")

    def breaks(book):
        raise ZeroDivisionError("a bug")

    fake.refuses, fake.breaks = refuses, breaks
    monkeypatch.setitem(sys.modules, "crmsync._refusing_actions", fake)
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action("sync", "同步", "Sync", "crmsync._refusing_actions:refuses"))
    book = FakeBook()
    assert macros.on_ribbon("sync", book=book) == "请先选中一个客户" == book.app.status_bar
    monkeypatch.setitem(macros.ACTIONS, "sync", macros.Action("sync", "同步", "Sync", "crmsync._refusing_actions:breaks"))
    with pytest.raises(ZeroDivisionError):
        macros.on_ribbon("sync", book=book)

"""The workbook build (crmsync/build.py): reproducible, complete, what Excel and xlwings need."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from workbook_fixtures import soffice_or_skip

from crmsync import macros
from crmsync.build import (
    DEFAULT_OUT, MACRO_MAIN, RIBBON_PART, RIBBON_REL, TEMPLATES, build_bytes, build_workbook,
    workbook_is_current,
)
from crmsync.build_sheets import entity_columns, list_name, sheet_names, table_name
from crmsync.build_vba import UDF_MODULE, udf_wrappers, vba_modules
from crmsync.enums import Enums
from crmsync.schema import CHANGE_REASON_KEY, ENTITIES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:oletools.*")

REPO = Path(__file__).resolve().parent.parent
CUSTOMUI_NS = "{http://schemas.microsoft.com/office/2009/07/customui}"
TEXT_TYPES = ("mobile", "phone", "id", "credit_code", "id_number", "ref")
LAYOUT = __import__("json").loads((TEMPLATES / "layout.json").read_text(encoding="utf-8"))


# A licence key silently turns xlwings' paid engines on: these tests (and the build subprocesses
# they start) run without one.
os.environ.pop("XLWINGS_LICENSE_KEY", None)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLWINGS_LICENSE_KEY"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_workbook(tmp_path_factory.mktemp("zh") / "crm_workbook.xlsm", lang="zh")


@pytest.fixture(scope="module")
def built_en(tmp_path_factory) -> Path:
    return build_workbook(tmp_path_factory.mktemp("en") / "crm_workbook.xlsm", lang="en")


@pytest.fixture(scope="module")
def book(built):
    return openpyxl.load_workbook(built)


@pytest.fixture(scope="module")
def vba(built) -> dict[str, str]:
    """Module name → source, as oletools reads them out of the built file."""
    from oletools.olevba import VBA_Parser

    parser = VBA_Parser(str(built))
    try:
        return {Path(vba_name).stem: code.replace("\r\n", "\n")
                for _, _, vba_name, code in parser.extract_macros()}
    finally:
        parser.close()


def _part(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)


# ---- reproducibility -----------------------------------------------------------------------------

def test_two_builds_are_byte_identical(built):
    assert build_bytes("zh") == built.read_bytes()


def test_build_in_another_process_is_byte_identical(built, tmp_path):
    out = tmp_path / "other.xlsm"
    env = _clean_env() | {"PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "crmsync.build", str(out)], check=True, env=env,
                   cwd=tmp_path, capture_output=True)
    assert out.read_bytes() == built.read_bytes()


def test_zip_entries_are_pinned(built):
    with zipfile.ZipFile(built) as z:
        infos = z.infolist()
    assert [i.filename for i in infos[:2]] == ["[Content_Types].xml", "_rels/.rels"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.create_system for i in infos} == {0}
    core = ElementTree.fromstring(_part(built, "docProps/core.xml"))
    times = {el.tag.rpartition("}")[2]: el.text for el in core if "purl.org/dc/terms" in el.tag}
    assert times == {"created": "1980-01-01T00:00:00Z", "modified": "1980-01-01T00:00:00Z"}


def test_committed_workbook_is_current():
    assert workbook_is_current(DEFAULT_OUT), (
        f"{DEFAULT_OUT.name} is stale or missing: its sources changed since it was built. "
        "Rebuild it with `python -m crmsync.build` (or `crmsync workbook build`) and commit it."
    )


def test_workbook_is_current_sees_a_stale_file(built, tmp_path):
    stale = tmp_path / "stale.xlsm"
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(stale, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == RIBBON_PART:
                data = data.replace(b'label="', b'label="old ', 1)
            dst.writestr(info, data)
    assert not workbook_is_current(stale)
    assert not workbook_is_current(tmp_path / "missing.xlsm")
    (tmp_path / "junk.xlsm").write_bytes(b"not a zip")
    assert not workbook_is_current(tmp_path / "junk.xlsm")


def test_workbook_is_current_ignores_how_parts_were_compressed(built, tmp_path):
    # Another zlib may compress the same parts into other bytes: still current.
    other = tmp_path / "recompressed.xlsm"
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info), compresslevel=9)
    assert other.read_bytes() != built.read_bytes()
    assert workbook_is_current(other)


def test_build_restores_what_it_stubs():
    import xlwings

    func_before = xlwings.func
    udf_wrappers()
    assert xlwings.func is func_before
    if sys.platform != "win32":
        assert "pythoncom" not in sys.modules and "win32com.client" not in sys.modules
        assert "xlwings.udfs" not in sys.modules


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language"):
        build_bytes("fr")


# ---- package: macro-enabled, ribbon, VBA ---------------------------------------------------------

def test_package_is_macro_enabled_with_a_ribbon(built):
    types = _part(built, "[Content_Types].xml").decode()
    assert f'PartName="/xl/workbook.xml" ContentType="{MACRO_MAIN}"' in types
    rels = ElementTree.fromstring(_part(built, "_rels/.rels"))
    ribbon = [r for r in rels if r.get("Type") == RIBBON_REL]
    assert [r.get("Target") for r in ribbon] == [RIBBON_PART]
    assert _part(built, "xl/vbaProject.bin")[:8] == bytes.fromhex("D0CF11E0A1B11AE1")  # a CFB


def test_pyopenvba_finds_no_problem(built):
    from pyopenvba import check_file

    assert check_file(built).issues == ()


def test_olevba_lists_every_module_with_its_source(vba):
    expected = {m.name: m.source.replace("\r\n", "\n") for m in vba_modules(TEMPLATES)}
    assert {"CrmRibbon", "xlwings", "Dictionary", "xlwings_udfs"} <= set(expected)
    for name, source in expected.items():
        assert name in vba, f"module {name} missing from the VBA project"
        if name != "Dictionary":  # a class is stored with its attribute header rewritten
            assert vba[name].strip() == source.strip()
    assert "Public Property Get Count() As Long" in vba["Dictionary"]


def _ribbon(path: Path) -> ElementTree.Element:
    return ElementTree.fromstring(_part(path, RIBBON_PART))


def test_every_ribbon_callback_is_a_vba_sub_taking_the_control(built, vba):
    callbacks = {el.get("onAction") for el in _ribbon(built).iter() if el.get("onAction")}
    assert callbacks == {"CrmRibbonClick"}
    all_vba = "\n".join(vba.values())
    for name in callbacks:
        pattern = rf"^\s*(Public\s+)?Sub\s+{name}\s*\(\s*control\s+As\s+IRibbonControl\s*\)"
        assert re.search(pattern, all_vba, re.M | re.I), f"no Sub {name}(control As IRibbonControl)"


def test_ribbon_buttons_are_the_whitelist(built):
    ids = [el.get("id") for el in _ribbon(built).iter(f"{CUSTOMUI_NS}button")]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(macros.ACTIONS)


@pytest.mark.parametrize("lang, tab", [("zh", "客户管理"), ("en", "CRM")])
def test_ribbon_speaks_the_workbook_language(lang, tab, built, built_en):
    root = _ribbon(built if lang == "zh" else built_en)
    assert root.tag == f"{CUSTOMUI_NS}customUI"
    assert [t.get("label") for t in root.iter(f"{CUSTOMUI_NS}tab")] == [tab]
    for el in root.iter(f"{CUSTOMUI_NS}button"):
        assert el.get("label") == macros.ACTIONS[el.get("id")].label(lang)
        assert el.get("imageMso")
    assert "{" not in _part(built, RIBBON_PART).decode()  # every placeholder filled


def test_ribbon_callback_hands_the_button_id_to_python(monkeypatch):
    """Run the VBA callback in pyOpenVBA's interpreter with RunPython recorded, then the command."""
    from pyopenvba.interpreter import Interpreter, VBAObject, member

    class Control(VBAObject):
        def __init__(self, id_):
            self._id = id_

        @member(name="Id")
        def Id(self):
            return self._id

    ribbon = next(m for m in vba_modules(TEMPLATES) if m.name == "CrmRibbon")
    interp = Interpreter()
    interp.add_module(ribbon.source, name="CrmRibbon")
    interp.add_module("Public LastCommand As String\r\n"
                      "Function RunPython(PythonCommand As String)\r\n"
                      "    LastCommand = PythonCommand\r\nEnd Function\r\n"
                      "Function Sent() As String\r\n    Sent = LastCommand\r\nEnd Function\r\n",
                      name="xlwings")
    interp.run("CrmRibbonClick", [Control("sync")])
    command = str(interp.run("Sent"))
    assert command == "import crmsync.macros as m; m.on_ribbon('sync')"
    assert '"' not in command  # RunPython wraps the command in double quotes
    clicked = []
    monkeypatch.setattr(macros, "on_ribbon", lambda button_id, *a, **k: clicked.append(button_id))
    exec(command, {})  # what xlwings runs: the whitelist entry point gets the id, nothing else
    assert clicked == ["sync"]


def test_xlwings_module_is_the_installed_version(vba):
    version = importlib.metadata.version("xlwings")
    source = vba["xlwings"]
    assert f"'Version: {version}" in source
    assert f'"xlwings64-{version}.dll"' in source and f'"xlwings32-{version}.dll"' in source
    assert f'XLWINGS_VERSION As String = "{version}"' in source


def test_udf_wrappers_cover_every_udf(vba):
    import crmsync.udfs as udfs

    names = sorted(n for n in dir(udfs) if n.startswith("CRM_"))
    assert names == ["CRM_COUNT", "CRM_DUPES", "CRM_HISTORY", "CRM_LOOKUP", "CRM_NEXT_FOLLOWUP",
                     "CRM_NORMALIZE", "CRM_VALID"]
    source = vba["xlwings_udfs"]
    for name in names:
        assert re.search(rf"^Function {name}\(", source, re.M), name
        assert f'XLPy.CallUDF("{UDF_MODULE}", "{name}"' in source


def test_udf_signatures_are_as_declared():
    source, infos = udf_wrappers()
    sigs = {sig for sig, _ in infos}
    assert sigs == {"CRM_LOOKUP(id, field)", "CRM_VALID(value, kind)", "CRM_NORMALIZE(value, kind)",
                    "CRM_HISTORY(id, field)", "CRM_DUPES(name, phone)", "CRM_NEXT_FOLLOWUP(id)",
                    "CRM_COUNT(field, value)"}
    assert re.search(r"^Function CRM_HISTORY\(id, Optional field\)", source, re.M)  # field may be left out
    for _, doc in infos:
        assert re.search(r"[\u4e00-\u9fff]", doc) and re.search(r"[A-Za-z]{4}", doc), doc


def test_store_backed_udfs_say_when_no_store_is_configured(monkeypatch):
    import crmsync.lookup as lookup
    import crmsync.udfs as udfs

    monkeypatch.delenv("CRMSYNC_STORE", raising=False)
    lookup.close_all()  # settings are kept for a few seconds: read them afresh, and after
    try:
        text = udfs.CRM_LOOKUP("C202405210001", "customer_name")
        assert text.startswith("未配置中心库") and "CRMSYNC_STORE" in text
        assert udfs.CRM_HISTORY("C202405210001", "status") == [[text]]  # rows, even for a message
        for answer in (udfs.CRM_DUPES("上海示例科技有限公司", "13812345678"),
                       udfs.CRM_NEXT_FOLLOWUP("C202405210001"), udfs.CRM_COUNT("status", "潜在客户")):
            assert answer == text
    finally:
        lookup.close_all()


def test_validation_udfs_take_values_as_excel_passes_them():
    import crmsync.udfs as udfs

    assert udfs.CRM_VALID(13812345678.0, "mobile") == ""  # Excel passes numbers as floats
    assert "1381234567" in udfs.CRM_VALID("1381234567", "mobile")
    assert udfs.CRM_VALID(None, "mobile") == ""  # an empty cell is valid
    assert udfs.CRM_NORMALIZE("+86 138-1234-5678", "mobile") == "13812345678"
    assert udfs.CRM_NORMALIZE(13812345678.0, "手机号") == "13812345678"
    assert udfs.CRM_VALID("x", "no_such_kind").startswith("未知的类型“no_such_kind”")


def test_no_paid_xlwings_part_is_needed(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['xlwings.pro'] = None\n"
        "import crmsync.macros, crmsync.udfs, crmsync.build\n"
        "from crmsync.build_vba import udf_wrappers\n"
        "assert 'CRM_VALID' in udf_wrappers()[0]\n"
        "assert sys.modules['xlwings.pro'] is None\n"
        "import xlwings\n"
        "assert not xlwings.__pro__\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_clean_env(), cwd=tmp_path,
                   capture_output=True)


# ---- sheets --------------------------------------------------------------------------------------

def test_sheets_in_order_with_helpers_hidden(book):
    names = list(sheet_names(LAYOUT, "zh").values())
    assert book.sheetnames == names
    assert names[:10] == ["客户", "联系人", "跟进记录", "服务记录", "交易记录", "提醒", "仪表板",
                          "冲突", "校验结果", "使用说明"]
    assert {ws.title for ws in book if ws.sheet_state != "visible"} == {"_lists", "xlwings.conf"}
    assert not [n for n in book.sheetnames if n.lower().endswith(".py")]


def test_english_build_has_english_sheet_names(built_en):
    wb = openpyxl.load_workbook(built_en, read_only=True)
    assert wb.sheetnames[:10] == [e.en for e in ENTITIES.values()] + [
        "Reminders", "Dashboard", "Conflicts", "Validation", "Help"]
    customers = wb[ENTITIES["customer"].en]
    header = next(customers.iter_rows(min_row=1, max_row=1, values_only=True))
    assert header[:2] == ("Customer ID", "Customer name") and "Change reason" in header
    wb.close()


def test_xlwings_conf_sheet(book):
    ws = book["xlwings.conf"]
    rows = [(r[0].value, r[1].value) for r in ws.iter_rows(min_row=1, max_col=2)]
    keys = [k for k, _ in rows]
    assert None not in keys, "keys must be contiguous from A1"
    conf = dict(rows)
    assert conf["UDF MODULES"] == "crmsync.udfs"
    assert conf["USE UDF SERVER"] == "True"
    assert conf["CRMSYNC_LANG"] == "zh"
    assert conf["INTERPRETER_WIN"] is None and conf["INTERPRETER_MAC"] is None
    assert conf["CRMSYNC_STORE"] is None


@pytest.mark.parametrize("entity_key", list(ENTITIES))
def test_entity_sheet_layout(book, entity_key):
    ent = ENTITIES[entity_key]
    ws = book[ent.label("zh")]
    cols = entity_columns(ent, LAYOUT, "zh")
    header = [c.value for c in ws[1]]
    assert header == [c.label for c in cols]
    assert header[: len(ent.fields)] == [f.zh for f in ent.fields]
    assert "变更原因" in header and cols[header.index("变更原因")].key == CHANGE_REASON_KEY
    assert ws.freeze_panes in ("A2", "B2", "C2")
    assert list(ws.tables) == [table_name(ent)]
    assert ws.tables[table_name(ent)].ref.startswith("A1:")
    hidden = {c.key for c in cols if ws.column_dimensions[_letter(cols, c.key)].hidden}
    assert hidden == {"_status", "_version", "_client_key"}


@pytest.mark.parametrize("entity_key", list(ENTITIES))
def test_enum_columns_have_drop_downs_from_the_lists(book, entity_key):
    ent = ENTITIES[entity_key]
    ws = book[ent.label("zh")]
    lists = {dv.formula1: dv for dv in ws.data_validations.dataValidation if dv.type == "list"}
    enums = Enums.seed()
    for f in ent.fields:
        if not f.enum:
            continue
        dv = lists.get(f"={list_name(f.enum)}")
        assert dv is not None, f"{f.key}: no drop-down"
        assert f"{_letter(entity_columns(ent, LAYOUT), f.key)}2:" in str(dv.sqref)
        ref = book.defined_names[list_name(f.enum)].attr_text
        sheet, cells = ref.split("!")
        values = [c.value for row in book[sheet.strip("'")][cells.replace("$", "")] for c in row]
        assert values == enums.labels(f.enum, "zh")


@pytest.mark.parametrize("entity_key", list(ENTITIES))
def test_number_formats_follow_the_field_types(book, entity_key):
    ent = ENTITIES[entity_key]
    ws = book[ent.label("zh")]
    cols = entity_columns(ent, LAYOUT)
    for f in ent.fields:
        fmt = ws.column_dimensions[_letter(cols, f.key)].number_format
        if f.type in TEXT_TYPES:
            assert fmt == "@", f"{f.key} must keep leading zeros"
        elif f.type == "date":
            assert fmt == "yyyy-mm-dd"
        elif f.type == "datetime":
            assert fmt == "yyyy-mm-dd hh:mm"


def test_system_columns_look_locked(book):
    ws = book["客户"]
    cols = entity_columns(ENTITIES["customer"], LAYOUT)
    grey = LAYOUT["colors"]["system_fill"]
    for c in cols:
        fill = ws.column_dimensions[_letter(cols, c.key)].fill
        assert (fill.fgColor.rgb[-6:] == grey) == c.system, c.key


def test_invalid_and_overdue_rows_are_highlighted(book):
    ws = book["客户"]
    cols = entity_columns(ENTITIES["customer"], LAYOUT)
    formulas = [rule.formula[0] for cf in ws.conditional_formatting for rule in cf.rules]
    status, due = _letter(cols, "_status"), _letter(cols, "next_follow_up")
    assert f"LEN(${status}2)>0" in formulas
    assert any(f"${due}2<TODAY()" in f for f in formulas)


def test_dashboard_counts_from_the_customer_sheet(book):
    ws = book["仪表板"]
    formulas = [c.value for row in ws.iter_rows() for c in row
                if isinstance(c.value, str) and c.value.startswith("=")]
    assert any("'客户'!" in f and "COUNTIF" in f for f in formulas)


def _letter(cols, key) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter([c.key for c in cols].index(key) + 1)


# ---- LibreOffice: the file opens and renders (optional locally, required with CRMSYNC_REQUIRE_ALL)

@pytest.mark.slow
def test_libreoffice_opens_and_renders(built, tmp_path):
    soffice = soffice_or_skip()
    src = tmp_path / "book.xlsm"
    shutil.copy(built, src)
    profile = f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}"
    run = dict(cwd=tmp_path, capture_output=True, timeout=180, check=True)
    subprocess.run([soffice, profile, "--headless", "--convert-to", "pdf", "--outdir",
                    str(tmp_path), str(src)], **run)
    assert (tmp_path / "book.pdf").read_bytes()[:5] == b"%PDF-"
    csv_filter = "csv:Text - txt - csv (StarCalc):44,34,UTF8,1,,0,false,true,false,false,false,-1"
    subprocess.run([soffice, profile, "--headless", "--convert-to", csv_filter, "--outdir",
                    str(tmp_path), str(src)], **run)
    for name in sheet_names(LAYOUT, "zh").values():
        assert (tmp_path / f"book-{name}.csv").exists(), name
    header = (tmp_path / "book-客户.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == [c.label for c in entity_columns(ENTITIES["customer"], LAYOUT)]
    dashboard = (tmp_path / "book-仪表板.csv").read_text(encoding="utf-8")
    assert "潜在客户,0" in dashboard  # native formulas calculate
    conf = (tmp_path / "book-xlwings.conf.csv").read_text(encoding="utf-8")
    assert conf.splitlines()[0] == "UDF MODULES,crmsync.udfs"

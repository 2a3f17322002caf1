"""Worksheet functions against a real SQLite store: called directly, and as Excel calls them
(arguments and results through xlwings' own conversion with each function's declared options).

Freshness is tested the way it happens in use: another connection (a second Store object, or a
real second process) commits, and the very next call shows it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import xlwings as xw
from xlwings import conversion

from crmsync import access, clock, lookup, lookup_config, udfs
from crmsync.store import Store

from records import customer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_readers(monkeypatch):
    """No reader, workbook conf or store setting leaks between tests."""
    for name in ("CRMSYNC_STORE", "CRMSYNC_USER", "CRMSYNC_LANG"):
        monkeypatch.delenv(name, raising=False)
    lookup.close_all()
    yield
    lookup.close_all()


@pytest.fixture
def crm(team_store, store_path, monkeypatch):
    """A store with customers of two teams, a follow-up and some history; CRMSYNC_STORE points at it."""
    s = team_store
    ids = {}
    ids["zhang"] = s.create("customer", customer(
        total_amount=1234.5, first_deal_date="2024-01-02", next_follow_up="2024-06-01 09:30",
        email="zhangsan@example.com", tags="高预算,决策快"), user="zhang")["customer_id"]
    ids["li"] = s.create("customer", customer(customer_name="杭州云帆软件有限公司", mobile="13900001111",
                                              status="意向客户"), user="li")["customer_id"]
    ids["liu"] = s.create("customer", customer(customer_name="深圳星辰电子股份有限公司",
                                               mobile="13700002222", status="意向客户"), user="liu")["customer_id"]
    clock.set_now("2024-05-22 11:00:00")
    s.update("customer", ids["zhang"], {"status": "意向客户"}, user="zhang", reason="客户确认预算")
    clock.set_now("2024-05-23 15:00:00")
    s.update("customer", ids["zhang"], {"mobile": "+86 137-0000-3333"}, user="wang")
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    return types.SimpleNamespace(store=s, path=store_path, **ids)


# ---- xlwings' conversion, as the UDF server applies it ---------------------------------------

_MISSING = -2147352572  # what Excel passes for an omitted optional argument (DISP_E_PARAMNOTFOUND)


class _ExcelStandIn:
    """The two conversion hooks of xlwings' Windows engine (xlwings/_xlwindows.py Engine), without
    COM: empty cells become ``empty``, Excel error codes become None, values are written as
    Excel takes them (None → "")."""

    name, type = "excel", "desktop"
    _ERRORS = {-2146826281, -2146826246, -2146826259, -2146826288, -2146826252, -2146826265,
               -2146826273}  # #DIV/0!, #N/A, #NAME?, #NULL!, #NUM!, #REF!, #VALUE!

    @staticmethod
    def clean_value_data(data, datetime_builder, empty_as, number_builder, err_to_str):
        def clean(v):
            if v in ("", None):
                return empty_as
            if isinstance(v, float) and number_builder is not None:
                return number_builder(v)
            if isinstance(v, int) and v in _ExcelStandIn._ERRORS:
                return None
            return v
        return [[clean(v) for v in row] for row in data]

    @staticmethod
    def prepare_xl_data_element(x, options):
        return "" if x is None else x


@pytest.fixture(scope="module")
def excel_udfs():
    """crmsync.udfs with xlwings' real decorators applied (the metadata Excel's calls use)."""
    from crmsync.build_vba import _decorated_copy, _xlwings_generator

    with _xlwings_generator():
        module = _decorated_copy("crmsync.udfs")
    return module


@pytest.fixture
def excel(excel_udfs):
    """call(name, *cells): the UDF as xlwings' call_udf runs it, returning what Excel receives."""
    saved = (list(xw.engines.engines), dict(xw.engines.engines_by_name), xw.engines.active)
    xw.engines.add(xw.Engine(impl=_ExcelStandIn()))

    def call(name, *cells):
        func = getattr(excel_udfs, name)
        info = func.__xlfunc__
        args = list(cells) + [_MISSING] * (len(info["args"]) - len(cells))
        for i, arg in enumerate(args):  # as xlwings.udfs.call_udf does
            arg_info = info["args"][min(i, len(info["args"]) - 1)]
            if isinstance(arg, int) and arg == _MISSING:
                args[i] = arg_info.get("optional", None)
            else:
                args[i] = conversion.read(None, arg, arg_info["options"])
        return conversion.write(func(*args), None, info["ret"]["options"])

    call.info = lambda name: getattr(excel_udfs, name).__xlfunc__
    yield call
    xw.engines.engines[:] = saved[0]
    xw.engines.engines_by_name.clear()
    xw.engines.engines_by_name.update(saved[1])
    xw.engines.active = saved[2]


# ---- CRM_VALID and CRM_NORMALIZE (no store needed) -------------------------------------------

def test_valid_is_empty_for_good_and_empty_values_else_the_message():
    assert udfs.CRM_VALID("13812345678", "mobile") == ""
    assert udfs.CRM_VALID(13812345678.0, "mobile") == ""  # Excel's number
    assert udfs.CRM_VALID(None, "mobile") == "" and udfs.CRM_VALID("  ", "email") == ""
    assert udfs.CRM_VALID("1381234567", "mobile") == "手机号“1381234567”不是有效的11位大陆手机号"
    assert "统一社会信用代码" in udfs.CRM_VALID("91310000MA1FL0000X", "credit_code")
    assert udfs.CRM_VALID("91350100M000100Y43", "credit_code") == ""
    assert udfs.CRM_VALID("11010519491231002X", "id_number") == ""
    assert "身份证" in udfs.CRM_VALID("110105194912310021", "id_number")
    assert "邮箱" in udfs.CRM_VALID("foo@", "email")


def test_valid_takes_chinese_labels_and_customer_fields():
    assert udfs.CRM_VALID("1381234567", "手机号").startswith("手机号“1381234567”")
    assert udfs.CRM_VALID("91350100M000100Y43", "统一社会信用代码") == ""
    assert udfs.CRM_VALID("2024-02-30", "日期").startswith("日期")
    assert udfs.CRM_VALID("流失", "客户状态") == ""
    assert "不在可选列表中" in udfs.CRM_VALID("暂停客户", "status")


def test_valid_unknown_kind_and_ranges_are_messages():
    assert udfs.CRM_VALID("x", "no_such_kind").startswith("未知的类型“no_such_kind”")
    assert udfs.CRM_VALID("x", None).startswith("未知的类型")
    assert udfs.CRM_VALID((("a",), ("b",)), "mobile") == "请只传入一个单元格"


def test_messages_follow_crmsync_lang(monkeypatch):
    monkeypatch.setenv("CRMSYNC_LANG", "en")
    assert udfs.CRM_VALID("1381234567", "mobile") == "Mobile '1381234567' is not a valid 11-digit mainland mobile number"
    assert udfs.CRM_VALID("x", "no_such_kind").startswith("unknown kind 'no_such_kind'")
    assert udfs.CRM_LOOKUP("C202405210001", "customer_name").startswith("no store configured")


def test_normalize():
    assert udfs.CRM_NORMALIZE("+86 138-1234-5678", "mobile") == "13812345678"
    assert udfs.CRM_NORMALIZE(13812345678.0, "手机号") == "13812345678"
    assert udfs.CRM_NORMALIZE("010 1234 5678", "phone") == "010-12345678"
    assert udfs.CRM_NORMALIZE("2024/5/1", "date") == "2024-05-01"
    assert udfs.CRM_NORMALIZE("流失", "status") == "流失客户"  # the drop-down label, not the key
    assert udfs.CRM_NORMALIZE(None, "mobile") == ""
    assert udfs.CRM_NORMALIZE("12345", "mobile") == "手机号“12345”不是有效的11位大陆手机号"


def test_validation_uses_the_stores_lists_and_custom_fields(crm):
    crm.store.add_enum("customer_status", "paused", "暂停合作")
    crm.store.add_custom_field("customer", "wechat", "微信号", "WeChat")
    assert udfs.CRM_VALID("暂停合作", "status") == ""
    assert udfs.CRM_NORMALIZE("暂停合作", "客户状态") == "暂停合作"
    assert udfs.CRM_VALID("wx_123", "微信号") == ""


# ---- the store-backed functions -----------------------------------------------------------

def test_lookup_by_key_and_labels_typed_as_excel_shows_them(crm):
    cid = crm.zhang
    assert udfs.CRM_LOOKUP(cid, "customer_name") == "上海示例科技有限公司"
    assert udfs.CRM_LOOKUP(cid, "客户名称") == udfs.CRM_LOOKUP(cid, "Customer name") == "上海示例科技有限公司"
    assert udfs.CRM_LOOKUP(cid, "手机号") == "13700003333"
    assert udfs.CRM_LOOKUP(cid, "客户状态") == "意向客户"  # the label, not the stored key
    assert udfs.CRM_LOOKUP(cid, "累计交易金额") == 1234.5
    assert udfs.CRM_LOOKUP(cid, "首次合作时间") == dt.date(2024, 1, 2)
    assert udfs.CRM_LOOKUP(cid, "next_follow_up") == dt.datetime(2024, 6, 1, 9, 30)
    assert udfs.CRM_LOOKUP(cid, "版本") == 3
    assert udfs.CRM_LOOKUP(cid, "负责人") == "zhang"
    assert udfs.CRM_LOOKUP(cid, "所属行业") == ""  # empty field
    assert udfs.CRM_LOOKUP(cid.lower(), "客户名称") == "上海示例科技有限公司"  # typed in lower case


def test_lookup_of_other_entities_by_their_id(crm):
    with crm.store.transaction("admin") as tx:
        contact = tx.create("contact", {"customer_id": crm.zhang, "name": "李四", "mobile": "13811112222"})
        follow = tx.create("followup", {"customer_id": crm.zhang, "follow_time": "2024-05-21 09:00",
                                        "method": "电话", "content": "电话沟通产品方案",
                                        "next_time": "2024-05-28 10:00"})
    assert udfs.CRM_LOOKUP(contact["contact_id"], "姓名") == "李四"
    assert udfs.CRM_LOOKUP(follow["follow_id"], "跟进方式") == "电话"
    assert udfs.CRM_LOOKUP(follow["follow_id"], "客户名称").startswith("跟进记录没有字段“客户名称”")


def test_lookup_bad_ids_and_fields_give_messages(crm):
    assert udfs.CRM_LOOKUP(crm.zhang, "nope") == "客户没有字段“nope”（可用字段键或列名，如 customer_name 或 客户名称）"
    assert udfs.CRM_LOOKUP("X123", "客户名称") == "“X123”不是有效的记录编号（应如 C202405210001）"
    assert udfs.CRM_LOOKUP(12345.0, "客户名称").startswith("“12345.0”不是有效的记录编号")
    assert udfs.CRM_LOOKUP("C209901010001", "客户名称") == "客户 C209901010001 不存在"
    assert udfs.CRM_LOOKUP(((crm.zhang,), (crm.li,)), "客户名称") == "请只传入一个单元格作为编号"
    assert udfs.CRM_LOOKUP(None, "客户名称") == "" and udfs.CRM_LOOKUP(" ", "客户名称") == ""
    with crm.store.transaction("wang") as tx:
        tx.delete("customer", crm.li, reason="重复录入")
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == f"客户 {crm.li} 已删除"


def test_history_newest_first_with_and_without_a_field(crm):
    assert udfs.CRM_HISTORY(crm.zhang, "客户状态") == [
        ["2024-05-22 11:00:00", "zhang", "潜在客户", "意向客户"],
        ["2024-05-21 10:00:00", "zhang", "", "潜在客户"],  # the first value, from the creation
    ]
    assert udfs.CRM_HISTORY(crm.zhang) == [
        ["2024-05-23 15:00:00", "wang", "手机号", "13812345678", "13700003333"],
        ["2024-05-22 11:00:00", "zhang", "客户状态", "潜在客户", "意向客户"],
        ["2024-05-21 10:00:00", "zhang", "（新建）", "", ""],
    ]
    assert udfs.CRM_HISTORY(crm.li, "status") == [["2024-05-21 10:00:00", "li", "", "意向客户"]]
    assert udfs.CRM_HISTORY(crm.li, "所属行业") == [["无修改记录"]]
    assert udfs.CRM_HISTORY("C209901010001", "status") == [["客户 C209901010001 不存在"]]
    assert udfs.CRM_HISTORY(crm.zhang, "nope")[0][0].startswith("客户没有字段“nope”")


def test_history_keeps_the_most_recent(crm):
    for i in range(lookup.HISTORY_ROWS + 5):
        clock.set_now(f"2024-06-01 10:{i:02d}:00")
        crm.store.update("customer", crm.li, {"remark": f"第{i}次"})
    rows = udfs.CRM_HISTORY(crm.li, "备注")
    assert len(rows) == lookup.HISTORY_ROWS
    assert rows[0] == ["2024-06-01 10:24:00", "admin", "第23次", "第24次"]


def test_dupes_exact_mobile_and_name_without_legal_suffix(crm):
    assert udfs.CRM_DUPES("上海示例科技股份有限公司", None) == crm.zhang
    assert udfs.CRM_DUPES(" 上海示例科技 有限公司 ", "") == crm.zhang  # whitespace
    assert udfs.CRM_DUPES("杭州云帆软件", None) == crm.li
    assert udfs.CRM_DUPES("别的公司", "+86 139-0000-1111") == crm.li
    assert udfs.CRM_DUPES("别的公司", 13900001111.0) == crm.li  # a phone Excel holds as a number
    assert udfs.CRM_DUPES("深圳星辰电子有限公司", "13900001111") == ", ".join(sorted([crm.li, crm.liu]))
    assert udfs.CRM_DUPES("别的公司", "13600000000") == ""
    assert udfs.CRM_DUPES(None, None) == ""


def test_dupes_finds_contacts_mobiles_and_skips_deleted(crm):
    with crm.store.transaction("admin") as tx:
        tx.create("contact", {"customer_id": crm.liu, "name": "王五", "mobile": "13655556666"})
    assert udfs.CRM_DUPES(None, "136 5555 6666") == crm.liu
    with crm.store.transaction("chen") as tx:
        tx.delete("customer", crm.liu, reason="重复")
    assert udfs.CRM_DUPES(None, "136 5555 6666") == ""


def test_name_key_compares_without_legal_suffixes_space_and_width():
    same = {lookup.name_key(n) for n in ("上海示例科技有限公司", "上海示例科技股份有限公司",
                                          "上海示例科技 有限责任公司", "上海示例科技集团有限公司", "上海示例科技")}
    assert same == {"上海示例科技"}
    assert lookup.name_key("ＡＢＣ科技有限公司") == lookup.name_key("abc 科技") == "abc科技"
    assert lookup.name_key("Acme Trading Co., Ltd.") == lookup.name_key("ACME TRADING") == "acmetrading"
    assert lookup.name_key("有限公司") == "有限公司"  # nothing but a suffix stays itself


def test_dupes_uses_crmsync_dedupe_when_it_provides_the_hook(crm, monkeypatch):
    asked = []

    def customer_matches(store, values):
        asked.append((type(store).__name__, values))
        return [(crm.liu, 0.93, "相似名称"), crm.li]

    monkeypatch.setitem(sys.modules, "crmsync.dedupe", types.SimpleNamespace(customer_matches=customer_matches))
    assert udfs.CRM_DUPES("深圳星晨电子", "13700002222") == ", ".join(sorted([crm.li, crm.liu]))
    assert asked == [("Store", {"customer_name": "深圳星晨电子", "mobile": "13700002222"})]
    lookup.close_all()
    monkeypatch.setitem(sys.modules, "crmsync.dedupe", types.SimpleNamespace())  # module, no hook
    assert udfs.CRM_DUPES("杭州云帆软件", None) == crm.li


def test_next_followup(crm):
    assert udfs.CRM_NEXT_FOLLOWUP(crm.zhang) == dt.datetime(2024, 6, 1, 9, 30)
    assert udfs.CRM_NEXT_FOLLOWUP(crm.li) == ""
    with crm.store.transaction("li") as tx:
        tx.create("followup", {"customer_id": crm.li, "follow_time": "2024-05-20 09:00", "method": "电话",
                               "content": "首次电话", "next_time": "2024-05-27 10:00"})
        tx.create("followup", {"customer_id": crm.li, "follow_time": "2024-05-21 09:00", "method": "拜访",
                               "content": "上门拜访", "next_time": "2024-06-03 14:00"})
    assert udfs.CRM_NEXT_FOLLOWUP(crm.li) == dt.datetime(2024, 6, 3, 14, 0)  # the latest follow-up's plan
    assert udfs.CRM_NEXT_FOLLOWUP("F202405210001").startswith("“F202405210001”不是有效的客户编号")
    assert udfs.CRM_NEXT_FOLLOWUP(None) == ""


def test_count(crm):
    assert udfs.CRM_COUNT("客户状态", "意向客户") == 3
    assert udfs.CRM_COUNT("status", "意向") == 3  # a synonym, as the drop-down check takes it
    assert udfs.CRM_COUNT("status", "成交客户") == 0
    assert udfs.CRM_COUNT("负责人", "li") == 1
    assert udfs.CRM_COUNT("所属行业", None) == 3  # empty counts the customers with it empty
    assert udfs.CRM_COUNT("标签", "决策快") == 1
    assert udfs.CRM_COUNT("累计交易金额", 1234.5) == 1
    assert udfs.CRM_COUNT("status", "暂停") == "客户状态“暂停”不在可选列表中，可选：潜在客户、意向客户、成交客户、流失客户"
    assert udfs.CRM_COUNT("nope", "x").startswith("客户没有字段“nope”")
    assert udfs.CRM_COUNT("status", (("a", "b"),)) == "请只传入一个单元格作为要计数的值"


# ---- permissions -------------------------------------------------------------------------------

def test_a_known_user_sees_only_what_they_may_view(crm, monkeypatch):
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "上海示例科技有限公司"
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == f"无权查看客户 {crm.li}"
    assert udfs.CRM_HISTORY(crm.li, "status") == [[f"无权查看客户 {crm.li}"]]
    assert udfs.CRM_NEXT_FOLLOWUP(crm.liu) == f"无权查看客户 {crm.liu}"
    assert udfs.CRM_COUNT("客户状态", "意向客户") == 1  # only zhang's own
    monkeypatch.setenv("CRMSYNC_USER", "wang")  # manager of east: zhang's and li's
    lookup.forget_settings()  # a running process re-reads its settings every CONF_TTL seconds
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == "杭州云帆软件有限公司"
    assert udfs.CRM_COUNT("客户状态", "意向客户") == 2
    assert udfs.CRM_LOOKUP(crm.liu, "客户名称") == f"无权查看客户 {crm.liu}"
    monkeypatch.setenv("CRMSYNC_USER", "ghost")
    lookup.forget_settings()
    assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "用户 ghost 不存在（CRMSYNC_USER）"


def test_sensitive_fields_are_masked_without_see_sensitive(crm, monkeypatch):
    monkeypatch.setitem(access.GRANTS, "see_sensitive", {"manager": access.TEAM, "admin": access.ALL})
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    assert udfs.CRM_LOOKUP(crm.zhang, "手机号") == "137****3333"
    assert udfs.CRM_LOOKUP(crm.zhang, "邮箱") == "z***@example.com"
    assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "上海示例科技有限公司"  # not sensitive
    assert udfs.CRM_HISTORY(crm.zhang, "mobile") == [
        ["2024-05-23 15:00:00", "wang", "138****5678", "137****3333"],
        ["2024-05-21 10:00:00", "zhang", "", "138****5678"]]
    assert udfs.CRM_HISTORY(crm.zhang)[0][3:] == ["138****5678", "137****3333"]
    monkeypatch.setenv("CRMSYNC_USER", "wang")
    lookup.forget_settings()
    assert udfs.CRM_LOOKUP(crm.zhang, "手机号") == "13700003333"


def test_mask_shapes():
    from crmsync.schema import CUSTOMER

    assert lookup.mask(CUSTOMER.get("id_number"), "11010519491231002X") == "110105********002X"
    assert lookup.mask(CUSTOMER.get("phone"), "010-12345678") == "010*****5678"
    assert lookup.mask(CUSTOMER.get("phone"), "12345") == "****"


# ---- freshness and the cache -------------------------------------------------------------------

def test_another_connections_commit_is_seen_on_the_next_call(crm):
    assert udfs.CRM_LOOKUP(crm.li, "客户状态") == "意向客户"
    assert udfs.CRM_COUNT("客户状态", "成交客户") == 0
    other = Store(crm.path)  # a second Store: its own connection, as another process has
    other.update("customer", crm.li, {"status": "成交客户"}, user="li", reason="签约")
    other.close()
    assert udfs.CRM_LOOKUP(crm.li, "客户状态") == "成交客户"
    assert udfs.CRM_COUNT("客户状态", "成交客户") == 1
    assert udfs.CRM_HISTORY(crm.li, "status")[0][2:] == ["意向客户", "成交客户"]


def test_another_processs_commit_is_seen_on_the_next_call(crm):
    assert udfs.CRM_LOOKUP(crm.li, "手机号") == "13900001111"
    assert udfs.CRM_DUPES(None, "13911112222") == ""
    code = ("import sys; from crmsync.store import Store\n"
            "s = Store(sys.argv[1]); s.update('customer', sys.argv[2], {'mobile': '139 1111 2222'}, user='li')\n"
            "s.close()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
    env |= {"CRMSYNC_NOW": "2024-05-24 09:00:00", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code, str(crm.path), crm.li], check=True, env=env,
                   capture_output=True, timeout=120)
    assert udfs.CRM_LOOKUP(crm.li, "手机号") == "13911112222"
    assert udfs.CRM_DUPES(None, "13911112222") == crm.li
    assert udfs.CRM_HISTORY(crm.li, "手机号")[0] == ["2024-05-24 09:00:00", "li", "13900001111", "13911112222"]


def test_lists_and_custom_fields_changed_elsewhere_are_seen(crm):
    assert udfs.CRM_LOOKUP(crm.zhang, "微信号").startswith("客户没有字段“微信号”")
    other = Store(crm.path)
    other.add_custom_field("customer", "wechat", "微信号", "WeChat")
    other.update("customer", crm.zhang, {"wechat": "wx_zhang"})
    other.close()
    assert udfs.CRM_LOOKUP(crm.zhang, "微信号") == "wx_zhang"
    assert udfs.CRM_COUNT("WeChat", "wx_zhang") == 1


def test_a_cache_hit_runs_no_query(crm):
    assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "上海示例科技有限公司"  # warm
    assert udfs.CRM_COUNT("客户状态", "意向客户") == 3
    reader = lookup.current()
    statements: list[str] = []
    reader._raw.set_trace_callback(statements.append)
    before = dict(reader.stats)
    for _ in range(3):
        assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "上海示例科技有限公司"
        assert udfs.CRM_COUNT("客户状态", "意向客户") == 3
    assert statements == ["PRAGMA data_version"] * 6  # the change check, nothing else
    assert reader.stats["hits"] - before.get("hits", 0) == 6
    statements.clear()
    assert udfs.CRM_LOOKUP(crm.zhang, "手机号") == "13700003333"  # same record, other field
    assert statements == ["PRAGMA data_version"]  # the row itself was cached
    reader._raw.set_trace_callback(None)


def test_a_miss_is_one_select_by_key(crm):
    reader = lookup.current()
    reader.value(crm.zhang, "客户名称")  # loads settings (lists, fields, user)
    statements: list[str] = []
    reader._raw.set_trace_callback(statements.append)
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == "杭州云帆软件有限公司"
    assert statements[0] == "PRAGMA data_version" and len(statements) == 2
    assert statements[1].startswith('SELECT "customer_id", ') and 'WHERE "customer_id" = ' in statements[1]
    reader._raw.set_trace_callback(None)


def test_errors_are_cached_until_the_store_changes(crm):
    missing = "C202405210099"
    assert udfs.CRM_LOOKUP(missing, "客户名称") == f"客户 {missing} 不存在"
    reader = lookup.current()
    hits = reader.stats["hits"]
    assert udfs.CRM_LOOKUP(missing, "客户名称") == f"客户 {missing} 不存在"
    assert reader.stats["hits"] == hits + 1


def test_ttl_mode_for_stores_without_a_change_counter(crm):
    reader = lookup.Lookup(crm.path, watch="ttl", ttl=60)
    try:
        assert reader.value(crm.li, "客户状态") == "意向客户"
        crm.store.update("customer", crm.li, {"status": "成交客户"}, user="li", reason="签约")
        assert reader.value(crm.li, "客户状态") == "意向客户"  # within the ttl: the cached answer
        reader._stamp -= 60  # the ttl has passed
        assert reader.value(crm.li, "客户状态") == "成交客户"
    finally:
        reader.close()


# ---- finding the store -------------------------------------------------------------------------

def test_no_store_configured_is_a_message():
    text = udfs.CRM_LOOKUP("C202405210001", "客户名称")
    assert text.startswith("未配置中心库") and "CRMSYNC_STORE" in text
    assert udfs.CRM_HISTORY("C202405210001", "status") == [[text]]
    assert udfs.CRM_COUNT("status", "潜在客户") == text


def test_a_missing_or_foreign_store_is_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMSYNC_STORE", str(tmp_path / "nowhere.db"))
    assert udfs.CRM_LOOKUP("C202405210001", "客户名称") == f"中心库 {tmp_path / 'nowhere.db'} 不存在；请检查 CRMSYNC_STORE"
    assert not (tmp_path / "nowhere.db").exists()  # a reader never creates a store
    import sqlite3

    foreign = tmp_path / "other.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    monkeypatch.setenv("CRMSYNC_STORE", str(foreign))
    lookup.forget_settings()
    assert udfs.CRM_COUNT("status", "潜在客户").startswith(f"{foreign} 不是 crmsync 中心库")


def test_a_store_that_cannot_be_opened_is_not_retried_on_every_call(store_path, monkeypatch):
    opened = []

    class Counting(lookup.Lookup):
        def __init__(self, *a, **k):
            opened.append(a[0])
            super().__init__(*a, **k)

    monkeypatch.setattr(lookup, "Lookup", Counting)
    monkeypatch.setenv("CRMSYNC_STORE", str(store_path))
    for _ in range(3):
        assert udfs.CRM_LOOKUP("C202405210001", "客户名称").endswith("不存在；请检查 CRMSYNC_STORE")
    assert len(opened) == 1  # e.g. a PostgreSQL server that is down: not a timeout per cell
    Store(store_path, create=True).close()
    assert udfs.CRM_LOOKUP("C202405210001", "客户名称").endswith("不存在；请检查 CRMSYNC_STORE")  # within CONF_TTL
    lookup.forget_settings()
    assert udfs.CRM_LOOKUP("C202405210001", "客户名称") == "客户 C202405210001 不存在"


class _ConfBook:
    """What read_config_sheet and settings() touch on the calling workbook."""

    def __init__(self, conf: dict, fullname: Path):
        self.fullname = str(fullname)
        rng = types.SimpleNamespace(value=conf)
        rng.options = lambda *a, **k: rng
        self.sheets = {"xlwings.conf": {"A1:B1": rng}}


def test_the_calling_workbooks_conf_names_the_store_and_language(crm, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMSYNC_STORE", str(tmp_path / "elsewhere.db"))  # the workbook wins
    book = _ConfBook({"UDF MODULES": "crmsync.udfs", "CRMSYNC_STORE": crm.path.name, "CRMSYNC_LANG": "en"},
                     crm.path.parent / "crm_workbook.xlsm")
    monkeypatch.setattr(lookup_config, "_caller_book", lambda: book)
    s = lookup.settings()
    assert (s.store, s.lang, s.origin) == (str(crm.path), "en", "xlwings.conf")  # relative → the book's folder
    assert udfs.CRM_LOOKUP(crm.li, "Status") == "Interested"
    assert udfs.CRM_LOOKUP(crm.li, "nope").startswith("no field 'nope' in Customers")


def test_an_empty_conf_value_falls_back_to_the_environment(crm, monkeypatch):
    book = _ConfBook({"CRMSYNC_STORE": None, "CRMSYNC_LANG": "zh"}, crm.path.parent / "b.xlsm")
    monkeypatch.setattr(lookup_config, "_caller_book", lambda: book)
    assert lookup.settings().origin == "CRMSYNC_STORE"
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == "杭州云帆软件有限公司"


def test_the_user_never_comes_from_the_workbook(crm, monkeypatch):
    book = _ConfBook({"CRMSYNC_STORE": str(crm.path), "CRMSYNC_USER": "zhang"}, crm.path)
    monkeypatch.setattr(lookup_config, "_caller_book", lambda: book)
    monkeypatch.setenv("CRMSYNC_USER", "liu")
    assert lookup.settings().user == "liu"
    assert udfs.CRM_LOOKUP(crm.liu, "客户名称") == "深圳星辰电子股份有限公司"


def test_settings_are_read_again_after_conf_ttl(crm, monkeypatch):
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == "杭州云帆软件有限公司"
    monkeypatch.setenv("CRMSYNC_USER", "zhang")
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == "杭州云帆软件有限公司"  # within CONF_TTL
    monkeypatch.setattr(lookup_config, "_settings_at", lookup_config._settings_at - lookup.CONF_TTL)
    monkeypatch.setattr(lookup_config, "_current_at", lookup_config._current_at - lookup.CONF_TTL)
    assert udfs.CRM_LOOKUP(crm.li, "客户名称") == f"无权查看客户 {crm.li}"


def test_outside_excel_there_is_no_caller_book():
    assert lookup_config._caller_book() is None
    assert lookup.workbook_conf() == ({}, None)


def test_an_unexpected_error_is_one_line_not_a_traceback(crm, monkeypatch):
    def boom(self, *a):
        raise RuntimeError("disk I/O error\n  File something")

    monkeypatch.setattr(lookup.Lookup, "value", boom)
    assert udfs.CRM_LOOKUP(crm.zhang, "客户名称") == "出错：RuntimeError: disk I/O error"


# ---- as Excel calls them: through xlwings' conversion with the declared options ------------------

def test_through_xlwings_validation(excel):
    assert excel("CRM_VALID", 13812345678.0, "mobile") == [[""]]
    assert excel("CRM_VALID", None, "手机号") == [[""]]
    assert excel("CRM_VALID", "1381234567", "mobile") == [["手机号“1381234567”不是有效的11位大陆手机号"]]
    assert excel("CRM_NORMALIZE", "+86 138-1234-5678", "mobile") == [["13812345678"]]
    assert excel("CRM_NORMALIZE", 13812345678.0, "mobile") == [["13812345678"]]
    assert excel("CRM_VALID", (("13812345678", "x"),), "mobile") == [["请只传入一个单元格"]]


def test_through_xlwings_store_functions(excel, crm):
    assert excel("CRM_LOOKUP", crm.zhang, "客户名称") == [["上海示例科技有限公司"]]
    assert excel("CRM_LOOKUP", crm.zhang, "累计交易金额") == [[1234.5]]
    assert excel("CRM_LOOKUP", crm.zhang, "首次合作时间") == [[dt.date(2024, 1, 2)]]  # an Excel date
    assert excel("CRM_LOOKUP", crm.zhang, "所属行业") == [[""]]
    assert excel("CRM_LOOKUP", None, "客户名称") == [[""]]  # an empty id cell
    assert excel("CRM_LOOKUP", ((crm.zhang,), (crm.li,)), "客户名称") == [["请只传入一个单元格作为编号"]]
    assert excel("CRM_DUPES", "上海示例科技股份有限公司", 13812345678.0) == [[crm.zhang]]
    assert excel("CRM_NEXT_FOLLOWUP", crm.zhang) == [[dt.datetime(2024, 6, 1, 9, 30)]]
    assert excel("CRM_COUNT", "客户状态", "意向客户") == [[3]]
    assert excel("CRM_COUNT", "累计交易金额", 1234.5) == [[1]]


def test_through_xlwings_history_spills_as_rows(excel, crm):
    assert "expand" not in excel.info("CRM_HISTORY")["ret"]["options"]  # native dynamic arrays spill
    assert excel.info("CRM_HISTORY")["args"][1]["optional"] is None
    with_field = excel("CRM_HISTORY", crm.zhang, "客户状态")
    assert with_field == [["2024-05-22 11:00:00", "zhang", "潜在客户", "意向客户"],
                          ["2024-05-21 10:00:00", "zhang", "", "潜在客户"]]
    omitted = excel("CRM_HISTORY", crm.zhang)  # field left out: Excel passes "missing"
    assert len(omitted) == 3 and {len(r) for r in omitted} == {5}
    assert excel("CRM_HISTORY", crm.zhang, None) == omitted  # an empty cell as the field
    assert excel("CRM_HISTORY", "C209901010001", "status") == [["客户 C209901010001 不存在"]]

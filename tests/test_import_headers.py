"""Finding the header under title rows and matching legacy column names to fields."""

from __future__ import annotations

import pytest

from crmsync.errors import InvalidInput
from crmsync.headers import find_header_row, match_columns, parse_mapping
from crmsync.schema import CUSTOMER


def _fields(header: list) -> list:
    return [c.field for c in match_columns(header, CUSTOMER).columns]


def test_header_is_found_under_title_and_note_rows():
    grid = [["2023年客户名单", None, None], ["导出人：张三", "导出日期：2023-12-31"], [None, None, None],
            ["单位名称", "联系电话", "备注"], ["甲公司", 13812345678.0, None]]
    assert find_header_row(grid, CUSTOMER) == 3


def test_a_title_that_names_a_field_does_not_beat_the_real_header():
    grid = [["客户"], ["客户名称", "手机号", "邮箱"], ["甲公司", "13812345678", "a@b.cn"]]
    assert find_header_row(grid, CUSTOMER) == 1


@pytest.mark.parametrize("header,fields", [
    (["公司名称", "手机", "地址"], ["customer_name", "mobile", "address"]),
    (["单位名称", "联系电话", "所在城市"], ["customer_name", "mobile", "city"]),
    (["客户", "电话", "行业"], ["customer_name", "mobile", "industry"]),
    (["Company Name", "Mobile Phone", "E-mail", "Lead Source"], ["customer_name", "mobile", "email", "source"]),
    (["客户名称*", "手机号（必填）", "备注(选填)"], ["customer_name", "mobile", "remark"]),
    (["ＥＭＡＩＬ", " 客户 名称 "], ["email", "customer_name"]),
])
def test_columns_match_by_label_or_synonym_in_any_order(header, fields):
    assert _fields(header) == fields


def test_a_second_phone_column_becomes_the_landline_and_a_third_is_kept_unmapped():
    cols = match_columns(["手机", "电话", "联系方式", "客户名称"], CUSTOMER).columns
    assert [(c.header, c.field) for c in cols] == [("手机", "mobile"), ("电话", "phone"), ("联系方式", None),
                                                   ("客户名称", "customer_name")]
    assert cols[2].why == "repeat"


def test_an_exact_label_wins_over_an_earlier_synonym():
    # 名称 is a synonym of customer_name; the real label 客户名称 later in the row keeps it
    assert _fields(["名称", "客户名称"]) == [None, "customer_name"]


def test_store_assigned_fields_are_not_importable():
    cols = match_columns(["客户编号", "客户名称", "版本"], CUSTOMER).columns
    assert [c.field for c in cols] == [None, "customer_name", None]
    assert cols[0].why == "system"


def test_map_overrides_win_and_are_checked():
    overrides = parse_mapping(["老编号=remark", "负责销售=负责人"], CUSTOMER)
    cols = match_columns(["老编号", "客户名称", "负责销售"], CUSTOMER, overrides).columns
    assert [c.field for c in cols] == ["remark", "customer_name", "owner"]
    for bad in (["没有等号"], ["=customer_name"], ["列="], ["列=version"]):
        with pytest.raises(InvalidInput):
            parse_mapping(bad, CUSTOMER)

"""Whole rows and tables: every problem as (row, field, code, message), cross-field rules, odd input."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

import pydantic
import pytest
from records import customer

from crmsync.schema import CUSTOMER, ENTITIES
from crmsync.validate import MESSAGES, Problem, model_for, validate_record, validate_table

USCC = "91350100M000100Y43"
RIC = "11010519491231002X"


def found(result_or_problems):
    """Return (row, field, code) of each problem."""
    problems = getattr(result_or_problems, "problems", result_or_problems)
    return [(p.row, p.field, p.code) for p in problems]


# ---- a clean table ---------------------------------------------------------------------------

def test_a_clean_table_has_no_problems_and_comes_back_normalised():
    rows = [
        customer(mobile=13812345678.0, status="流失客户", lost_reason="价格过高", credit_code=USCC.lower(),
                 first_deal_date=45433, total_amount="¥1,234.50", tags="华东，VIP"),
        customer(customer_type="个人客户", mobile="+86 139-1234-5678", id_number=RIC, credit_code=None,
                 first_deal_date="2024年5月1日", email=" Li@QQ.com ", remark="第一行\r\n第二行"),
    ]
    result = validate_table(rows, "customer")
    assert result.ok and result.problems == []
    first, second = result.rows
    assert first["mobile"] == "13812345678" and first["status"] == "lost" and first["lost_reason"] == "price"
    assert first["credit_code"] == USCC and first["first_deal_date"] == "2024-05-21"
    assert first["total_amount"] == 1234.5 and first["tags"] == "华东,VIP"
    assert second["customer_type"] == "individual" and second["mobile"] == "13912345678"
    assert second["first_deal_date"] == "2024-05-01" and second["email"] == "Li@qq.com"
    assert second["remark"] == "第一行\n第二行"


def test_rows_keep_their_keys_and_unknown_columns_untouched():
    rows = [customer(extra_column=[1, 2]), {"customer_name": "乙公司", "customer_type": "企业",
                                            "status": "潜在", "email": "a@b.com", "备注2": "x"}]
    result = validate_table(rows, "customer")
    assert result.rows[0].keys() == rows[0].keys() and result.rows[0]["extra_column"] == [1, 2]
    assert result.rows[1].keys() == rows[1].keys() and result.rows[1]["备注2"] == "x"


# ---- every problem, never only the first -----------------------------------------------------

def test_every_problem_of_every_row_is_returned_in_row_then_column_order():
    rows = [
        customer(mobile="1381234567", email="not-an-email", status="合作", first_deal_date="2024-13-45"),
        customer(),
        customer(customer_name=None, credit_code="91350100M000100Y44", remark="备" * 501),
    ]
    result = validate_table(rows, "customer", row_numbers=[2, 3, 4])
    assert found(result) == [
        (2, "mobile", "invalid_mobile"), (2, "email", "invalid_email"), (2, "status", "not_in_list"),
        (2, "first_deal_date", "invalid_date"),
        (4, "customer_name", "required"), (4, "credit_code", "invalid_credit_code"), (4, "remark", "too_long"),
    ]
    assert all(isinstance(p, Problem) and p.message for p in result.problems)
    assert [p.value for p in result.problems[:2]] == ["1381234567", "not-an-email"]
    assert set(result.by_row()) == {2, 4}
    assert not result.ok


def test_a_problem_in_every_row_of_a_large_table_is_reported_every_time():
    rows = [customer(mobile=f"1{i:09d}") for i in range(2000)]  # ten digits: never a mobile
    result = validate_table(rows, "customer", row_numbers=range(2, 2002))
    assert [p.row for p in result.problems] == list(range(2, 2002))
    assert {p.code for p in result.problems} == {"invalid_mobile"}


def test_default_row_number_is_the_index_and_row_numbers_must_match():
    result = validate_table([customer(), customer(mobile="x")], "customer")
    assert found(result) == [(1, "mobile", "invalid_mobile")]
    with pytest.raises(ValueError):
        validate_table([customer()], "customer", row_numbers=[1, 2])


# ---- messages: Chinese by default, English on request ----------------------------------------

def test_messages_are_chinese_by_default_and_english_with_lang_en():
    rows = [customer(mobile="1381234567", status="流失客户")]
    zh = validate_table(rows, "customer")
    en = validate_table(rows, "customer", lang="en")
    assert [p.message for p in zh.problems] == [
        "手机号“1381234567”不是有效的11位大陆手机号",
        "客户状态为“流失客户”时必须填写流失原因",
    ]
    assert [p.message for p in en.problems] == [
        "Mobile '1381234567' is not a valid 11-digit mainland mobile number",
        "Lost reason is required when Status is 'Lost'",
    ]
    assert found(zh) == found(en)


def test_each_message_names_the_column_label_in_its_language():
    rows = [customer(customer_name="", email="x@", credit_code="123", first_deal_date="明天", tags=object(),
                     industry="航天", total_amount="面议", next_follow_up="下周", province="省" * 21)]
    for lang in ("zh", "en"):
        result = validate_table(rows, "customer", lang=lang, row_numbers=[7])
        assert len(result.problems) == 9
        for p in result.problems:
            assert p.row == 7
            assert CUSTOMER.get(p.field).label(lang) in p.message
            assert "\n" not in p.message and "{" not in p.message


def test_every_message_template_has_both_languages():
    for code, (zh, en) in MESSAGES.items():
        assert zh and en and zh != en, code
        assert all(ord(c) < 0x3000 for c in en), f"{code}: Chinese in the English message"


def test_messages_show_invisible_characters_and_cut_long_values():
    result = validate_table([customer(mobile="138\u200b1234" + "5" * 200)], "customer")
    (p,) = result.problems
    assert "<U+200B>" in p.message and "…" in p.message and len(p.message) < 100


# ---- rules across fields ---------------------------------------------------------------------

def test_lost_customer_needs_a_lost_reason():
    rows = [customer(status="流失客户"), customer(status="流失客户", lost_reason="选择竞品"),
            customer(status="成交客户"), customer(status="Lost", lost_reason=""),
            customer(status="流失客户", lost_reason="不知道")]
    result = validate_table(rows, "customer")
    assert found(result) == [(0, "lost_reason", "lost_reason_required"),
                             (3, "lost_reason", "lost_reason_required"),
                             (4, "lost_reason", "not_in_list")]  # a wrong reason is reported once


def test_lost_reason_rule_is_not_reported_over_a_bad_status():
    result = validate_table([customer(status="流失了")], "customer")
    assert found(result) == [(0, "status", "not_in_list")]


def test_record_path_applies_the_lost_reason_rule():
    row, problems = validate_record(customer(status="流失"), "customer")
    assert row["status"] == "lost"
    assert found(problems) == [(0, "lost_reason", "lost_reason_required")]
    assert problems[0].message == "客户状态为“流失客户”时必须填写流失原因"


def test_first_deal_date_not_in_the_future_and_not_before_created():
    # the clock is fixed at 2024-05-21 10:00 (conftest)
    rows = [customer(first_deal_date="2024-05-21"), customer(first_deal_date="2024-05-22"),
            customer(first_deal_date=datetime(2030, 1, 1)),
            customer(first_deal_date="2024-01-01", created_at="2024-02-01 09:00:00"),
            customer(first_deal_date="2024-02-01", created_at="2024-02-01 09:00:00")]
    result = validate_table(rows, "customer")
    assert found(result) == [(1, "first_deal_date", "date_in_future"), (2, "first_deal_date", "date_in_future"),
                             (3, "first_deal_date", "date_before_created")]
    assert result.problems[0].message == "首次合作时间“2024-05-22”晚于今天（2024-05-21）"
    assert result.problems[2].message == "首次合作时间“2024-01-01”早于录入时间（2024-02-01 09:00:00）"


def test_today_can_be_given():
    result = validate_table([customer(first_deal_date="2024-05-22")], "customer", today=date(2024, 6, 1))
    assert result.ok


def test_follow_up_next_time_must_be_after_the_follow_up_time():
    base = {"customer_id": "C202405210001", "follow_time": "2024-05-21 10:00", "method": "电话", "content": "沟通报价"}
    rows = [dict(base, next_time="2024-05-22 10:00"), dict(base, next_time="2024-05-21 10:00"),
            dict(base, next_time="2024-05-20"), dict(base, next_time=None)]
    result = validate_table(rows, "followup", lang="en")
    assert found(result) == [(1, "next_time", "next_before_time"), (2, "next_time", "next_before_time")]
    assert result.problems[1].message == \
        "Next time '2024-05-20 00:00:00' must be after Time (2024-05-21 10:00:00)"


def test_service_cannot_close_before_it_opened():
    base = {"customer_id": "C202405210001", "service_type": "投诉", "problem": "发票开错", "service_status": "已解决"}
    rows = [dict(base, opened_at="2024-05-20 09:00", closed_at="2024-05-20 09:00"),
            dict(base, opened_at="2024-05-20 09:00", closed_at="2024-05-19 18:00")]
    assert found(validate_table(rows, "service")) == [(1, "closed_at", "closed_before_opened")]


def test_enterprise_takes_a_credit_code_and_individual_an_id_number():
    rows = [customer(id_number=RIC), customer(customer_type="个人", credit_code=USCC),
            customer(customer_type="个人", id_number=RIC)]
    result = validate_table(rows, "customer")
    assert found(result) == [(0, "id_number", "wrong_id_kind"), (1, "credit_code", "wrong_id_kind")]
    assert result.problems[0].message == f"企业客户应填写统一社会信用代码，不应填写证件号码“{RIC}”"


def test_a_customer_needs_a_way_to_be_reached():
    rows = [customer(mobile=None), customer(mobile=None, email="a@b.com"), customer(mobile=None, phone="010-12345678")]
    result = validate_table(rows, "customer")
    assert found(result) == [(0, "mobile", "contact_missing")]
    assert result.problems[0].message == "请至少填写手机号、座机或邮箱中的一项"


# ---- required fields -------------------------------------------------------------------------

@pytest.mark.parametrize("empty", [None, "", "   ", "\u3000", float("nan")])
def test_required_fields_cannot_be_empty(empty):
    rows = [customer(customer_name=empty, customer_type=empty, status=empty)]
    result = validate_table(rows, "customer")
    assert found(result) == [(0, "customer_name", "required"), (0, "customer_type", "required"),
                             (0, "status", "required")]
    assert result.problems[0].message == "客户名称不能为空"


def test_required_field_missing_from_every_row_is_reported_on_every_row():
    rows = [{"customer_type": "企业", "status": "潜在", "mobile": "13812345678"}] * 3
    assert found(validate_table(rows, "customer")) == [(i, "customer_name", "required") for i in range(3)]


def test_required_fields_of_a_follow_up():
    result = validate_table([{"next_step": "再约"}], "followup", lang="en")
    assert found(result) == [(0, "customer_id", "required"), (0, "follow_time", "required"),
                             (0, "method", "required"), (0, "content", "required")]
    assert result.problems[2].message == "Method is required"


def test_partial_rows_only_check_the_keys_they_have():
    result = validate_table([{"mobile": "138 1234 5678"}, {"customer_name": ""}], "customer", partial=True)
    assert found(result) == [(1, "customer_name", "required")]
    assert result.rows == [{"mobile": "13812345678"}, {"customer_name": None}]
    row, problems = validate_record({"status": "流失"}, "customer", partial=True)
    assert row == {"status": "lost"} and problems == []


# ---- odd input: problems, never exceptions ---------------------------------------------------

class Unprintable:
    def __str__(self):
        raise RuntimeError("no str")

    __repr__ = __str__

    def __eq__(self, other):
        raise RuntimeError("no ==")

    __hash__ = None


ODD = [
    None, float("nan"), float("inf"), b"13812345678", bytearray(b"\xff"), "x" * 1_000_000, "\x00\ud800",
    [1, [2, [3]]], {"a": {"b": None}}, (1,), {1, 2}, object(), Unprintable(), True, False, 10**5000, -(2**64),
    Decimal("NaN"), Decimal("sNaN"), Decimal("1e999"), complex(1, 1), datetime.min, date.max, type, print,
    Ellipsis, range(3), "#N/A", "\u200b", -0.0, 1e308,
]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_odd_values_in_every_field_give_problems_not_exceptions(entity):
    ent = ENTITIES[entity]
    rows = [{k: v for k in ent.keys} for v in ODD]
    for lang in ("zh", "en"):
        result = validate_table(rows, entity, lang=lang)
        assert len(result.rows) == len(rows)
        assert {p.row for p in result.problems} >= {i for i, v in enumerate(ODD) if v is not None
                                                    and not (isinstance(v, float) and math.isnan(v))
                                                    and not isinstance(v, Decimal)}
        for p in result.problems:
            assert p.code in MESSAGES and isinstance(p.message, str) and p.message
        for values in rows:
            validate_record(values, entity, lang=lang)


def test_odd_values_in_a_mixed_column():
    rows = [customer(mobile=v, first_deal_date=v, status=v, remark=v) for v in ODD]
    result = validate_table(rows, "customer")
    bad_mobile = {p.row for p in result.problems if p.field == "mobile" and p.code != "contact_missing"}
    assert 0 not in bad_mobile and 1 not in bad_mobile  # None and NaN are empty, not wrong
    assert {2, 3, 5, 7, 11, 12, 13} <= bad_mobile


def test_numbers_that_compare_equal_are_still_checked_by_their_own_type():
    # 1 == 1.0 == True: a column checked once per distinct value must not mix them up
    rows = [customer(mobile=v) for v in (True, 1, 1.0, 13812345678, 13812345678.0, False, 0)]
    assert found(validate_table(rows, "customer")) == [
        (0, "mobile", "invalid_mobile"), (1, "mobile", "invalid_mobile"), (2, "mobile", "invalid_mobile"),
        (5, "mobile", "invalid_mobile"), (6, "mobile", "invalid_mobile")]
    big = [customer(total_amount=v) for v in (10**15, 1e15, 10**15 + 1)]
    assert found(validate_table(big, "customer")) == [(i, "total_amount", "out_of_range") for i in range(3)]


def test_a_row_that_is_not_a_mapping_is_a_programming_error():
    with pytest.raises(TypeError):
        validate_table([customer(), ["not", "a", "row"]], "customer")
    with pytest.raises(TypeError):
        validate_record(["x"], "customer")


def test_a_dataframe_is_validated_like_a_list_of_rows():
    pd = pytest.importorskip("pandas")
    rows = [customer(mobile=13812345678.0, first_deal_date=pd.Timestamp("2024-05-01")),
            customer(mobile=float("nan"), email="a@b.com", first_deal_date=pd.NaT),
            customer(mobile="1381234567", first_deal_date="2024/5/2")]
    frame = pd.DataFrame(rows)
    result = validate_table(frame, "customer")
    assert found(result) == [(2, "mobile", "invalid_mobile")]
    assert result.rows[0]["mobile"] == "13812345678" and result.rows[1]["mobile"] is None
    assert [r["first_deal_date"] for r in result.rows] == ["2024-05-01", None, "2024-05-02"]
    plain = validate_table([{k: (None if k == "mobile" and v != v else v) for k, v in r.items()} for r in rows],
                           "customer")
    assert found(plain) == found(result)


def test_empty_table():
    result = validate_table([], "customer")
    assert result.rows == [] and result.problems == [] and result.ok


# ---- the record path agrees with the table path ----------------------------------------------

def test_record_and_table_paths_give_the_same_problems():
    values = customer(mobile="1381234567", status="流失", email="x", first_deal_date="2099-01-01",
                      id_number=RIC, remark="备" * 501)
    row, problems = validate_record(values, "customer", lang="en")
    table = validate_table([values], "customer", lang="en")
    assert [(p.field, p.code, p.message) for p in problems] == \
        [(p.field, p.code, p.message) for p in table.problems]
    assert row == table.rows[0]


def test_the_model_on_its_own_raises_like_any_pydantic_model():
    model = model_for("customer")
    record = model.model_validate(customer(mobile="+86 138 1234 5678", status="意向"))
    assert record.as_row()["mobile"] == "13812345678" and record.as_row()["status"] == "intent"
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(customer(mobile="123"))
    assert "手机号“123”不是有效的11位大陆手机号" in str(info.value)
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(customer(status="流失"), context={"lang": "en"})
    assert "Lost reason is required" in str(info.value)


def test_columns_give_the_same_problems_and_values_as_rows():
    from crmsync.validate import validate_columns

    rows = [customer(), customer(mobile="1381234567", status="流失客户"),
            customer(customer_name="", email="bad@", first_deal_date="2024年5月21日"),
            customer(mobile=13812345678.0, unknown_column="kept out")]
    by_rows = validate_table(rows, "customer", row_numbers=[2, 3, 4, 5])
    keys = {k for r in rows for k in r}
    columns = {k: [r.get(k) for r in rows] for k in keys}
    normalised, problems = validate_columns(columns, "customer", row_numbers=[2, 3, 4, 5])
    assert [(p.row, p.field, p.code, p.message) for p in problems] == \
        [(p.row, p.field, p.code, p.message) for p in by_rows.problems]
    assert problems  # the table above has several
    assert normalised["mobile"][3] == "13812345678"
    assert "unknown_column" not in normalised


def test_columns_of_different_lengths_are_refused():
    from crmsync.validate import validate_columns

    with pytest.raises(ValueError):
        validate_columns({"customer_name": ["a", "b"], "mobile": ["13812345678"]}, "customer")

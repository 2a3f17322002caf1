"""One value at a time: each normaliser of DESIGN.md §8 on the values users and Excel really give."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crmsync import clock
from crmsync.normalise import normalise_value, uscc_check_char
from crmsync.validate import check_value

# A unified social credit code and a resident ID number with correct check characters.
USCC = "91350100M000100Y43"
RIC = "11010519491231002X"


def ok(value, kind):
    """Return the normalised value, failing the test when the value is reported."""
    normalised, code = normalise_value(value, kind)
    assert code is None, f"{value!r} as {kind}: {code}"
    return normalised


def code_of(value, kind):
    return normalise_value(value, kind)[1]


# ---- mobiles -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "13812345678", "+8613812345678", "+86 138 1234 5678", "+86-138-1234-5678", "0086 13812345678",
    "0086-138-1234-5678", "8613812345678", "138-1234-5678", "138 1234 5678", " 13812345678 ",
    "(138)1234-5678", "１３８１２３４５６７８", "＋８６ １３８ １２３４ ５６７８", "138\u30001234\u30005678",
    13812345678, 13812345678.0, Decimal("13812345678"), "13812345678.0", "1.3812345678E+10",
])
def test_mobile_forms_from_people_and_excel_become_eleven_digits(value):
    assert ok(value, "mobile") == "13812345678"


@pytest.mark.parametrize("value", [
    "1381234567",  # 10 digits
    "138123456789",  # 12 digits
    "12812345678",  # second digit must be 3-9
    "23812345678", "+1 13812345678", "+8513812345678", "138-1234-567a", "abc", "13812345678.5",
    -13812345678, "0138123456789", "010-12345678",  # a landline is not a mobile
])
def test_bad_mobiles_are_reported(value):
    assert code_of(value, "mobile") == "invalid_mobile"


@pytest.mark.parametrize("value, kind, expected", [
    ("138１２３４５６７８", "mobile", "13812345678"), ("１１０１０５１９４９１２３１００２X", "id_number", RIC),
    ("9135０100M000100Y43", "credit_code", USCC), ("010-１２３４５６７８", "phone", "010-12345678"),
])
def test_digits_partly_typed_full_width_are_folded_not_stored_as_typed(value, kind, expected):
    assert ok(value, kind) == expected


@pytest.mark.parametrize("value, kind", [("١٣٨١٢٣٤٥٦٧٨", "mobile"), ("१३८१२३४५६७८", "mobile"), ("٠١٢", "int")])
def test_digits_of_other_scripts_are_not_numbers_here(value, kind):
    assert code_of(value, kind) in ("invalid_mobile", "invalid_int")


def test_mobile_that_excel_shortened_to_scientific_notation_says_digits_were_lost():
    assert code_of("1.38123E+10", "mobile") == "lost_digits"
    assert code_of(1.3812345678901234e19, "mobile") == "lost_digits"
    assert "丢失位数" in check_value("1.38123E+10", "mobile")


def test_mobile_message_names_the_column_and_the_value():
    assert check_value("1381234567", "mobile") == "手机号“1381234567”不是有效的11位大陆手机号"
    assert check_value("1381234567", "mobile", lang="en") == \
        "Mobile '1381234567' is not a valid 11-digit mainland mobile number"
    assert check_value("13812345678", "mobile") == ""


# ---- landlines -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("010-12345678", "010-12345678"), ("01012345678", "010-12345678"), ("(010) 1234 5678", "010-12345678"),
    ("021 12345678", "021-12345678"), ("0755-1234567", "0755-1234567"), ("0755 8765 4321", "0755-87654321"),
    ("+86 10 1234 5678", "010-12345678"), ("0086-21-12345678", "021-12345678"),
    ("010-12345678转123", "010-12345678-123"), ("010-12345678 ext. 8", "010-12345678-8"),
    ("400-123-4567", "400-123-4567"), ("4001234567", "400-123-4567"), ("13812345678", "13812345678"),
    ("０１０－１２３４５６７８", "010-12345678"),
    (1012345678, "010-12345678"),  # Excel dropped the leading zero of the area code
    (1012345678.0, "010-12345678"),
])
def test_landlines_with_area_code_are_accepted_in_the_phone_field(value, expected):
    assert ok(value, "phone") == expected


@pytest.mark.parametrize("value", ["12345", "12345678", "010-1234", "010-012345678", "000-12345678", "电话", "+86"])
def test_landlines_without_area_code_or_with_wrong_length_are_reported(value):
    assert code_of(value, "phone") == "invalid_phone"
    assert "区号" in check_value(value, "phone")


def test_a_landline_is_not_a_mobile_and_a_mobile_field_does_not_take_one():
    assert code_of("010-12345678", "mobile") == "invalid_mobile"
    assert code_of("010-12345678", "phone") is None


# ---- email ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("zhang.san@example.com", "zhang.san@example.com"), ("li_si+crm@qq.com", "li_si+crm@qq.com"),
    ("Wang@Example.COM", "Wang@example.com"),  # the domain is case-insensitive, the local part is kept
    (" mailto:x@163.com ", "x@163.com"), ("ｗａｎｇ＠qq.com", "wang@qq.com"),
    ("张三@例子.中国", "张三@例子.中国"),
])
def test_email_syntax_accepted(value, expected):
    assert ok(value, "email") == expected


@pytest.mark.parametrize("value", [
    "abc", "a@b", "a@@b.com", "a b@qq.com", "@qq.com", "zhang@", "zhang@qq..com", "zhang@.com",
    "a@localhost", "x@example.invalid", "a" * 65 + "@qq.com", 12345, b"a@b.com", "zhang@qq.com.",
])
def test_email_syntax_rejected(value):
    assert code_of(value, "email") == "invalid_email"


def test_email_is_checked_without_the_network(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("email validation must not look anything up")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert ok("someone@some-domain-that-does-not-exist-xyz.com", "email")


# ---- unified social credit code and resident ID number ------------------------------------------

def test_credit_code_with_correct_check_character_is_accepted_in_any_spelling():
    assert ok(USCC, "credit_code") == USCC
    assert ok(USCC.lower(), "credit_code") == USCC
    assert ok(" 9135-0100-M000-100Y43 ", "credit_code") == USCC
    assert ok("９１３５０１００Ｍ０００１００Ｙ４３", "credit_code") == USCC


def test_credit_code_check_character_agrees_with_stdnum():
    from stdnum.cn import uscc

    for body in ("91350100M000100Y4", "12100000400000624", "91110108551385082", "00000000000000000"):
        assert uscc_check_char(body) == uscc.calc_check_digit(body)


@pytest.mark.parametrize("value", [
    "91350100M000100Y44",  # wrong check character
    "91350100M000100Y4",  # 17 characters
    "91350100M000100Y433",  # 19 characters
    "91350100I000100Y43",  # I is not in the GB 32100 alphabet
    "9135010AM000100Y43",  # the first 8 are digits
    913501001000100, "", "统一社会信用代码",
])
def test_bad_credit_codes_are_reported(value):
    if value == "":
        assert normalise_value(value, "credit_code") == (None, None)  # empty is not a problem here
        return
    assert code_of(value, "credit_code") == "invalid_credit_code"


def test_id_number_with_correct_check_character_and_birth_date_is_accepted():
    assert ok(RIC, "id_number") == RIC
    assert ok(RIC.lower(), "id_number") == RIC  # a lower-case x check character
    assert ok("110105 19491231 002X", "id_number") == RIC
    assert ok("11010519491231002Ｘ", "id_number") == RIC


def _ric(body17: str) -> str:
    from stdnum.cn import ric

    return body17 + ric.calc_check_digit(body17 + "0")  # stdnum drops the last character


@pytest.mark.parametrize("value, why", [
    ("110105194912310021", "wrong check character"),
    (_ric("11010519490230002"), "no 30 February"),
    (_ric("11010518991231002"), "born before 1900"),
    (_ric("11010520240522002"), "born after today (the clock is fixed at 2024-05-21)"),
    ("11010519491231002", "17 characters"),
    (_ric("11010519491231002") + "0", "19 characters"),
    ("X10105194912310021", "X only as the check character"),
    (110105194912310021, "a number lost the X / digits"),
])
def test_bad_id_numbers_are_reported(value, why):
    assert code_of(value, "id_number") == "invalid_id_number", why


def test_id_number_birth_date_follows_the_fixed_clock():
    born_today = _ric("11010520240521002")
    assert ok(born_today, "id_number") == born_today
    clock.set_now("2024-05-20 23:59:59")
    assert code_of(born_today, "id_number") == "invalid_id_number"


def test_check_character_messages_in_both_languages():
    assert check_value("91350100M000100Y44", "credit_code") == \
        "统一社会信用代码“91350100M000100Y44”不是有效的统一社会信用代码（应为18位，末位校验码正确）"
    assert "check character" in check_value("110105194912310021", "id_number", lang="en")


# ---- dates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    datetime(2024, 5, 21, 14, 30), date(2024, 5, 21), 45433, 45433.0, 45433.75, Decimal(45433),
    "2024/5/21", "2024/05/21", "2024-05-21", "2024-5-21", "2024.5.21", "2024年5月21日", "2024年05月21日",
    "2024年5月21", " 2024 年 5 月 21 日 ", "２０２４年５月２１日", "20240521", 20240521,
    "2024-05-21 14:30", "2024/5/21 14:30:15", "2024-05-21T14:30:00", "2024年5月21日 14时30分",
])
def test_dates_in_the_forms_excel_and_people_give(value):
    assert ok(value, "date") == "2024-05-21"


@pytest.mark.parametrize("value, expected", [
    (datetime(2024, 5, 21, 14, 30), "2024-05-21 14:30:00"), (date(2024, 5, 21), "2024-05-21 00:00:00"),
    (45433.5, "2024-05-21 12:00:00"), ("2024/5/21 9:05", "2024-05-21 09:05:00"),
    ("2024年5月21日 14时30分", "2024-05-21 14:30:00"), ("2024-05-21 14:30:15", "2024-05-21 14:30:15"),
    ("2024-05-21T06:30:00+00:00", "2024-05-21 14:30:00"),  # converted to China time, not cut off
    (datetime(2024, 5, 21, 6, 30, tzinfo=timezone.utc), "2024-05-21 14:30:00"),
    (datetime(2024, 5, 21, 14, 30, 15, 999999), "2024-05-21 14:30:15"),
])
def test_datetimes(value, expected):
    assert ok(value, "datetime") == expected


def test_excel_serial_numbers_around_the_1900_leap_year_bug():
    assert ok(1, "date") == "1900-01-01"
    assert ok(59, "date") == "1900-02-28"
    assert ok(61, "date") == "1900-03-01"
    assert code_of(60, "date") == "invalid_date"  # 1900-02-29 never existed
    assert ok(2958465, "date") == "9999-12-31"


@pytest.mark.parametrize("value", [
    "garbage", "2024-13-01", "2024-02-30", "2023/2/29", "2024年13月1日", "21/05/2024", "明天", "2024",
    "1899-12-31", 0, -1, 60, 2958466, 1e300, float("inf"), "2024-05-21 25:00", True, [2024, 5, 21],
    timedelta(days=1), "#VALUE!",
])
def test_garbage_dates_are_reported_not_guessed(value):
    code = code_of(value, "date")
    assert code in ("invalid_date", "excel_error")


def test_date_message_shows_the_expected_form():
    assert check_value("2024-13-45", "date") == "日期“2024-13-45”不是有效的日期，应如2024-05-21"
    assert check_value("2024-13-45", "first_deal_date", lang="en") == \
        "First deal date '2024-13-45' is not a valid date, e.g. 2024-05-21"


# ---- enumerations --------------------------------------------------------------------------------

@pytest.mark.parametrize("value, key", [
    ("流失客户", "lost"), ("流失", "lost"), ("Lost", "lost"), ("lost", "lost"), (" LOST ", "lost"),
    ("潜在客户", "potential"), ("Potential", "potential"), ("意向客户", "intent"), ("Interested", "intent"),
])
def test_status_accepts_chinese_and_english_labels_and_keys(value, key):
    assert ok(value, "status") == key


def test_customer_type_and_level_labels():
    assert ok("企业客户", "customer_type") == "enterprise"
    assert ok("Individual", "customer_type") == "individual"
    assert ok("VIP客户", "customer_level") == "vip"
    assert ok("ｖｉｐ", "customer_level") == "vip"


def test_value_not_in_list_names_the_choices():
    assert code_of("合作", "status") == "not_in_list"
    assert check_value("合作", "status") == \
        "客户状态“合作”不在可选列表中，可选：潜在客户、意向客户、成交客户、流失客户"
    assert check_value("Partner", "status", lang="en") == \
        "Status 'Partner' is not in the list; choose one of: Potential, Interested, Customer, Lost"


def test_the_current_list_decides_not_a_fixed_one():
    from crmsync.enums import Enums
    from crmsync.schema import EnumItem, seed_enums

    enums = Enums(seed_enums() + (EnumItem("customer_status", "paused", "暂停合作", "Paused", 5),))
    assert normalise_value("暂停合作", "status", enums) == ("paused", None)
    assert code_of("暂停合作", "status") == "not_in_list"


# ---- text, remark, numbers, yes/no, tags ---------------------------------------------------------

def test_remark_length_is_counted_in_characters():
    assert ok("备" * 500, "remark") == "备" * 500
    assert code_of("备" * 501, "remark") == "too_long"
    assert check_value("备" * 501, "remark") == "备注超过500个字符（现有501个）"
    assert check_value("x" * 600, "remark", lang="en") == "Remark is longer than 500 characters (600)"


def test_remark_keeps_its_lines_and_text_fields_are_trimmed():
    assert ok("  第一行\r\n第二行  ", "remark") == "第一行\n第二行"
    assert ok("  上海  示例\n科技 ", "customer_name") == "上海 示例 科技"


def test_invisible_characters_are_removed_and_reported():
    value, code = normalise_value("上海\u200b示例\x00科技", "customer_name")
    assert (value, code) == ("上海示例科技", "bad_characters")
    assert "<U+200B>" in check_value("上海\u200b示例", "customer_name")


@pytest.mark.parametrize("value", ["#N/A", "#REF!", " #VALUE! ", "#DIV/0!", "#name?"])
def test_excel_error_values_are_problems_in_any_field(value):
    for kind in ("customer_name", "mobile", "email", "first_deal_date", "status", "total_amount", "tags"):
        assert code_of(value, kind) == "excel_error"
    assert "Excel错误值" in check_value(value, "customer_name")


@pytest.mark.parametrize("value, expected", [
    (1234.5, 1234.5), ("¥1,234.50", 1234.5), ("1.2万", 12000.0), ("3亿元", 3e8), ("(300)", -300.0),
    ("RMB 99", 99.0), (Decimal("0.125"), 0.12), ("１２３", 123.0), (0, 0.0),
])
def test_money(value, expected):
    assert ok(value, "money") == expected


@pytest.mark.parametrize("value", ["面议", "1,23,4", "¥", "--5", True, 1e16, "1e400"])
def test_bad_money(value):
    assert code_of(value, "money") in ("invalid_money", "out_of_range")


def test_yes_no_and_int_and_tags():
    assert ok("是", "bool") is True and ok("否", "bool") is False and ok("Yes", "bool") is True
    assert code_of("也许", "bool") == "invalid_bool"
    assert ok("12", "int") == 12 and ok(12.0, "int") == 12
    assert code_of("12.5", "int") == "invalid_int" and code_of(2**70, "int") == "out_of_range"
    assert ok("重点客户，华东; 重点客户、VIP", "tags") == "重点客户,华东,VIP"
    assert ok(["华东", "VIP"], "tags") == "华东,VIP"


# ---- empty and odd values --------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, "", "   ", "\u3000", float("nan"), Decimal("NaN")])
def test_empty_values_are_empty_not_problems(value):
    for kind in ("mobile", "phone", "email", "credit_code", "id_number", "date", "status", "remark"):
        assert normalise_value(value, kind) == (None, None)


def test_pandas_and_numpy_values():
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    assert ok(np.float64(13812345678.0), "mobile") == "13812345678"
    assert ok(np.int64(13812345678), "mobile") == "13812345678"
    assert ok(pd.Timestamp("2024-05-21 14:30"), "datetime") == "2024-05-21 14:30:00"
    assert ok(np.datetime64("2024-05-21"), "date") == "2024-05-21"
    for empty in (pd.NaT, pd.NA, np.nan, np.datetime64("NaT")):
        assert normalise_value(empty, "date") == (None, None)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        normalise_value("x", "no_such_kind")

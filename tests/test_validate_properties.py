"""Property tests (hypothesis): idempotent normalisers, check characters, no exceptions on any value."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from crmsync.normalise import FAST_PATHS, default_enums, field_checker, normalise_type, normalise_value
from crmsync.schema import CUSTOMER, ENTITIES, FIELD_TYPES, Field
from crmsync.validate import MESSAGES, check_value, validate_record, validate_table

# Modest settings keep the file to a few seconds.  conftest's autouse fixture fixes the clock at
# 2024-05-21 10:00 for each test; every example of a test runs under that same clock.
FAST = settings(max_examples=100, deadline=None)
SLOW = settings(max_examples=50, deadline=None)

TODAY = date(2024, 5, 21)  # conftest's clock
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DIGITS = "0123456789"
WIDE = {c: chr(ord(c) + 0xFEE0) for c in DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-"}


# ---- strategies ------------------------------------------------------------------------------

@st.composite
def credit_codes(draw) -> str:
    body = draw(st.text(DIGITS, min_size=8, max_size=8)) + draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    return body + uscc.calc_check_digit(body)


@st.composite
def id_numbers(draw) -> str:
    region = draw(st.text(DIGITS, min_size=6, max_size=6))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    serial = draw(st.text(DIGITS, min_size=3, max_size=3))
    body = f"{region}{born:%Y%m%d}{serial}"
    return body + ric.calc_check_digit(body + "0")  # stdnum's function drops the last character


def respelled(code: str):
    """Strategy: the same code as a person might type it (case, spaces, dashes, full width)."""
    return st.builds(
        lambda lower, sep, wide, pad: pad + sep.join(
            (WIDE.get(c, c) if wide else c) for c in (code.lower() if lower else code)) + pad,
        st.booleans(), st.sampled_from(["", " ", "-"]), st.booleans(), st.sampled_from(["", " ", "\u3000"]))


@st.composite
def mobiles(draw) -> object:
    digits = "1" + draw(st.sampled_from("3456789")) + draw(st.text(DIGITS, min_size=9, max_size=9))
    form = draw(st.sampled_from(["text", "int", "float", "spaced", "dashed", "+86", "0086", "wide", "mixed"]))
    if form == "int":
        return int(digits)
    if form == "float":
        return float(digits)
    if form == "spaced":
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if form == "dashed":
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if form in ("+86", "0086"):
        return form + draw(st.sampled_from(["", " ", "-"])) + digits
    if form == "wide":
        return "".join(WIDE[c] for c in digits)
    if form == "mixed":  # some digits typed with a Chinese input method
        wide = draw(st.lists(st.booleans(), min_size=11, max_size=11))
        return "".join(WIDE[c] if w else c for c, w in zip(digits, wide))
    return digits


@st.composite
def phones(draw) -> object:
    area = draw(st.sampled_from(["010", "021", "020", "0755", "0571", "0351"]))
    size = 8 if len(area) == 3 else draw(st.sampled_from([7, 8]))
    local = draw(st.sampled_from("123456789")) + draw(st.text(DIGITS, min_size=size - 1, max_size=size - 1))
    sep = draw(st.sampled_from(["-", " ", "", ")"]))
    text = ("(" + area + ")" + local) if sep == ")" else area + sep + local
    ext = draw(st.one_of(st.none(), st.text(DIGITS, min_size=1, max_size=4)))
    return text + (f"转{ext}" if ext else "")


@st.composite
def date_values(draw) -> object:
    d = draw(st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2100, 12, 31)))
    form = draw(st.sampled_from(["datetime", "date", "serial", "slash", "iso", "zh", "aware"]))
    if form == "datetime":
        return d
    if form == "date":
        return d.date()
    if form == "serial":
        return (d - datetime(1899, 12, 30)) / timedelta(days=1)
    if form == "slash":
        return f"{d.year}/{d.month}/{d.day}"
    if form == "zh":
        return f"{d.year}年{d.month}月{d.day}日"
    if form == "aware":
        return d.replace(tzinfo=timezone(timedelta(hours=draw(st.integers(-12, 12)))))
    return d.isoformat(" ")


def enum_spellings(list_key: str):
    items = [i for i in default_enums().items[list_key]]
    spellings = [s for i in items for s in (i.key, i.zh, i.en, *i.synonyms)]
    return st.builds(lambda s, upper, pad: pad + (s.upper() if upper else s) + pad,
                     st.sampled_from(spellings), st.booleans(), st.sampled_from(["", " ", "\u3000"]))


amounts = st.one_of(
    st.floats(-1e14, 1e14, allow_nan=False), st.integers(-10**14, 10**14),
    st.decimals(-10**12, 10**12, allow_nan=False, places=3),
    st.builds(lambda x, unit: f"¥{x:,.2f}{unit}", st.floats(0, 1e9), st.sampled_from(["", "元", "万", "万元"])),
)

#: Values each field type is meant to take, in the forms users and Excel give them.
TYPED = {
    "mobile": mobiles(), "phone": phones(), "email": st.emails(),
    "credit_code": credit_codes().flatmap(respelled), "id_number": id_numbers().flatmap(respelled),
    "date": date_values(), "datetime": date_values(),
    "int": st.one_of(st.integers(-(2**63 - 1), 2**63 - 1), st.integers(-10**6, 10**6).map(str)),
    "money": amounts,
    "bool": st.sampled_from([True, False, "是", "否", "Y", "no", "TRUE", "1", 0, 1.0, "√", "×"]),
    "tags": st.one_of(st.lists(st.text(max_size=8), max_size=4), st.text(max_size=30)),
    "enum": enum_spellings("customer_status"),
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(max_size=20),
    st.decimals(), st.dates(), st.datetimes(), st.datetimes(timezones=st.timezones()), st.times(),
    st.complex_numbers(), st.just(object()), st.sampled_from(["#N/A", "#REF!", " ", "\u200b", "\ud800", "nan"]),
)
#: Any Python value a cell might carry, nested.
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner), st.dictionaries(st.text(max_size=3), inner, max_size=3),
    st.frozensets(st.one_of(st.integers(), st.text(max_size=3)), max_size=3)), max_leaves=6)

text_like = st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
                      st.text("0123456789０１２３４５６７８９+-() .年月日/:：ＸX转#", max_size=30))


def checker(type_: str):
    """Return check(value) for a bare field of a type (enum fields check the status list)."""
    enum = "customer_status" if type_ == "enum" else None
    return field_checker(Field(f"f_{type_}", type_, type_, type_, enum=enum), default_enums())


# ---- normalising is idempotent ---------------------------------------------------------------

def assert_idempotent(type_: str, value: object) -> None:
    check = checker(type_)
    normal, code = check(value)
    if normal is None:
        assert code is None or code in MESSAGES
        return
    if code is None or code == "bad_characters":  # bad_characters gives the cleaned text back
        assert check(normal) == (normal, None), f"{type_}: {value!r} → {normal!r} → {check(normal)!r}"
        assert type(check(normal)[0]) is type(normal)
    else:
        assert code in MESSAGES


@pytest.mark.parametrize("type_", FIELD_TYPES)
@FAST
@given(data=st.data())
def test_normalising_is_idempotent_for_every_type(type_, data):
    value = data.draw(st.one_of(TYPED.get(type_, st.nothing()), text_like, scalars), label="value")
    assert_idempotent(type_, value)


@pytest.mark.parametrize("type_", sorted(TYPED))
@SLOW
@given(data=st.data())
def test_values_of_the_right_kind_are_accepted(type_, data):
    value = data.draw(TYPED[type_], label="value")
    normal, code = checker(type_)(value)
    if type_ == "tags":
        assert code in (None, "bad_characters", "invalid_text")
    elif type_ in ("date", "datetime") and isinstance(value, float):
        assert code is None or value < 61  # serial numbers below 61 hit Excel's 1900 leap-year bug
    elif type_ == "email":
        assume(code is None)  # st.emails() makes some addresses email-validator refuses (special domains)
    else:
        assert code is None, f"{type_}: {value!r} → {code}"


@pytest.mark.parametrize("type_", sorted(FAST_PATHS))
@FAST
@given(data=st.data())
def test_a_fast_path_only_passes_what_the_normaliser_keeps_as_it_is(type_, data):
    """validate_table skips the normaliser for text its type's fast path accepts: it must be right."""
    value = data.draw(st.one_of(text_like, TYPED.get(type_, st.nothing()).map(str),
                                TYPED.get(type_, st.nothing()).map(lambda v: str(checker(type_)(v)[0]))),
                      label="value")
    if FAST_PATHS[type_](value):
        assert normalise_type(value, type_) == (value, None)


@FAST
@given(st.emails())
def test_email_fast_path_agrees_with_email_validator(address):
    import email_validator

    if FAST_PATHS["email"](address):
        found = email_validator.validate_email(address, check_deliverability=False, strict=True)
        assert found.normalized == address


# ---- check characters ------------------------------------------------------------------------

@FAST
@given(credit_codes(), st.data())
def test_any_valid_credit_code_is_accepted_and_any_single_change_rejected(code, data):
    assert normalise_value(code, "credit_code") == (code, None)
    i = data.draw(st.integers(0, 17), label="position")
    other = data.draw(st.sampled_from(USCC_ALPHABET + "IOSVZ").filter(lambda c: c != code[i]), label="char")
    changed = code[:i] + other + code[i + 1:]
    assert normalise_value(changed, "credit_code") == (changed, "invalid_credit_code")
    assert not uscc.is_valid(changed)  # stdnum agrees


@FAST
@given(id_numbers(), st.data())
def test_any_valid_id_number_is_accepted_and_any_single_change_rejected(number, data):
    assert normalise_value(number, "id_number") == (number, None)
    i = data.draw(st.integers(0, 17), label="position")
    alphabet = DIGITS + "X" if i == 17 else DIGITS + "XA"
    other = data.draw(st.sampled_from(alphabet).filter(lambda c: c != number[i]), label="char")
    changed = number[:i] + other + number[i + 1:]
    assert normalise_value(changed, "id_number") == (changed, "invalid_id_number")


@FAST
@given(st.text(DIGITS, min_size=17, max_size=17))
def test_id_numbers_with_a_right_check_character_are_judged_by_their_birth_date(body):
    number = body + ric.calc_check_digit(body + "0")
    try:
        born = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
        real = date(1900, 1, 1) <= born <= TODAY
    except ValueError:
        real = False
    assert (normalise_value(number, "id_number")[1] is None) == real


# ---- arbitrary input: problems, never exceptions ---------------------------------------------

@pytest.mark.parametrize("type_", FIELD_TYPES)
@FAST
@given(value=st.one_of(text_like, anything))
def test_any_value_gives_a_result_or_a_problem_code_never_an_exception(type_, value):
    normal, code = normalise_type(value, type_)
    assert code is None or code in MESSAGES
    message = check_value(value, type_)
    assert (message == "") == (code is None)
    assert check_value(value, type_, lang="en") == "" or code is not None


@st.composite
def tables(draw, values=anything):
    key = draw(st.sampled_from(sorted(ENTITIES)))
    keys = st.sampled_from(ENTITIES[key].keys + ("unknown", "备注2"))
    rows = draw(st.lists(st.dictionaries(keys, values, max_size=6), min_size=1, max_size=4))
    return key, rows


@SLOW
@given(tables(values=st.one_of(text_like, anything)), st.sampled_from(["zh", "en"]), st.booleans())
def test_any_table_gives_problems_not_exceptions(table, lang, partial):
    key, rows = table
    ent = ENTITIES[key]
    result = validate_table(rows, key, lang=lang, partial=partial, row_numbers=range(2, 2 + len(rows)))
    assert len(result.rows) == len(rows)
    for p in result.problems:
        assert 2 <= p.row < 2 + len(rows) and p.field in ent.keys and p.code in MESSAGES
        assert isinstance(p.message, str) and p.message and "\n" not in p.message
    for p in result.problems:
        assert ent.get(p.field).label(lang) in p.message
    for i, (row, out) in enumerate(zip(rows, result.rows)):
        assert out.keys() == row.keys()  # the keys the row had, no more, no fewer
        flagged = {p.field for p in result.problems if p.row == i + 2}
        for key, value in out.items():
            if key in ent.keys and key not in flagged:  # what passes is in normal form
                assert field_checker(ent.get(key), default_enums())(value) == (value, None)


@SLOW
@given(tables(values=st.one_of(text_like, scalars)), st.sampled_from(["zh", "en"]))
def test_record_path_and_table_path_agree(table, lang):
    key, rows = table
    result = validate_table(rows, key, lang=lang)
    for i, values in enumerate(rows):
        row, problems = validate_record(values, key, lang=lang)
        expected = [(p.field, p.code, p.message) for p in result.problems if p.row == i]
        assert [(p.field, p.code, p.message) for p in problems] == expected
        assert _same(row, result.rows[i])


def _same(a: dict, b: dict) -> bool:
    """Equal rows, NaN equal to NaN."""
    return a.keys() == b.keys() and all(x is y or x == y or (x != x and y != y) for x, y in
                                        ((a[k], b[k]) for k in a))


@SLOW
@given(st.lists(st.fixed_dictionaries({
    "customer_name": st.one_of(st.text(max_size=10), st.none()),
    "customer_type": enum_spellings("customer_type"),
    "status": enum_spellings("customer_status"),
    "lost_reason": st.one_of(st.none(), enum_spellings("lost_reason")),
    "mobile": st.one_of(mobiles(), st.none(), text_like),
    "first_deal_date": st.one_of(st.none(), date_values()),
}), min_size=1, max_size=6))
def test_cross_field_rules_on_generated_customers(rows):
    result = validate_table(rows, CUSTOMER)
    codes = {(p.row, p.code) for p in result.problems}
    for i, out in enumerate(result.rows):
        lost_without_reason = out["status"] == "lost" and out["lost_reason"] is None
        assert ((i, "lost_reason_required") in codes) == lost_without_reason
        future = out["first_deal_date"] is not None and (i, "invalid_date") not in codes \
            and out["first_deal_date"] > TODAY.isoformat()
        assert ((i, "date_in_future") in codes) == future

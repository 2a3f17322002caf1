"""Property-based fuzzing (hypothesis) of the header matcher, the CSV reader and the sync planner.

- headers: any grid gives a header row index or InvalidInput; any header gives a column map in
  which each field is taken at most once and every column is accounted for.
- CSV: any bytes give a RawSheet or one-line InvalidFile naming the file, never another exception.
- planner: any copy rows give a plan, never an exception, and never an update, create or delete
  the user's role may not make.
Saved inputs that once failed live in tests/fuzz_cases/ and are replayed by test_saved_cases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmsync import access
from crmsync.access import User
from crmsync.errors import CrmsyncError, InvalidFile, InvalidInput
from crmsync.headers import find_header_row, match_columns
from crmsync.readers import decode_text, read_file
from crmsync.schema import ENTITIES, header_index

CASES = Path(__file__).parent / "fuzz_cases"
CUSTOMER = ENTITIES["customer"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])

spellings = sorted(header_index(CUSTOMER))
header_text = st.one_of(
    st.sampled_from(spellings),
    st.sampled_from(spellings).map(lambda s: f" {s}*（必填）"),
    st.sampled_from(spellings).map(lambda s: s.upper() + "\u200b"),
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8", categories=("Cc", "Cf", "Zs", "Lo")), max_size=8),
)
cell = st.one_of(st.none(), header_text, st.integers(), st.floats(allow_nan=True), st.booleans())


# ---- the header matcher ----------------------------------------------------------------------

@FUZZ
@given(st.lists(st.lists(cell, max_size=12), max_size=40))
def test_any_grid_gives_a_header_row_or_a_clear_refusal(grid):
    try:
        i = find_header_row(grid, CUSTOMER)
    except InvalidInput as e:
        assert "\n" not in str(e)
        return
    assert 0 <= i < len(grid)


@FUZZ
@given(st.lists(cell, max_size=30))
def test_any_header_maps_each_field_once_and_keeps_every_column(header):
    try:
        cmap = match_columns(header, CUSTOMER)
    except InvalidInput as e:  # e.g. a header of nothing but blanks
        assert "\n" not in str(e)
        return
    taken = [c.field for c in cmap.columns if c.field]
    assert len(taken) == len(set(taken))
    assert all(f in CUSTOMER.keys and not CUSTOMER.get(f).system for f in taken)
    assert len(cmap.columns) <= len(header)


# ---- the CSV reader --------------------------------------------------------------------------

csv_bytes = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=400).map(lambda t: t.encode("utf-8")),
    st.text(max_size=400).map(lambda t: t.encode("utf-16")),
    st.text(st.characters(codec="gb18030"), max_size=400).map(lambda t: t.encode("gb18030")),
    st.lists(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=8), max_size=20)
    .map(lambda rows: "\r\n".join(",".join(r) for r in rows).encode("utf-8")),
)


def _read_csv_bytes(tmp_path: Path, data: bytes):
    path = tmp_path / "客户.csv"
    path.write_bytes(data)
    try:
        return read_file(path)
    except InvalidFile as e:
        message = str(e)
        assert "\n" not in message and "\r" not in message, message
        assert "客户.csv" in message, message
        return None


@FUZZ
@given(data=csv_bytes)
def test_any_csv_bytes_give_a_sheet_or_one_clear_line(tmp_path_factory, data):
    raw = _read_csv_bytes(tmp_path_factory.mktemp("csv"), data)
    if raw is not None:
        assert all(isinstance(row, list) for row in raw.grid)


@FUZZ
@given(st.text(max_size=300), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030"]))
@example("\x00", "utf-16")  # FF FE 00 00: UTF-16 with a NUL, not an empty UTF-32 file
def test_text_excel_writes_decodes_to_itself(text, codec):
    try:
        data = text.encode(codec)
    except UnicodeEncodeError:
        return
    if not data:
        return
    decoded, _name = decode_text(data, "x.csv")
    if codec in ("utf-8-sig", "utf-16") or data.isascii():
        assert decoded == text
    # GB18030 bytes can also be valid UTF-8/GBK; any decode is fine, but never an exception


# ---- the sync planner ------------------------------------------------------------------------

USERS = {u.name: u for u in (User("admin", "admin"), User("wang", "manager", "east"), User("zhang", "rep", "east"),
                             User("li", "rep", "east"), User("chen", "manager", "south"), User("liu", "rep", "south"))}
RECORDS = {
    "C1": ("zhang", "east"), "C2": ("li", "east"), "C3": ("liu", "south"), "C4": ("zhang", "east"),
}
EDITABLE = tuple(f.key for f in CUSTOMER.fields if not f.system)


def _current() -> dict[str, dict]:
    out = {}
    for i, (rid, (owner, team)) in enumerate(RECORDS.items()):
        out[rid] = {"customer_id": rid, "customer_name": f"客户{rid}有限公司", "mobile": f"1381234567{i}",
                    "contact_name": "张三", "customer_type": "enterprise", "status": "potential", "owner": owner,
                    "team": team, "version": 3, "deleted": rid == "C4", "updated_by": "admin",
                    "updated_at": "2024-05-20 10:00:00"}
    return out


field_value = st.one_of(st.none(), st.text(max_size=10), st.sampled_from(list(USERS) + ["east", "south", "潜在客户",
                                                                                         "企业客户", "13812345678"]),
                        st.integers(-5, 10 ** 12), st.floats(allow_nan=False), st.booleans())
copy_row = st.fixed_dictionaries({
    "id": st.one_of(st.none(), st.sampled_from(list(RECORDS) + ["C999", ""])),
    "version": st.one_of(st.none(), st.integers(-1, 10)),
    "key": st.one_of(st.none(), st.sampled_from(["k1", "k2"]), st.text(max_size=4)),
    "values": st.dictionaries(st.sampled_from(EDITABLE), field_value, max_size=8),
    "reason": st.one_of(st.none(), st.text(max_size=5)),
})


def plan_rows(user: User, rows: list[dict], known: dict[str, int]):
    from crmsync.enums import Enums
    from crmsync.sync import CopyRow, PlanInput, StoreView, align, digest, plan_entity, triage

    current = _current()
    copy_rows = []
    for i, r in enumerate(rows):
        values = {**{k: current.get(r["id"] or "", {}).get(k) for k in EDITABLE}, **r["values"]}
        copy_rows.append(CopyRow(i + 2, r["id"] or None, r["version"], r["key"] or None, values, r["reason"],
                                 digest(tuple(map(repr, values.values())))))
    view = StoreView(versions={rid: (rec["version"], rec["deleted"]) for rid, rec in current.items()},
                     current=current, base={}, known={rid: (v, "old") for rid, v in known.items()},
                     keys={"k1": ("C1", 3)})
    inp = PlanInput(entity=CUSTOMER, user=user, enums=Enums.seed(), fields=EDITABLE, users=USERS,
                    new_key=lambda: "new")
    tri = triage(copy_rows, view)
    matched = align([r.record_id for r in copy_rows], tri, view)
    return plan_entity(tri, view, inp, matched), current


def assert_plan_within_role(plan, user: User, current: dict) -> None:
    for u in plan.updates:
        rec = current[u.record_id]
        assert access.check(user, "edit", rec), (user, u)
        if "owner" in u.changes or "team" in u.changes:
            assert access.check(user, "assign", rec), (user, u)
            owner = u.changes.get("owner", rec["owner"])
            if user.role != "admin":  # the customer stays in the manager's team, with an owner of it (or none)
                assert u.changes.get("team", rec["team"]) == user.team, (user, u)
                assert owner is None or (owner in USERS and USERS[owner].team == user.team), (user, u)
    for c in plan.creates:
        owner = c.values.get("owner")
        assert owner in USERS, c
        assert c.values.get("team") == USERS[owner].team or user.role == "admin", (user, c.values)
        assert access.check(user, "create", c.values), (user, c.values)
        if user.role == "rep":
            assert owner == user.name
    for d in plan.deletes:
        assert access.check(user, "delete", current[d.record_id]), (user, d)


@FUZZ
@given(st.sampled_from(sorted(USERS)), st.lists(copy_row, max_size=8),
       st.dictionaries(st.sampled_from(list(RECORDS)), st.integers(1, 4), max_size=4))
def test_any_copy_rows_give_a_plan_within_the_role(name, rows, known):
    user = USERS[name]
    plan, current = plan_rows(user, rows, known)
    assert_plan_within_role(plan, user, current)


# ---- saved cases -----------------------------------------------------------------------------

def _saved(kind: str) -> list[Path]:
    return sorted((CASES / kind).glob("*")) if (CASES / kind).is_dir() else []


@pytest.mark.parametrize("path", _saved("csv"), ids=lambda p: p.name)
def test_saved_csv_cases(tmp_path, path):
    _read_csv_bytes(tmp_path, path.read_bytes())


@pytest.mark.parametrize("path", _saved("planner"), ids=lambda p: p.name)
def test_saved_planner_cases(path):
    case = json.loads(path.read_text(encoding="utf-8"))
    user = USERS[case["user"]]
    plan, current = plan_rows(user, case["rows"], case.get("known", {}))
    assert_plan_within_role(plan, user, current)
    for kind, n in case.get("expect", {}).items():
        assert len(getattr(plan, kind)) == n, (kind, plan)


@pytest.mark.parametrize("path", _saved("header"), ids=lambda p: p.name)
def test_saved_header_cases(path):
    grid = json.loads(path.read_text(encoding="utf-8"))
    try:
        match_columns(grid[find_header_row(grid, CUSTOMER)], CUSTOMER)
    except CrmsyncError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize("path", _saved("xlsx"), ids=lambda p: p.name)
def test_saved_xlsx_cases(tmp_path, path):
    """fuzz/fuzz_xlsx.py's input format: first byte picks the part, the rest replaces it."""
    import hostile

    data = path.read_bytes()
    parts = ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
             "_rels/.rels", "[Content_Types].xml"]
    part, body = parts[data[0] % len(parts)], data[1:]
    kw = ({"sheet": body} if part.endswith("sheet1.xml") else {"sst": body} if part.endswith("Strings.xml")
          else {"workbook": body.decode("utf-8", "replace")} if part == "xl/workbook.xml" else {"extra": {part: body}})
    book = hostile.minimal_xlsx(tmp_path / "客户.xlsx", **kw)
    try:
        read_file(book)
    except CrmsyncError as e:
        assert "\n" not in str(e) and "客户.xlsx" in str(e), str(e)

"""Importing a legacy spreadsheet of customers: plan (read, match, normalise, validate, find
duplicates) and apply (one transaction).

    plan = plan_import(store, "老客户.xlsx")              # nothing is written
    print(plan.summary())                                 # counts, mapping, first problems
    result = apply_import(store, plan, user="admin")      # valid rows in, atomically
    write_error_workbook(plan, "老客户-错误.xlsx")          # bad rows, every problem per cell

The plan reads the file (readers: .xlsx/.xlsm/.xls/.csv), finds the header under any title rows
and maps columns to fields (headers), fills defaults, splits a one-cell address into
province/city/district/detail (address), validates the columns with validate.validate_columns (which
normalises phones given as floats, full-width characters, whitespace, mixed date formats and list
values given by synonym), checks owners against the store's users, and holds back rows that match
an existing customer (or an earlier row of the file) as likely duplicates.

Columns that map to no field are kept with each record, under ``IMPORTED_KEY`` in the store's
custom-data column, and named in the plan; nothing in the file is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import compress
from pathlib import Path

from .address import split_addresses
from .errors import InvalidInput
from .headers import ColumnMap, find_header_row, match_columns, parse_mapping
from .i18n import lang, tr
from .readers import RawSheet, read_file
from .schema import Entity
from .tables import ENTITY_TABLES
from .tx import bulk_gc
from .validate import validate_columns

__all__ = ["IMPORTED_KEY", "ROW_HEADER", "PROBLEM_HEADER", "CellProblem", "Duplicate", "ImportPlan",
           "ImportResult", "plan_import", "apply_import", "write_error_workbook"]

#: Key in custom_data holding the unmapped columns of an imported row ({header: value}).
IMPORTED_KEY = "_imported"
#: Columns the error workbook adds; a re-import of that workbook ignores them.
ROW_HEADER = "原行号"
PROBLEM_HEADER = "错误说明"
_OUR_COLUMNS = {ROW_HEADER, PROBLEM_HEADER, "Original row", "Problems", "匹配客户", "依据", "Matches", "Evidence"}
_ADDRESS_PARTS = ("province", "city", "district")
_CHUNK = 20_000  # rows per insert step (progress granularity)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class CellProblem:
    """One problem of one cell: where it is (row, column) and what is wrong."""

    row: int  # the file's row number (1-based, as Excel shows it)
    column: str  # column letter ("E"), "" when the field has no column in the file
    header: str  # the column's header as written in the file
    field: str  # field key
    code: str
    message: str  # the validation message (field label and value)
    value: object = None

    def located(self, where: str) -> str:
        """The message prefixed with file, sheet, row and column."""
        col = f" {self.column}{tr('列', '')}" if self.column else ""
        head = f"（{self.header}）" if self.header and lang() != "en" else f" ({self.header})" if self.header else ""
        return tr(f"{where} 第{self.row}行{col}{head}：{self.message}",
                  f"{where} row {self.row}{' column ' + self.column if self.column else ''}{head}: {self.message}")


@dataclass(frozen=True)
class Duplicate:
    """A row held back because it matches existing customers (or an earlier row of the file)."""

    row: int
    matches: tuple[str, ...]  # customer ids, or "第N行" / "row N" for a row of the same file
    evidence: str  # what matched, for the user
    score: float | None = None


@dataclass
class ImportPlan:
    """What an import would do; nothing is written until apply_import."""

    source: RawSheet
    entity: Entity
    header_row: int  # 1-based
    header: list[str]
    columns: ColumnMap
    total: int  # data rows read (empty rows left out)
    records: list[dict]  # valid, normalised rows to create
    record_rows: list[int]  # their row numbers
    extras: list[dict | None]  # their unmapped columns
    problems: list[CellProblem]
    duplicates: list[Duplicate]
    originals: dict[int, list]  # row number → the row as read (bad and duplicate rows)
    notes: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # names of the columns kept as extra data

    @property
    def bad_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})

    @property
    def where(self) -> str:
        return self.source.where()

    def summary(self) -> dict:
        """Counts for a dry run or a report."""
        return {"rows": self.total, "valid": len(self.records), "invalid": len(self.bad_rows),
                "duplicates": len(self.duplicates), "problems": len(self.problems)}


@dataclass
class ImportResult:
    ids: list[str]
    plan: ImportPlan


# ---- plan ----------------------------------------------------------------------------------------

def plan_import(store, path: str | Path, *, sheet: str | None = None, mapping: Sequence[str] | None = None,
                user: str = "admin", keep_duplicates: bool = False,
                progress: Progress | None = None) -> ImportPlan:
    """Return the plan of importing a file of customers into the store; nothing is written.

    :param mapping: ``--map`` pairs "列名=field" that override header matching.
    :param keep_duplicates: import rows that match existing customers instead of holding them back.
    Raises InvalidFile (an unreadable or hostile file), NotFound (no such sheet), InvalidInput
    (no data, a --map naming a column the file lacks).
    """
    with bulk_gc():  # 100k rows of small lists and dicts: full collections would cost more than the work
        return _plan(store, path, sheet, mapping, user, keep_duplicates, progress or (lambda *a: None))


def _plan(store, path, sheet, mapping, user, keep_duplicates, say: Progress) -> ImportPlan:
    store.user(user)  # an unknown user is told before the file is read (NotFound)
    ent = store.entity("customer")
    say("read", 0, 1)
    raw = read_file(path, sheet)
    say("read", 1, 1)
    grid = raw.grid
    h = find_header_row(grid, ent)
    overrides = parse_mapping(list(mapping or []), ent)
    width = max((len(r) for r in grid[h:]), default=0)
    while width and all(len(r) < width or r[width - 1] is None for r in grid[h:]):
        width -= 1
    header = [_header_text(v) for v in grid[h][:width]] + [""] * max(0, width - len(grid[h]))
    ignored = {i for i, t in enumerate(header) if t in _OUR_COLUMNS}
    cmap = match_columns([None if i in ignored else t for i, t in enumerate(header)], ent, overrides)
    _check_overrides(list(mapping or []), header, raw)
    rows, numbers, repeats = _data_rows(grid, h, width, header, len(cmap.mapped))
    if not rows:
        raise InvalidInput(tr(f"{raw.where()}: 表头（第{h + 1}行）下没有数据行",
                              f"{raw.where()}: no data rows under the header (row {h + 1})"))
    notes = list(raw.notes)
    if repeats:
        notes.append(tr(f"跳过 {repeats} 个重复的表头行", f"skipped {repeats} repeated header rows"))
    if raw.encoding:
        notes.insert(0, tr(f"文本编码：{raw.encoding}", f"text encoding: {raw.encoding}"))
    columns = _field_columns(cmap, rows)
    _fill_defaults(columns, ent, len(rows))
    say("address", 0, 1)
    address_from = _split_address(columns, cmap, notes)
    say("address", 1, 1)
    by_field = cmap.by_field()
    # The sheet is columns already: validate them as such, and build a row dict only once, for
    # the rows that pass (100,000 dicts built and taken apart again cost more than the checks).
    say("validate", 0, len(rows))
    clean, found = validate_columns(columns, ent, enums=store.enums(), lang=lang(), row_numbers=numbers)
    problems = [_locate(p.row, p.field, p.code, p.message, p.value, by_field, address_from) for p in found]
    say("validate", len(rows), len(rows))
    problems.extend(_check_owners(store, user, clean.get("owner"), numbers, by_field))
    problems.sort(key=lambda p: (p.row, len(p.column), p.column))
    bad = {p.row for p in problems}
    keep = [n not in bad for n in numbers]
    good = list(compress(range(len(rows)), keep))
    keys = list(columns)
    normalised = [dict(zip(keys, t)) for t in zip(*(compress(clean.get(k, columns[k]), keep) for k in keys))] \
        if keys else [{} for _ in good]
    good_numbers = [numbers[i] for i in good]
    say("duplicates", 0, 1)
    duplicates = [] if keep_duplicates else find_duplicates(store, normalised, good_numbers)
    say("duplicates", 1, 1)
    held = {d.row for d in duplicates}
    unmapped = _unmapped(cmap, rows, ignored)
    records, record_rows, extras = [], [], []
    for i, n, record in zip(good, good_numbers, normalised):
        if n in held:
            continue
        records.append(record)  # only importable fields: mapping leaves out the store's own
        record_rows.append(n)
        if unmapped:
            row = rows[i]
            extra = {name: _plain(row[j]) for j, name in unmapped if row[j] is not None}
            extras.append(extra or None)
        else:
            extras.append(None)
    originals = {n: rows[i] for i, n in enumerate(numbers) if n in bad or n in held}
    return ImportPlan(raw, ent, h + 1, header, cmap, len(rows), records, record_rows, extras, problems,
                      duplicates, originals, notes, [name for _, name in unmapped])


def _unmapped(cmap: ColumnMap, rows: list[list], ignored: set[int]) -> list[tuple[int, str]]:
    """Return (column index, name) of every column kept as extra data, names unique.

    A column without a header is kept (named by its letter) when it holds anything; a header
    that repeats gets its column letter added, so no value overwrites another.
    """
    out: list[tuple[int, str]] = []
    seen: set[str] = set()
    for c in cmap.columns:
        if c.field or c.index in ignored:
            continue
        if not c.header and all(r[c.index] is None for r in rows):
            continue
        name = c.header or tr(f"{c.letter}列", f"column {c.letter}")
        if name in seen:
            name = f"{name} ({c.letter})"
        seen.add(name)
        out.append((c.index, name))
    return out


def _header_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _check_overrides(pairs: list[str], header: list[str], raw: RawSheet) -> None:
    from .schema import normalise_header

    present = {normalise_header(h) for h in header}
    missing = [p.partition("=")[0].strip() for p in pairs if normalise_header(p.partition("=")[0]) not in present]
    if missing:
        raise InvalidInput(tr(f"{raw.where()}: --map 中的列“{'、'.join(missing)}”不在表头中；表头为：{'、'.join(h for h in header if h)}",
                              f"{raw.where()}: --map names column(s) {', '.join(missing)} not in the header: "
                              f"{', '.join(h for h in header if h)}"))


def _data_rows(grid: list[list], h: int, width: int, header: list[str],
               mapped: int) -> tuple[list[list], list[int], int]:
    """Return (data rows cut or padded to ``width``, their 1-based row numbers, header repeats).

    Empty rows are left out, and so is the header repeated (pages of a printed export, files
    pasted together).
    """
    header_again = [None if t == "" else t for t in header]
    probe = next((j for j, t in enumerate(header_again) if t is not None), None)
    rows, numbers = [], []
    repeats = 0
    pad = [None] * width
    for i in range(h + 1, len(grid)):
        r = grid[i]
        n = len(r)
        if r.count(None) == n:
            continue
        # a cheap first test (one cell) before comparing the whole row with the header
        if probe is not None and n > probe and r[probe] == header_again[probe] \
                and r[:width] == header_again[:n] and n >= mapped:
            repeats += 1
            continue
        rows.append(r if n == width else r + pad[n:] if n < width else r[:width])
        numbers.append(i + 1)
    return rows, numbers, repeats


def _field_columns(cmap: ColumnMap, rows: list[list]) -> dict[str, list]:
    """Return field key → column of raw values (one list per mapped field)."""
    if not cmap.mapped:
        return {}
    by_index = list(zip(*rows))  # every row has the same width: one transpose in C
    return {c.field: list(by_index[c.index]) for c in cmap.mapped}  # type: ignore[misc]


def _fill_defaults(columns: dict[str, list], ent: Entity, n: int) -> None:
    """An empty value of a field with a default (客户类型, 客户状态) takes the default."""
    for key, default in ent.defaults:
        col = columns.get(key)
        if col is None:
            columns[key] = [default] * n
        else:
            columns[key] = [default if v is None or (isinstance(v, str) and not v.strip()) else v for v in col]


def _split_address(columns: dict[str, list], cmap: ColumnMap, notes: list[str]) -> dict[str, str]:
    """Fill province/city/district from the address column where a row has none of them.

    Returns field → the field whose column the value came from (for locating problems).
    """
    addresses = columns.get("address")
    if addresses is None:
        return {}
    given = [columns[k] for k in _ADDRESS_PARTS if columns.get(k) is not None]
    n = len(addresses)
    todo = [i for i, a in enumerate(addresses) if isinstance(a, str) and a.strip()]
    if given:  # a row that has any of the parts keeps what it has
        empty = len(given)
        todo = [i for i in todo if [c[i] for c in given].count(None) == empty]
    if not todo:
        return {}
    found = split_addresses([addresses[i].strip() for i in todo])  # cpca sees each distinct one once
    for k in _ADDRESS_PARTS:
        if columns.get(k) is None:
            columns[k] = [None] * n
    province, city, district = (columns[k] for k in _ADDRESS_PARTS)
    split = 0
    for i, a in zip(todo, found):
        if a.province or a.city or a.district:
            split += 1
            province[i], city[i], district[i], addresses[i] = a.province, a.city, a.district, a.detail
    if split:
        notes.append(tr(f"地址拆分：{split} 行的地址已拆分为省份/城市/区县/详细地址",
                        f"addresses: {split} rows split into province/city/district/detail"))
    return {k: "address" for k in _ADDRESS_PARTS if cmap.by_field().get(k) is None}


def _locate(row: int, key: str, code: str, message: str, value: object, by_field: dict,
            address_from: dict[str, str]) -> CellProblem:
    col = by_field.get(key) or by_field.get(address_from.get(key, ""))
    return CellProblem(row, col.letter if col else "", col.header if col else "", key, code, message, value)


def _check_owners(store, user: str, owners: list | None, numbers: list[int], by_field: dict) -> list[CellProblem]:
    """Owners must be users of the store; a sales rep may only import customers of their own."""
    if "owner" not in by_field or owners is None:
        return []
    known = {u.name for u in store.users()}
    actor = store.user(user)
    label = store.entity("customer").get("owner").label(lang())
    out = []
    for owner, n in zip(owners, numbers):
        if owner is None or not isinstance(owner, str):
            continue
        if owner not in known:
            msg = tr(f"{label}“{owner}”不是系统用户；先用 crmsync user add {owner} 添加，或改为已有用户",
                     f"{label} '{owner}' is not a user; add it with crmsync user add {owner} or use an existing user")
        elif actor.role == "rep" and owner != actor.name:
            msg = tr(f"销售代表 {actor.name} 不能导入归属他人（{owner}）的客户",
                     f"sales rep {actor.name} cannot import customers owned by {owner}")
        else:
            continue
        out.append(_locate(n, "owner", "unknown_user", msg, owner, by_field, {}))
    return out


def _plain(v: object) -> object:
    """A value as JSON keeps it (dates as ISO text)."""
    if isinstance(v, datetime):
        return v.isoformat(" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


# ---- duplicates ----------------------------------------------------------------------------------

def find_duplicates(store, rows: list[dict], numbers: list[int]) -> list[Duplicate]:
    """Return the rows that match an existing customer or an earlier row of the same file.

    Uses crmsync.dedupe.find_store_matches when that module provides it, otherwise exact evidence:
    the same credit code, the same mobile, or the same company name once legal suffixes,
    whitespace and full-width forms are ignored (lookup.name_key).
    """
    try:
        from .dedupe import find_store_matches  # type: ignore[attr-defined]
    except ImportError:
        find_store_matches = None
    if find_store_matches is not None:
        if not rows or not store.count("customer"):  # nothing to match against
            return _within_file(rows, numbers, {})
        found = {d.row: d for d in _from_dedupe(find_store_matches(store, rows), numbers)}
        for d in _within_file(rows, numbers, {}):
            old = found.get(d.row)
            found[d.row] = d if old is None else Duplicate(
                d.row, old.matches + d.matches, "; ".join(filter(None, (old.evidence, d.evidence))), old.score)
        return sorted(found.values(), key=lambda d: d.row)
    index = _store_index(store)
    return _within_file(rows, numbers, index)


def _from_dedupe(found, numbers: list[int]) -> list[Duplicate]:
    """Adapt dedupe.find_store_matches' answer: per row (index or aligned list) its matches."""
    out: list[Duplicate] = []
    items = found.items() if isinstance(found, dict) else enumerate(found or [])
    for i, matches in items:
        if not matches:
            continue
        ids, evidence, score = [], [], None
        for m in matches if isinstance(matches, (list, tuple)) else [matches]:
            get = m.get if isinstance(m, dict) else lambda k, d=None, m=m: getattr(m, k, d)
            ids.append(str(get("a") or get("customer_id") or get("id") or m))  # dedupe.Match: a = the id
            ev = get("evidence")
            if ev:
                evidence.append(ev if isinstance(ev, str) else "、".join(map(str, ev)))
            s = get("score")
            score = max(score or 0, s) if isinstance(s, (int, float)) else score
        out.append(Duplicate(numbers[i], tuple(dict.fromkeys(ids)), "; ".join(evidence), score))
    return out


def _store_index(store) -> dict[tuple[str, str], list[str]]:
    from sqlalchemy import select

    from .lookup import name_key

    t = ENTITY_TABLES["customer"]
    index: dict[tuple[str, str], list[str]] = {}
    with store.engine.connect() as conn:
        for cid, name, code, mobile in conn.execute(
                select(t.c.customer_id, t.c.customer_name, t.c.credit_code, t.c.mobile)
                .where(t.c.deleted.is_(False))):
            for kind, value in (("credit_code", code), ("mobile", mobile), ("name", name_key(name) if name else None)):
                if value:
                    index.setdefault((kind, value), []).append(cid)
    return index


_EVIDENCE = {"credit_code": ("统一社会信用代码相同", "same credit code"),
             "mobile": ("手机号相同", "same mobile"), "name": ("名称相同", "same name")}


def _within_file(rows: list[dict], numbers: list[int], index: dict) -> list[Duplicate]:
    """Exact matches against ``index`` (the store's) and against earlier rows of the file."""
    from .lookup import name_key

    names = {n: name_key(n) for n in {row.get("customer_name") for row in rows} if n}
    kinds = ("credit_code", "mobile", "name")
    columns = ([row.get("credit_code") for row in rows], [row.get("mobile") for row in rows],
               [names.get(row.get("customer_name")) for row in rows])
    # Only a value found twice in the file, or in the index, can make a row a duplicate: the
    # rows holding one are the few worth a closer look (a file of new customers has almost none).
    shared = [{v for v, c in Counter(col).items() if v and (c > 1 or (kind, v) in index)}
              for kind, col in zip(kinds, columns)]
    candidates = sorted({i for col, s in zip(columns, shared) if s for i, v in enumerate(col) if v in s})
    seen: dict[tuple[str, str], int] = {}
    out = []
    for i in candidates:
        n = numbers[i]
        keys = [(kind, col[i]) for kind, col, s in zip(kinds, columns, shared) if col[i] in s]
        if not any(k in seen or k in index for k in keys):  # the first row holding these values
            for k in keys:
                seen.setdefault(k, n)
            continue
        ids: dict[str, None] = {}
        why: dict[str, None] = {}
        for k in keys:
            for cid in index.get(k, ()):
                ids[cid] = None
                why[tr(*_EVIDENCE[k[0]])] = None
            if k in seen:
                ids[tr(f"第{seen[k]}行", f"row {seen[k]}")] = None
                why[tr(*_EVIDENCE[k[0]])] = None
        out.append(Duplicate(n, tuple(ids), "、".join(why) if lang() != "en" else ", ".join(why)))
    return out


# ---- apply ---------------------------------------------------------------------------------------

def apply_import(store, plan: ImportPlan, *, user: str = "admin", progress: Progress | None = None) -> ImportResult:
    """Create the plan's valid records in one transaction and return their ids.

    Either every record is stored (with its audit entries and the unmapped columns) or, on any
    error, none is.  Raises PermissionDenied, NotFound (an unknown owner) or StoreError.
    """
    say = progress or (lambda *a: None)
    ids: list[str] = []
    n = len(plan.records)
    with bulk_gc(), store.transaction(user, "import") as tx:
        for start in range(0, n, _CHUNK):
            say("write", start, n)
            extras = [{IMPORTED_KEY: extra} if extra else None
                      for extra in plan.extras[start:start + _CHUNK]]
            ids.extend(tx.create_many("customer", plan.records[start:start + _CHUNK], validated=True,
                                      extra_data=extras))
        tx.log("import", entity="customer", new={
            "file": plan.source.file, "sheet": plan.source.sheet, "rows": plan.total, "created": len(ids),
            "invalid": len(plan.bad_rows), "duplicates": len(plan.duplicates),
            "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None,
            "unmapped": plan.unmapped})
        say("write", n, n)
    return ImportResult(ids, plan)


# ---- the error workbook --------------------------------------------------------------------------

from .import_errors import write_error_workbook  # noqa: E402  (kept in its own module)

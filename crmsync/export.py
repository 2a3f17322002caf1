"""Customer lists out: chosen fields, a small filter language, masking, formula-injection safety.

    export_customers(store, "wang", out="list.csv", fields="customer_id,客户名称,手机号",
                     where="行业=智能制造 and 标签=高预算 and contacted in the last 3 months")

What makes an export safe to hand to marketing:

- **Formula injection.**  A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return would be run as a formula by Excel or LibreOffice.  In CSV such a value gets a leading
  apostrophe (``'=HYPERLINK(…)``: shown as text, never run); in xlsx it is written as a text cell
  with Excel's quote-prefix flag, its text unchanged.  Numbers stay numbers.
- **Leading zeros.**  CSV holds every value exactly as stored (``0571…`` stays ``0571…``); xlsx
  writes text fields as text cells in a text (``@``) format, so Excel keeps them too.
- **Encoding.**  CSV is UTF-8 with a BOM, so Excel opens Chinese correctly.
- **Masking.**  Sensitive fields (``sensitive=True`` in schema.py: 手机号, 座机, 邮箱, 证件号码) are
  masked (``138****5678``) on every row whose customer the user may not ``see_sensitive``
  (access.py), and on every row with ``mask=True``.
- **Scope and audit.**  Only customers the user may ``export`` are written, and the export is
  recorded in the audit log: who, which fields, which filter, how many rows, which file.
- **Password.**  An xlsx can be encrypted with a password (msoffcrypto-tool, Office's "Encrypt with
  Password"; Excel and LibreOffice ask for it on open).

The ``--where`` grammar (clauses joined by ``and`` / ``且`` / ``并且``)::

    FIELD = VALUE[|VALUE…]        field by label, key or synonym (行业, industry, 所属行业); one of the values
    FIELD != VALUE[|VALUE…]       none of the values
    标签 = TAG                     the customer carries the tag (also 标签 != TAG)
    地区 = NAME / region = NAME    province or city
    contacted in the last N days|weeks|months      最近N天|周|个月联系过 / 近N个月有联系
    not contacted in the last N days|weeks|months  N天|周|个月未联系

Values of list fields are read like the drop-downs (key, label or synonym: 成交, 成交客户, won).
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from . import access, clock
from .errors import InvalidInput, PermissionDenied
from .i18n import lang, tr
from .schema import CUSTOM_DATA_KEY, Field, header_index, normalise_header

#: Characters that make a spreadsheet read a text cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

FORMATS = ("csv", "xlsx")


# ---- the filter language -----------------------------------------------------------------------

@dataclass
class Where:
    sql: str = ""
    params: dict = field(default_factory=dict)
    text: str = ""


_SPLIT = re.compile(r"\s+(?:and|AND|And)\s+|\s*(?:并且|且|&&)\s*")
_CONTACTED = re.compile(
    r"^(?P<not>not\s+)?contacted\s+(?:in|within)\s+the\s+(?:last|past)\s+(?P<n>\d+)\s*(?P<unit>days?|weeks?|months?)$", re.I)
_CONTACTED_ZH = re.compile(r"^(?:最近|近)(?P<n>\d+)\s*(?P<unit>天|日|周|个月|月)(?:内)?(?:联系过|有联系|有跟进|跟进过)$")
_NOT_CONTACTED_ZH = re.compile(r"^(?P<n>\d+)\s*(?P<unit>天|日|周|个月|月)(?:内)?(?:未联系|没有联系|未跟进)$")
_COMPARE = re.compile(r"^(?P<field>[^=!<>]+?)\s*(?P<op>!=|≠|=|＝)\s*(?P<value>.*)$")
_UNIT_DAYS = {"day": 1, "days": 1, "天": 1, "日": 1, "week": 7, "weeks": 7, "周": 7,
              "month": 30, "months": 30, "个月": 30, "月": 30}
_REGION = {"region", "地区", "区域", "地域"}


def parse_where(store, where: str | None) -> Where:
    """Turn a --where text into an SQL condition on customers ``c``; raise InvalidInput naming the
    clause that cannot be read."""
    out = Where(text=(where or "").strip())
    if not out.text:
        return out
    ent = store.entity("customer")
    index = header_index(ent)
    enums = store.enums()
    parts = []
    for n, clause in enumerate(c.strip() for c in _SPLIT.split(out.text)):
        if not clause:
            continue
        p = f"w{n}"
        m = _CONTACTED.match(clause)
        mz = _CONTACTED_ZH.match(clause)
        mn = _NOT_CONTACTED_ZH.match(clause)
        if m or mz or mn:
            hit = m or mz or mn
            days = int(hit.group("n")) * _UNIT_DAYS[hit.group("unit").lower()]
            negate = bool(mn) or bool(m and m.group("not"))
            out.params[p] = (clock.now() - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
            parts.append(f"(c.last_contact_at IS NULL OR c.last_contact_at < :{p})" if negate
                         else f"c.last_contact_at >= :{p}")
            continue
        m = _COMPARE.match(clause)
        if not m:
            raise InvalidInput(tr(f"无法理解筛选条件“{clause}”；写作 字段=值，用 and 连接，例如 行业=智能制造 and 最近3个月联系过",
                                  f"cannot read the filter '{clause}'; write field=value joined by and, "
                                  "e.g. industry=manufacturing and contacted in the last 3 months"))
        name, op, raw = m.group("field").strip(), m.group("op"), m.group("value").strip().strip("\"'“”")
        negate = op in ("!=", "≠")
        values = [v.strip() for v in re.split(r"[|｜]", raw) if v.strip()]
        if not values:
            raise InvalidInput(tr(f"筛选条件“{clause}”缺少值", f"the filter '{clause}' has no value"))
        if normalise_header(name) in {normalise_header(r) for r in _REGION}:
            names = {f"{p}_{i}": v for i, v in enumerate(values)}
            out.params.update(names)
            cond = " OR ".join(f"c.province = :{k} OR c.city = :{k}" for k in names)
            parts.append(f"NOT ({cond})" if negate else f"({cond})")
            continue
        key = index.get(normalise_header(name))
        if key is None or key == "change_reason":
            raise InvalidInput(tr(f"筛选条件中的字段“{name}”不是客户字段", f"'{name}' in the filter is not a customer field"))
        f = ent.get(key)
        if f.custom:
            raise InvalidInput(tr(f"暂不支持按自定义字段“{name}”筛选", f"filtering by the custom field '{name}' is not supported"))
        names = {}
        for i, v in enumerate(values):
            if f.type == "enum" and f.enum:
                k = enums.normalise(f.enum, v)
                if k is None:
                    raise InvalidInput(tr(f"筛选条件中“{f.zh}”的值“{v}”不在列表中（{'、'.join(enums.labels(f.enum))}）",
                                          f"'{v}' is not a value of {f.en} ({', '.join(enums.labels(f.enum, 'en'))})"))
                v = k
            names[f"{p}_{i}"] = v
        if f.type == "tags":
            for k, v in names.items():
                names[k] = "%," + v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ",%"
            cond = " OR ".join(f"(',' || c.tags || ',') LIKE :{k} ESCAPE '\\'" for k in names)
            cond = f"({cond})"
            parts.append(f"(c.tags IS NULL OR NOT {cond})" if negate else cond)
        else:
            marks = ", ".join(f":{k}" for k in names)
            parts.append(f"(c.{key} IS NULL OR c.{key} NOT IN ({marks}))" if negate else f"c.{key} IN ({marks})")
        out.params.update(names)
    out.sql = "".join(f" AND {part}" for part in parts)
    return out


# ---- fields and values ---------------------------------------------------------------------------

def parse_fields(store, fields: str | list[str] | None) -> list[Field]:
    """The customer fields to export (labels, keys or synonyms, comma-separated); default: the id
    and every field a person types."""
    ent = store.entity("customer")
    if not fields:
        return [ent.get(ent.id_field)] + [f for f in ent.editable]
    names = fields.split(",") if isinstance(fields, str) else list(fields)
    index = header_index(ent)
    out = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        key = index.get(normalise_header(name))
        if key is None or key not in ent.keys:
            raise InvalidInput(tr(f"导出字段“{name}”不是客户字段", f"'{name}' is not a customer field"))
        if ent.get(key) not in out:
            out.append(ent.get(key))
    if not out:
        raise InvalidInput(tr("没有要导出的字段", "no fields to export"))
    return out


def neutralise(value: str) -> str:
    """A text that a spreadsheet would run as a formula, made inert for CSV (a leading apostrophe)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _shown(store, f: Field, value):
    """A stored value as the export shows it: labels for lists, yes/no, numbers as numbers."""
    if value is None or value == "":
        return None
    if f.type == "enum" and f.enum:
        return store.enums().label(f.enum, value, lang())
    if f.type == "bool":
        return tr("是", "Yes") if value else tr("否", "No")
    if f.type in ("money", "int"):
        return value
    return str(value)


# ---- the export ----------------------------------------------------------------------------------

@dataclass
class ExportResult:
    path: Path
    rows: int
    fields: list[str]
    masked: list[str]  # labels of fields masked on at least one row
    encrypted: bool = False


def _export_scope(user: access.User) -> tuple[str, dict]:
    scope = access.GRANTS.get("export", {}).get(user.role)
    if scope is None:
        raise PermissionDenied(access.check(user, "export").reason)
    if scope == access.OWN:
        return " AND c.owner = :x_owner", {"x_owner": user.name}
    if scope == access.TEAM:
        return " AND c.team = :x_team", {"x_team": user.team or ""}
    return "", {}


def export_customers(store, user: str, out: str | Path, *, fields=None, where: str | None = None,
                     fmt: str | None = None, password: str | None = None, mask: bool = False) -> ExportResult:
    """Write the customers ``user`` may export that match ``where`` to ``out``; return what was written.

    :param fmt: ``csv`` or ``xlsx`` (default: from the file's extension).
    :param password: encrypt the xlsx with this password (not for CSV).
    :param mask: mask sensitive fields on every row, whatever the role.
    Raises InvalidInput (a bad field, filter, format), PermissionDenied; no file is left behind then.
    """
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "csv").lower()
    if fmt not in FORMATS:
        raise InvalidInput(tr(f"不支持的导出格式“{fmt}”：可选 csv、xlsx", f"unsupported format '{fmt}': use csv or xlsx"))
    if password and fmt != "xlsx":
        raise InvalidInput(tr("只有 xlsx 导出可以加密码", "only an xlsx export can have a password"))
    actor = store.user(user)
    chosen = parse_fields(store, fields)
    cond = parse_where(store, where)
    scope_sql, scope_params = _export_scope(actor)
    stored = [f for f in chosen if not f.custom]
    cols = list(dict.fromkeys(["customer_id", "owner", "team", *(f.key for f in stored)]))
    need_custom = any(f.custom for f in chosen)
    select_cols = ", ".join(f"c.{k}" for k in cols) + (f", c.{CUSTOM_DATA_KEY}" if need_custom else "")
    sql = (f"SELECT {select_cols} FROM customers c WHERE NOT c.deleted{scope_sql}{cond.sql} ORDER BY c.customer_id")
    from .lookup import mask as mask_value

    sensitive = [f for f in chosen if f.sensitive]
    masked: set[str] = set()
    header = [f.label(lang()) for f in chosen]
    rows = []
    with store.engine.connect() as conn:
        for r in conn.execute(text(sql), {**scope_params, **cond.params}):
            rec = dict(zip(cols, r))
            if need_custom:
                rec.update(json.loads(r[-1] or "{}"))
            hide = mask or (sensitive and not access.check(actor, "see_sensitive", rec))
            row = []
            for f in chosen:
                v = _shown(store, f, rec.get(f.key))
                if hide and f.sensitive and v:
                    v = mask_value(f, str(v))
                    masked.add(f.label(lang()))
                row.append(v)
            rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        _write_csv(out, header, rows)
    else:
        _write_xlsx(out, header, rows, chosen, password)
    result = ExportResult(out, len(rows), [f.key for f in chosen], sorted(masked), bool(password))
    with store.transaction(actor, "export") as tx:
        tx.log("export", entity="customer", record_id=None,
               new={"file": out.name, "format": fmt, "fields": result.fields, "where": cond.text,
                    "rows": len(rows), "masked": result.masked, "encrypted": bool(password)})
    return result


def _atomic(out: Path, prefix: str = ".crmsync-export-") -> Path:
    """A temporary file beside out, with the permissions a new file normally gets (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=out.suffix, dir=out.parent)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return Path(tmp)


def _write_csv(out: Path, header: list[str], rows: list[list]) -> None:
    tmp = _atomic(out)
    try:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh, lineterminator="\r\n")
            w.writerow([neutralise(h) for h in header])
            for row in rows:
                w.writerow(["" if v is None else neutralise(v) if isinstance(v, str) else _number_text(v) for v in row])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _number_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


def _write_xlsx(out: Path, header: list[str], rows: list[list], chosen: list[Field], password: str | None) -> None:
    """A new workbook with XlsxWriter (a new file: nothing to keep), then encrypted if asked."""
    import xlsxwriter

    tmp = _atomic(out)
    try:
        # strings_to_formulas/urls/numbers off: every str is written as the text it is
        wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True, "strings_to_formulas": False,
                                            "strings_to_urls": False, "strings_to_numbers": False})
        ws = wb.add_worksheet(tr("客户", "Customers"))
        bold = wb.add_format({"bold": True, "bg_color": "#DDEBF7"})
        as_text = wb.add_format({"num_format": "@"})
        inert = wb.add_format({"num_format": "@", "quote_prefix": True})
        money = wb.add_format({"num_format": "#,##0.00"})
        for j, (h, f) in enumerate(zip(header, chosen)):
            ws.write_string(0, j, h, bold)
            ws.set_column(j, j, max(10, min(40, len(h.encode("gbk", "replace")) + 4)),
                          money if f.type == "money" else None)
        ws.freeze_panes(1, 0)
        for i, row in enumerate(rows, start=1):
            for j, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, str):
                    ws.write_string(i, j, v, inert if v.startswith(FORMULA_START) else as_text)
                elif isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                else:
                    ws.write_number(i, j, v, money if chosen[j].type == "money" else None)
        if rows:
            ws.autofilter(0, 0, len(rows), len(header) - 1)
        wb.close()
        if password:
            _encrypt(tmp, password)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _encrypt(path: Path, password: str) -> None:
    """Encrypt an xlsx in place with a password (ECMA-376 agile encryption, as Office does)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = path.read_bytes()
    import io

    with open(path, "wb") as fh:
        OOXMLFile(io.BytesIO(plain)).encrypt(password, fh)

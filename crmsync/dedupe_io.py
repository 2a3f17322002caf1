"""Files in and out of the duplicate finder: a spreadsheet's rows, a configuration file, the
pairs CSV.

    rows, ids, cfg = read_rows("客户.xlsx")                 # customer columns found by header
    rows, ids, cfg = read_rows("febrl3.csv", config="febrl.json", id_column="rec_id")
    write_pairs("pairs.csv", result.pairs, ids)

A configuration file (JSON) names the compared columns, their kinds and the blocking keys:

    {"fields": [{"key": "given_name", "kind": "person"}, {"key": "soc_sec_id", "kind": "id"}],
     "blocks": [["soc_sec_id"], ["given_name", "date_of_birth:4"]], "probability": 0.9}
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .dedupe import Config, FieldRule, KINDS, Match, customer_config
from .errors import InvalidFile, InvalidInput
from .i18n import tr

__all__ = ["load_config", "read_rows", "write_pairs"]


def load_config(path: str | Path) -> Config:
    """A Config from a JSON file; raises InvalidFile/InvalidInput naming what is wrong."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise InvalidFile(tr(f"无法读取配置“{path.name}”：{exc}", f"cannot read config '{path.name}': {exc}")) from None
    try:
        fields = tuple(FieldRule(f["key"], f["kind"], f.get("label", "")) for f in spec["fields"])
        blocks = tuple(tuple(b) for b in spec["blocks"])
        extra = {k: spec[k] for k in ("probability", "max_block", "min_population") if k in spec}
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(tr(f"配置“{path.name}”有误：{exc}（字段类型可用：{', '.join(KINDS)}）",
                              f"config '{path.name}' is wrong: {exc} (kinds: {', '.join(KINDS)})")) from None
    keys = {f.key for f in fields}
    for b in blocks:
        for part in b:
            if part.partition(":")[0] not in keys:
                raise InvalidInput(tr(f"配置“{path.name}”：分块键 {part} 不是比较的字段",
                                      f"config '{path.name}': blocking key {part} is not a compared field"))
    return Config(fields, blocks, **extra)


def read_rows(path: str | Path, *, sheet: str | None = None, config: str | Path | None = None,
              id_column: str | None = None) -> tuple[list[dict], list, Config]:
    """The rows of a file as dicts of the compared fields, each row's id (the id column's value,
    else its row number in the file) and the configuration used.

    Without a config the customer fields are found by their headers (labels and synonyms, in
    Chinese or English, under any title rows).  Raises InvalidFile/InvalidInput.
    """
    from .readers import read_file

    raw = read_file(path, sheet)
    grid = raw.grid
    if config is not None:
        cfg = load_config(config)
        top = next((i for i, r in enumerate(grid) if any(v is not None for v in r)), None)
        if top is None:
            raise InvalidInput(tr(f"{raw.where()}没有数据", f"{raw.where()} holds no data"))
        header = [None if v is None else str(v).strip() for v in grid[top]]
        columns = {f.key: header.index(f.key) for f in cfg.fields if f.key in header}
        missing = [f.key for f in cfg.fields if f.key not in columns]
        if missing:
            raise InvalidInput(tr(f"{raw.where()}缺少配置中的列：{', '.join(missing)}",
                                  f"{raw.where()} lacks the configured columns: {', '.join(missing)}"))
    else:
        from .headers import find_header_row, match_columns
        from .schema import CUSTOMER

        cfg = customer_config()
        top = find_header_row(grid, CUSTOMER)
        header = [None if v is None else str(v).strip() for v in grid[top]]
        wanted = {f.key for f in cfg.fields}
        columns = {c.field: c.index for c in match_columns(grid[top], CUSTOMER).mapped if c.field in wanted}
        if "customer_name" not in columns and "mobile" not in columns:
            raise InvalidInput(tr(f"{raw.where()}第 {top + 1} 行没有找到客户名称或手机号列",
                                  f"{raw.where()} row {top + 1}: no customer name or mobile column found"))
    id_at = None
    if id_column:
        if id_column not in header:
            raise InvalidInput(tr(f"{raw.where()}没有列“{id_column}”（--id-column）",
                                  f"{raw.where()} has no column '{id_column}' (--id-column)"))
        id_at = header.index(id_column)
    rows, ids = [], []
    items = list(columns.items())
    for number, r in enumerate(grid[top + 1:], start=top + 2):
        if not any(v is not None for v in r):
            continue
        n = len(r)
        rows.append({k: (r[j] if j < n else None) for k, j in items})
        ids.append((r[id_at] if id_at is not None and id_at < n else None) if id_at is not None else number)
    return rows, ids, cfg


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_pairs(path: str | Path, pairs: list[Match], ids: list) -> int:
    """Write the pairs CSV (UTF-8 with BOM, so Excel shows Chinese): id_a, id_b, score, evidence."""
    path = Path(path)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_a", "id_b", "score", "evidence"])
        for m in pairs:
            w.writerow([_safe(ids[m.a]), _safe(ids[m.b]), f"{m.score:.4f}", _safe(m.evidence)])
    return len(pairs)

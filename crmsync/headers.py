"""Finding the header row of a legacy sheet and matching its columns to fields.

Legacy sheets put a title (“2023年客户名单”), a date or a blank row above the header, name columns
their own way (公司名称, 联系电话, Tel) and in any order.  The header is the row among the first
``SCAN_ROWS`` whose cells match the most known spellings (schema.header_index: labels, keys and
synonyms in Chinese and English).  Each column then maps to a field, unless the user's ``--map``
says otherwise; a column that maps to nothing (or repeats a field already taken) is *unmapped*:
listed to the user and kept with the record, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import InvalidInput
from .i18n import tr
from .schema import Entity, header_index, normalise_header
from .xlsx_limits import col_letters, shown

__all__ = ["Column", "ColumnMap", "find_header_row", "match_columns", "parse_mapping", "importable"]

SCAN_ROWS = 30  # how far down a header may sit under titles and notes

# Markers legacy and template headers carry around the label: 客户名称*, 手机号（必填）, 备注(选填)
_MARKERS = re.compile(r"[（(\[【][^）)\]】]*[）)\]】]|[*＊]|必填|选填|可选")


def _key(text: object) -> str:
    return normalise_header(text)


def importable(ent: Entity) -> dict[str, str]:
    """Return header spelling → field key for the fields a file may fill (not the store's own)."""
    return {k: v for k, v in header_index(ent).items() if v in ent.keys and not ent.get(v).system}


def _lookup(index: dict[str, str], text: object) -> str | None:
    if text is None:
        return None
    key = _key(text)
    if not key:
        return None
    found = index.get(key)
    if found is None:
        bare = _key(_MARKERS.sub("", str(text)))
        found = index.get(bare) if bare else None
    return found


def find_header_row(grid: list[list[object]], ent: Entity, scan: int = SCAN_ROWS) -> int:
    """Return the 0-based index of the header row: the first of the rows matching most fields.

    A sheet where no row names a known field gets its first non-empty row (everything in it will
    be unmapped, and the user told); an empty sheet raises InvalidInput.
    """
    index = importable(ent)
    best, best_score = -1, 0
    for i, row in enumerate(grid[:scan]):
        keys = {_lookup(index, v) for v in row if isinstance(v, str)}
        keys.discard(None)
        if len(keys) > best_score:
            best, best_score = i, len(keys)
    if best >= 0:
        return best
    for i, row in enumerate(grid):
        if any(v is not None for v in row):
            return i
    raise InvalidInput(tr("文件中没有数据", "the file holds no data"))


@dataclass(frozen=True)
class Column:
    """One column of the file: its 0-based index, header text and the field it fills (or None)."""

    index: int
    header: str
    field: str | None
    why: str = ""  # "label" | "synonym" | "map" | "repeat" | "system" | "" (unknown)

    @property
    def letter(self) -> str:
        return col_letters(self.index + 1)


@dataclass
class ColumnMap:
    columns: list[Column] = field(default_factory=list)

    @property
    def mapped(self) -> list[Column]:
        return [c for c in self.columns if c.field]

    @property
    def unmapped(self) -> list[Column]:
        return [c for c in self.columns if not c.field and c.header]

    def by_field(self) -> dict[str, Column]:
        return {c.field: c for c in self.columns if c.field}


def parse_mapping(pairs: list[str] | None, ent: Entity) -> dict[str, str]:
    """Return normalised header → field key from ``--map "列名=field"`` options.

    The field may be a key (mobile), a label (手机号) or a synonym.  Raises InvalidInput naming a
    malformed pair or an unknown field.
    """
    index = importable(ent)
    out: dict[str, str] = {}
    for pair in pairs or []:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip() or not target.strip():
            raise InvalidInput(tr(f"--map 需要“列名=字段”的形式：{pair}", f"--map needs 'column=field': {pair}"))
        key = target.strip() if target.strip() in index.values() else _lookup(index, target)
        if key is None:
            names = ", ".join(sorted({f.key for f in ent.fields if not f.system}))
            raise InvalidInput(tr(f"--map {pair}: 未知字段“{shown(target)}”；可用：{names}",
                                  f"--map {pair}: unknown field '{shown(target)}'; use one of: {names}"))
        out[_key(header)] = key
    return out


def match_columns(header: list[object], ent: Entity, overrides: dict[str, str] | None = None) -> ColumnMap:
    """Return each header cell's field: ``overrides`` first, then labels, then synonyms.

    A field claimed twice goes to the first column (a second mobile column falls back to the
    landline field when that is free); later ones stay unmapped, kept and listed.
    """
    overrides = overrides or {}
    index = importable(ent)
    labels = {_key(s): f.key for f in ent.fields if not f.system for s in (f.key, f.zh, f.en)}
    system = {_key(s) for f in ent.fields if f.system for s in (f.key, f.zh, f.en, *f.synonyms)}
    taken: set[str] = set(overrides.values())
    columns: list[Column] = []
    pending: list[tuple[int, str, str | None, str]] = []
    for i, cell in enumerate(header):
        text = "" if cell is None else str(cell).strip()
        key = _key(text)
        if key in overrides:
            pending.append((i, text, overrides[key], "map"))
            continue
        found = _lookup(index, text) if text else None
        why = "label" if found and (labels.get(key) == found) else "synonym" if found else (
            "system" if key in system or _key(_MARKERS.sub("", text)) in system else "")
        pending.append((i, text, found, why))
    # Overrides first, then exact labels, then synonyms: a real label is never lost to a synonym.
    claimed: dict[int, tuple[str | None, str]] = {}
    for rank in ("map", "label", "synonym"):
        for i, text, found, why in pending:
            if why != rank:
                continue
            if rank == "map":
                claimed[i] = (found, why)
            elif found in taken:
                backup = "phone" if ent.by_key.get(found) and ent.get(found).type == "mobile" else None
                if backup and backup in ent.keys and backup not in taken:
                    taken.add(backup)
                    claimed[i] = (backup, why)
                else:
                    claimed[i] = (None, "repeat")
            else:
                taken.add(found)  # type: ignore[arg-type]
                claimed[i] = (found, why)
    for i, text, found, why in pending:
        key, how = claimed.get(i, (None, why))
        columns.append(Column(i, text, key, how))
    return ColumnMap(columns)

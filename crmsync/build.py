"""Build crm_workbook.xlsm from its sources, reproducibly, without Excel.

Sources: crmsync/schema.py and the enumerations (sheets, columns, drop-downs), templates/layout.json
(sheet order, widths, report sheets, help text), templates/ribbon/ (the ribbon tab),
templates/vba/ (the ribbon callback), the installed xlwings package (its standalone VBA module)
and crmsync/udfs.py (the worksheet functions, wrapped by xlwings' own generator).

Steps:

1. openpyxl writes the sheets (build_sheets.py) as a workbook package;
2. pyOpenVBA adds the VBA project and its modules (build_vba.py), in one session;
3. the package is rewritten once: the main content type becomes the macro-enabled one, the ribbon
   part ``customUI/customUI14.xml`` and its root relationship are added, ``docProps/core.xml`` gets
   pinned times, and the zip is written with a fixed entry order, fixed timestamps and attributes
   and one compression level.  Two builds of the same sources are byte-identical.

Usage::

    from crmsync.build import build_workbook
    build_workbook(Path("crm_workbook.xlsm"), lang="zh")

or ``python -m crmsync.build [OUT] [--lang en]``.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from . import macros
from .build_sheets import write_sheets
from .build_vba import render_ribbon, udf_wrappers, vba_modules

__all__ = ["DEFAULT_OUT", "REPO", "TEMPLATES", "build_bytes", "build_workbook",
           "workbook_is_current"]

#: The repository (templates/ and the committed workbook live at its top level).
REPO = Path(__file__).resolve().parent.parent
#: The sources: templates/ of a checkout, else a copy shipped in the package (crmsync/templates).
TEMPLATES = next((p for p in (REPO / "templates", Path(__file__).resolve().parent / "templates")
                  if p.is_dir()), REPO / "templates")
DEFAULT_OUT = REPO / "crm_workbook.xlsm"

LANGS = ("zh", "en")
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
RIBBON_PART = "customUI/customUI14.xml"
RIBBON_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
#: Every time written into the package: zip entries and docProps (created/modified).
PINNED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
PINNED_DOC_TIME = "1980-01-01T00:00:00Z"
_COMPRESS_LEVEL = 6
_FIRST_ENTRIES = ("[Content_Types].xml", "_rels/.rels")


def build_workbook(out: Path, lang: str = "zh", templates: Path | None = None) -> Path:
    """Build the workbook into ``out`` and return ``out``.

    :param lang: ``zh`` (Chinese sheet names, labels and ribbon) or ``en``.
    :param templates: the templates folder; the repository's ``templates/`` by default.

    Raises ValueError for an unknown language or an invalid template (non-ASCII VBA, a sheet
    name ending in ``.py``, an undefined ribbon placeholder).

    >>> build_workbook(Path("/tmp/crm_workbook.xlsm"), lang="en")   # doctest: +SKIP
    PosixPath('/tmp/crm_workbook.xlsm')
    """
    out = Path(out)
    data = build_bytes(lang, templates)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def build_bytes(lang: str = "zh", templates: Path | None = None) -> bytes:
    """Return the bytes of the workbook built from the sources (see the module docstring)."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: use one of {', '.join(LANGS)}")
    templates = Path(templates or TEMPLATES)
    layout = json.loads((templates / "layout.json").read_text(encoding="utf-8"))
    udf_source, functions = udf_wrappers()
    modules = vba_modules(templates, udf_source)
    buttons = [(a.label(lang), a.tip(lang)) for a in macros.ACTIONS.values()]
    functions = [(sig, _doc_in(doc, lang)) for sig, doc in functions]
    wb = write_sheets(layout, lang, buttons=buttons, functions=functions)
    with tempfile.TemporaryDirectory(prefix="crmsync-build-") as tmpdir:
        path = Path(tmpdir) / "book.xlsm"  # pyOpenVBA adds projects to .xlsm files only
        wb.save(path)
        _add_vba(path, modules)
        parts = _read_parts(path.read_bytes())
    parts = _finish_parts(parts, render_ribbon(templates, lang))
    return _write_zip(parts)


def workbook_is_current(path: Path = DEFAULT_OUT, lang: str | None = None,
                        templates: Path | None = None) -> bool:
    """Return True when ``path`` is what building from the current sources gives.

    The file counts as current when its bytes are equal to a fresh build, or when its parts
    (names, order and uncompressed contents) are: a different zlib may compress the same parts
    into other bytes.  The language is read from the file's ``CRMSYNC_LANG`` setting unless given.
    A missing or unreadable file is not current; an error in the sources propagates.
    """
    path = Path(path)
    if not path.is_file():
        return False
    committed = path.read_bytes()
    try:
        lang = lang or _lang_of(committed)
        committed_parts = _read_parts(committed)
    except Exception:  # not a workbook at all (openpyxl and zipfile raise several types)
        return False
    fresh = build_bytes(lang, templates)
    return committed == fresh or committed_parts == _read_parts(fresh)


# ---- steps ---------------------------------------------------------------------------------------

def _doc_in(doc: str, lang: str) -> str:
    """The Chinese or the English half of a bilingual docstring ("中文。English.")."""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    zh, sep, en = first.partition("。")
    if not sep:
        return first
    return en.strip() or first if lang == "en" else zh + sep


def _add_vba(path: Path, modules) -> None:
    """Add the VBA project with every module to the file at ``path`` (one pyOpenVBA session)."""
    from pyopenvba import ExcelFile, VBAModuleKind

    with ExcelFile(path) as book:
        project = book.add_vba_project()
        for m in modules:
            kind = VBAModuleKind.other if m.kind == "class" else VBAModuleKind.standard
            project.add_module(m.name, m.source, kind=kind)
        book.save()


def _read_parts(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def _finish_parts(parts: list[tuple[str, bytes]], ribbon: bytes) -> list[tuple[str, bytes]]:
    """Macro-enabled content type, the ribbon part and relationship, pinned document times;
    entries in a fixed order."""
    by_name = dict(parts)
    types = by_name["[Content_Types].xml"].decode("utf-8")
    if XLSX_MAIN not in types and MACRO_MAIN not in types:
        raise ValueError("the workbook part has an unexpected content type")
    by_name["[Content_Types].xml"] = types.replace(XLSX_MAIN, MACRO_MAIN).encode("utf-8")

    rels = by_name["_rels/.rels"].decode("utf-8")
    if RIBBON_REL not in rels:
        rel = f'<Relationship Id="rIdCrmRibbon" Type="{RIBBON_REL}" Target="{RIBBON_PART}"/>'
        rels = rels.replace("</Relationships>", rel + "</Relationships>", 1)
    by_name["_rels/.rels"] = rels.encode("utf-8")
    by_name[RIBBON_PART] = ribbon

    core = by_name["docProps/core.xml"].decode("utf-8")
    for tag in ("created", "modified"):
        core = re.sub(rf"(<dcterms:{tag}\b[^>]*>)[^<]*(</dcterms:{tag}>)",
                      rf"\g<1>{PINNED_DOC_TIME}\g<2>", core)
    by_name["docProps/core.xml"] = core.encode("utf-8")

    rest = sorted(n for n in by_name if n not in _FIRST_ENTRIES)
    return [(n, by_name[n]) for n in (*_FIRST_ENTRIES, *rest)]


def _write_zip(parts: list[tuple[str, bytes]]) -> bytes:
    """The package as zip bytes with nothing that depends on the time, platform or user."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in parts:
            info = zipfile.ZipInfo(name, date_time=PINNED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0  # "MS-DOS", as Excel writes; zipfile's default varies by OS
            info.external_attr = 0
            z.writestr(info, data, compresslevel=_COMPRESS_LEVEL)
    return buf.getvalue()


def _lang_of(data: bytes) -> str:
    """The CRMSYNC_LANG value written into a built workbook's xlwings.conf sheet (zh if none)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True)
    try:
        if "xlwings.conf" not in wb.sheetnames:
            return "zh"
        for row in wb["xlwings.conf"].iter_rows(min_col=1, max_col=2, values_only=True):
            if row[0] == "CRMSYNC_LANG":
                return "en" if row[1] == "en" else "zh"
        return "zh"
    finally:
        wb.close()


def _cli(argv: list[str] | None = None) -> int:
    """Build the workbook (default: crm_workbook.xlsm at the top of the repository)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crmsync.build", description=_cli.__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--lang", choices=LANGS, default="zh")
    args = parser.parse_args(argv)
    print(build_workbook(args.out, args.lang))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())

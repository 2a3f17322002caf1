"""atheris: mutated workbook parts through the import reader → a sheet or one-line InvalidFile.

The input chooses a part of a minimal workbook and replaces it with the fuzzer's bytes; a
python-calamine abort kills the process, which libFuzzer reports as a crash (the finding we want).
"""

import sys

import atheris
from common import SCRATCH, one_line

with atheris.instrument_imports():
    import hostile
    from crmsync.errors import CrmsyncError
    from crmsync.readers import read_file

PARTS = ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
         "_rels/.rels", "[Content_Types].xml"]
PATH = SCRATCH / "客户.xlsx"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    part = PARTS[data[0] % len(PARTS)]
    body = data[1:]
    kw = {"sheet": body} if part.endswith("sheet1.xml") else {"sst": body} if part.endswith("Strings.xml") \
        else {"extra": {part: body}}
    if part == "xl/workbook.xml":
        kw = {"workbook": body.decode("utf-8", "replace")}
    hostile.minimal_xlsx(PATH, **kw)
    try:
        read_file(PATH)
    except CrmsyncError as e:
        one_line(str(e))


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

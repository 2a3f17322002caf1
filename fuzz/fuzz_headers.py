"""atheris: any header row (cells of text, numbers, blanks) → a column map taking each field once."""

import sys

import atheris
from common import one_line

with atheris.instrument_imports():
    from crmsync.errors import InvalidInput
    from crmsync.headers import find_header_row, match_columns
    from crmsync.schema import ENTITIES

CUSTOMER = ENTITIES["customer"]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    grid = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        row = []
        for _ in range(fdp.ConsumeIntInRange(0, 10)):
            kind = fdp.ConsumeIntInRange(0, 3)
            row.append(None if kind == 0 else fdp.ConsumeInt(4) if kind == 1 else fdp.ConsumeFloat() if kind == 2
                       else fdp.ConsumeUnicodeNoSurrogates(12))
        grid.append(row)
    try:
        cmap = match_columns(grid[find_header_row(grid, CUSTOMER)], CUSTOMER)
    except InvalidInput as e:
        one_line(str(e))
        return
    taken = [c.field for c in cmap.columns if c.field]
    if len(taken) != len(set(taken)):
        raise AssertionError(f"a field taken twice: {taken}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

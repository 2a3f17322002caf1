"""atheris: any bytes as a .csv through the import reader → a sheet or one-line InvalidFile."""

import sys

import atheris
from common import SCRATCH, one_line

with atheris.instrument_imports():
    from crmsync.errors import InvalidFile
    from crmsync.readers import read_file

PATH = SCRATCH / "客户.csv"


def test_one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        read_file(PATH)
    except InvalidFile as e:
        one_line(str(e))
        if "客户.csv" not in str(e):
            raise AssertionError(f"message does not name the file: {e}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

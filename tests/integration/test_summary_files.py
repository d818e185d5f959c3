"""The summary as a spreadsheet laid out like a command centre's template, for a day and for a
range, read back with openpyxl: the title, the table of children with the 合计 row equal to
aggregate's own figures, the lists, the alerts, the notes line and the signature lines; and
the page setup that prints it on A4 landscape. The console runs in process against the
services running on real NATS and PostgreSQL."""

import io
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from services.console.app import create_app
from shared.clock import utc_now
from tests.integration.summary_support import TOWN, VILLAGE, send_town_reports, today

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def console(servers, system, auth):
    send_town_reports(system, auth)
    settings = servers.settings(console_ingest_url=system["ingest"],
                                console_aggregate_url=system["aggregate"],
                                console_alerts_url=system["alerts"],
                                console_notify_url=system["notify"])
    with TestClient(create_app(settings, clock=utc_now), headers=auth) as client:
        yield client


def sheet_of(response: httpx.Response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    book = load_workbook(io.BytesIO(response.content))
    assert len(book.worksheets) == 1
    return book.worksheets[0]


def rows(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def find(table: list[list], first: str) -> int:
    return next(i for i, r in enumerate(table) if r and r[0] == first)


def api(system: dict, auth: dict, path: str, **params):
    answer = httpx.get(f"{system['aggregate']}{path}", params=params, headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_days_workbook_holds_the_template_and_the_apis_totals(console, system, auth):
    ws = sheet_of(console.get(f"/api/summary/{TOWN}/xlsx", params={"day": str(today())}))
    table = rows(ws)
    assert table[0][0] == "月田镇疫情防控日报"
    assert f"区划代码：{TOWN}" in table[1][0] and f"{today().month}月{today().day}日" in table[1][0]
    header = table[find(table, "区划代码")]
    assert header[:11] == ["区划代码", "名称", "应报单位数", "已报", "零报告", "迟报", "漏报",
                           "待报", "免报", "报告率", "及时率"]
    assert "发热病例（例）" in header and "居家观察人数（人）" in header
    fever, observed = header.index("发热病例（例）"), header.index("居家观察人数（人）")
    # The 合计 row is the town's own figures as aggregate answers them; each village's row is
    # its own, and they come before the total.
    town = api(system, auth, f"/v1/rollups/{TOWN}", day=str(today()))
    total = table[find(table, TOWN)]
    assert total[1] == "合计"
    c = town["completeness"]
    assert total[2:9] == [c[k] for k in ("expected", "reported", "zero", "late", "missing",
                                         "pending", "exempt")]
    assert total[9] == pytest.approx(c["reporting_rate"])
    assert total[fever] == town["values"]["fever"] and total[observed] == 6
    village = table[find(table, VILLAGE)]
    assert find(table, VILLAGE) < find(table, TOWN)
    assert village[fever] == 2
    cell = ws.cell(row=find(table, TOWN) + 1, column=10)
    assert cell.number_format == "0.0%" and cell.font.b  # a rate is a number, shown as one
    # The school the town runs itself, the lists of the day, the alerts and the notes.
    assert any(r[0] == f"{TOWN}-PS" and r[3] == "已报" for r in table)
    missing = find(table, "二、漏报单位（" + str(c["missing"]) + "）")
    assert table[missing + 1][:4] == ["单位代码", "单位名称", "所属区划", "类型"]
    assert {r[0] for r in table[missing + 2:missing + 2 + c["missing"]]} == {
        u["unit"] for u in c["missing_units"]}
    assert any(str(r[0]).startswith("三、迟报单位") for r in table)
    assert any(str(r[0]).startswith("四、预警情况") for r in table)
    assert any(r[0] == f"{VILLAGE}-CL" and r[4] == "一名发热病人已转诊" for r in table)
    # The notes line and the signature lines at the foot, in the template's order.
    foot = [v for v in table[-1] if v]
    assert foot == ["填报人：", "审核人：", "填报时间：", "盖章："]
    assert table[-3][0] == "备注："
    # Printed on A4 landscape, every column on the page's width, the header on every page.
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert ws.print_title_rows.endswith(str(find(table, "区划代码") + 1))
    assert ws.column_dimensions["B"].width >= 16


def test_a_ranges_workbook_folds_the_days_by_their_aggregation(console, system, auth):
    """Over yesterday and today the fever cases add up (1 + 2) and the people under home
    observation are today's headcount (6), not 16; the counts are unit-days."""
    start, end = str(today() - timedelta(days=1)), str(today())
    response = console.get(f"/api/summary/{TOWN}/xlsx", params={"start": start, "end": end})
    assert f"summary-{TOWN}-{start}_{end}.xlsx" in response.headers["content-disposition"]
    table = rows(sheet_of(response))
    assert table[0][0] == "月田镇疫情防控汇总表"
    header = table[find(table, "区划代码")]
    town = api(system, auth, f"/v1/rollups/{TOWN}", start=start, end=end)
    total = table[find(table, TOWN)]
    assert total[2] == town["completeness"]["expected"]
    village = table[find(table, VILLAGE)]
    assert village[header.index("发热病例（例）")] == 3
    assert village[header.index("居家观察人数（人）")] == 6
    assert total[header.index("居家观察人数（人）")] == town["values"]["home_observation"]
    assert not any(str(r[0]).startswith("二、漏报单位") for r in table)  # per day only
    assert [v for v in table[-1] if v] == ["填报人：", "审核人：", "填报时间：", "盖章："]


def test_a_week_and_its_summary_say_so(console):
    doc = console.get(f"/api/summary/{TOWN}", params={"period": "week", "day": str(today())})
    assert doc.status_code == 200, doc.text
    body = doc.json()
    assert body["period"] == "week" and body["end"] == str(today())
    assert body["start"] == str(today() - timedelta(days=today().weekday()))
    ws = sheet_of(console.get(f"/api/summary/{TOWN}/xlsx",
                              params={"period": "week", "day": str(today())}))
    assert ws.cell(row=1, column=1).value == "月田镇疫情防控周报"


def test_a_node_outside_the_area_gets_no_workbook(console, servers):
    from tests.conftest import issue_token

    town_token = issue_token(servers, "operator", "430621108", "公田镇值班")
    refused = console.get(f"/api/summary/{TOWN}/xlsx",
                          headers={"Authorization": f"Bearer {town_token}"})
    assert refused.status_code == 403

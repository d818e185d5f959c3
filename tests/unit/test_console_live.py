"""The console's pure parts: which bus messages a page sees, and the daily summary's CSV."""

import asyncio
import csv
import io
import json

from services.console import summary
from services.console.live import Hub, LiveEvent, read, visible
from shared.catalogue import default_catalogue


def test_rollup_hint_is_read_from_subject_and_body():
    event = read("rollup.updated.430621108", json.dumps(
        {"node": "430621108", "day": "2026-03-02", "updated_at": "x"}).encode())
    assert event == LiveEvent("rollup", "430621108", {"node": "430621108", "day": "2026-03-02"})


def test_alert_event_keeps_what_the_page_needs():
    body = {"change": "opened", "alert_id": "a1", "kind": "case", "node": "430621108001",
            "unit": "430621108001-CL", "status": "open", "deadline": "2026-03-02T10:00:00Z",
            "recipients": ["village"], "details": {"secret": 1}}
    event = read("alert.opened.430621.430621108.430621108001", json.dumps(body).encode())
    assert event is not None and event.kind == "alert" and event.node == "430621108001"
    assert event.data["unit"] == "430621108001-CL" and "details" not in event.data


def test_unreadable_or_foreign_messages_are_ignored():
    assert read("rollup.updated.43", b"not json") is None
    assert read("alert.opened.x", b"[1, 2]") is None
    assert read("report.accepted.430621", b"{}") is None


def test_an_operator_sees_only_their_subtree():
    town_event = LiveEvent("rollup", "430621108", {})
    assert visible("430621", town_event)
    assert visible("430621108", town_event)
    assert not visible("430621109", town_event)
    assert not visible("430621108001", town_event)  # a village does not see its town's figures
    assert not visible("430622", LiveEvent("alert", "430621108001", {}))


async def test_hub_fans_out_by_scope_and_resyncs_a_page_that_stopped_reading():
    hub = Hub()
    async with hub.listen("430621108") as mine, hub.listen("430621109") as other:
        for _ in range(600):
            hub.publish(LiveEvent("rollup", "430621108001", {"node": "430621108001"}))
        assert other.empty()
        drained = [mine.get_nowait() for _ in range(mine.qsize())]
        assert drained[0].kind == "resync" and len(drained) < 600
        hub.close()
        assert (await asyncio.wait_for(other.get(), 1)).kind == "bye"
    assert hub.pages == 0


def test_summary_csv_holds_the_rollup_the_lists_and_the_alerts():
    comp = {"expected": 10, "reported": 8, "zero": 5, "late": 1, "missing": 1, "pending": 1,
            "exempt": 2, "reporting_rate": 0.8, "on_time_rate": 0.7,
            "missing_units": [{"unit": "U1", "name": "某村卫生室", "node": "430621108001",
                               "unit_type": "village_clinic"}],
            "pending_units": [{"unit": "U3", "name": "某村委会", "node": "430621108001",
                               "unit_type": "village_committee", "cutoff": "14:00:00"}],
            "exempt_units": [{"unit": "U4", "name": "某幼儿园", "node": "430621108001",
                              "unit_type": "kindergarten", "reason": "寒假"}],
            "late_units": []}
    view = {"node": "430621", "name": "岳阳县", "day": "2026-03-02", "values": {"fever": 3},
            "completeness": comp}
    child = {"kind": "node", "node": "430621108", "name": "公田镇", "values": {"fever": 3},
             "completeness": {**comp, "reporting_rate": 0.8}}
    alert = {"kind": "case", "status": "acknowledged", "unit": "U2", "node": "430621108001",
             "started_at": "s", "deadline": "d", "overdue": False, "escalations": 0,
             "acknowledged_by": "值班员"}
    doc = summary.build(view, [child], [alert], default_catalogue(), "2026-03-02 18:00")
    assert doc["alert_counts"]["acknowledged"] == 1
    data = summary.to_csv(doc)
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    total = next(r for r in rows if r and r[0] == "430621")
    assert total[1] == "合计 岳阳县" and total[2:9] == ["10", "8", "5", "1", "1", "1", "2"]
    assert total[9] == "80.0%"
    assert any(r and r[0] == "U1" for r in rows)
    assert ["U3", "某村委会", "430621108001", "village_committee", "14:00:00"] in rows
    assert ["U4", "某幼儿园", "430621108001", "kindergarten", "寒假"] in rows
    assert any(len(r) > 8 and r[1].startswith("已确认") and r[8] == "值班员" for r in rows)


def test_the_summary_shows_the_metrics_reported_typed_as_declared():
    """Its columns are fever and flu-like cases and whatever was reported (not the whole
    catalogue), with their unit of measure; counts read as integers."""
    view = {"node": "430621", "name": "岳阳县", "day": "2026-03-02", "completeness": {},
            "values": {"fever": 3.0, "home_observation": 12.0, "supply_disinfectant_tonnes": 0.1
                       + 0.2}}
    doc = summary.build(view, [], [], default_catalogue(), "2026-03-02 18:00")
    assert [m["code"] for m in doc["metrics"]] == [
        "fever", "ili", "home_observation", "supply_disinfectant_tonnes"]
    assert doc["rows"][0]["values"] == {"fever": 3, "home_observation": 12,
                                        "supply_disinfectant_tonnes": 0.3}
    rows = list(csv.reader(io.StringIO(summary.to_csv(doc).decode("utf-8-sig"))))
    header = next(r for r in rows if r and r[0].startswith("区划代码"))
    assert header[-2:] == ["居家观察人数 People under home observation (人)",
                           "消毒液库存(吨) Disinfectant in store, tonnes (吨)"]
    total = next(r for r in rows if r and r[0] == "430621")
    assert total[-4:] == ["3", "0", "12", "0.3"]


def test_the_summary_lists_the_nodes_below_a_minimum_reserve():
    low = {"code": "town_reserve_15_days", "metric": "supply_days", "value": 9, "minimum": 15,
           "name_zh": "防疫物资储备不足 15 天", "name_en": "Supplies for less than 15 days"}
    view = {"node": "430621", "name": "岳阳县", "day": "2026-03-02", "completeness": {},
            "values": {"supply_days": 9}}
    child = {"kind": "node", "node": "430621108", "name": "公田镇", "completeness": {},
             "values": {"supply_days": 9}, "below_minimum": [low]}
    doc = summary.build(view, [child], [], default_catalogue(), "2026-03-02 18:00")
    rows = list(csv.reader(io.StringIO(summary.to_csv(doc).decode("utf-8-sig"))))
    assert ["430621108", "公田镇", "防疫物资储备不足 15 天 Supplies for less than 15 days", "9",
            "15"] in rows


def test_the_summary_lists_the_units_notes_as_written():
    view = {"node": "430621", "name": "岳阳县", "day": "2026-03-02", "completeness": {},
            "values": {"fever": 1}}
    note = {"unit": "430621108001-CL", "unit_name": "某村卫生室", "node": "430621108001",
            "revision": 2, "note": "一名发热病人已转诊"}
    doc = summary.build(view, [], [], default_catalogue(), "2026-03-02 18:00", [note])
    assert doc["notes"] == [note]
    rows = list(csv.reader(io.StringIO(summary.to_csv(doc).decode("utf-8-sig"))))
    assert ["430621108001-CL", "某村卫生室", "430621108001", "2", "一名发热病人已转诊"] in rows


def test_a_sector_page_gets_its_sectors_hints_and_every_cutoffs() -> None:
    from services.console.live import Audience

    edu = Audience("430621", "education")
    school = read("rollup.updated.430621108", b'{"node": "430621108", "sectors": ["education"]}')
    clinic = read("rollup.updated.430621108", b'{"node": "430621108", "sectors": ["health"]}')
    cutoff = read("rollup.updated.430621108", b'{"node": "430621108"}')
    assert school and clinic and cutoff
    assert school.data["sectors"] == ["education"]
    assert visible(edu, school) and visible(edu, cutoff) and not visible(edu, clinic)
    assert visible("430621", clinic)  # a territorial page gets every sector's
    assert not visible(Audience("430622", "education"), school)


def test_the_bulletin_names_the_worst_units_and_every_flagged_one() -> None:
    from services.console import bulletin

    def unit(code: str, missing: int, late: int) -> dict:
        return {"unit": code, "name": code, "node": "430621108001", "unit_type": "village_clinic",
                "expected": 7, "reported": 7 - missing, "zero": 0, "late": late,
                "missing": missing, "corrected": 0, "sent_back": None, "reporting_rate": 0.5,
                "on_time_rate": 0.5, "rank": 0}

    units = [unit(f"U{i:02d}", 40 - i, 0) for i in range(40)] + [unit("CLEAN", 0, 0),
                                                                  unit("FLAGGED", 0, 0)]
    tallies = {"node": "430621108", "name": "公田镇", "start": "2026-11-23", "end": "2026-11-29",
               "days": 7, "totals": unit("T", 3, 1), "units_total": len(units), "units": units,
               "children": [], "filter": {"sector": "health"}}
    counts = {"total": 1, "open": 1, "by_kind": {}, "open_by_unit": {"FLAGGED": 1}}
    tallies["children"] = [{"node": "430621108001", "name": "村", "rank": 1}]
    doc = bulletin.build(tallies, [], counts, "2026-11-30 08:00",
                         [{"unit": "U00"}, {"unit": "U00"}, {"unit": "FLAGGED"}])
    assert doc["totals"]["sent_back"] == 3 and doc["children"][0]["sent_back"] == 3
    assert {u["unit"]: u["sent_back"] for u in doc["units"]}["U00"] == 2
    named = [u["unit"] for u in doc["units"]]
    assert len(named) == bulletin.UNITS_NAMED + 1 and named[-1] == "FLAGGED"
    assert "CLEAN" not in named and doc["sector_name"]["zh"] == "卫生健康"
    sheet = bulletin.to_csv(doc).decode("utf-8-sig")
    assert "漏报、迟报最多的单位 Most missing and late days (31)" in sheet
    assert next(csv.reader(io.StringIO(sheet)))[0].startswith("疫情防控报送通报")

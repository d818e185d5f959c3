"""Registry changes reach the running services without a restart: ingest accepts a unit imported
after it started, and a unit moved to another village rolls up there from the move's day on,
while the days before stay where they were."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from rollcall.reference import import_and_announce
from tests.conftest import eventually

ZONE = ZoneInfo("Asia/Shanghai")
TOWN = "430621500"  # 东洞庭湖管理处; generated villages there are numbered 001 to 025
HERE, THERE = f"{TOWN}901", f"{TOWN}902"


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def submit(system: dict, unit: str, day: str, values: dict, auth: dict) -> httpx.Response:
    return httpx.post(f"{system['ingest']}/v1/reports", timeout=10, headers=auth,
                      json={"unit": unit, "day": day, "reporter": "测试", "values": values})


def rollup(system: dict, node: str, day: str, auth: dict) -> dict:
    return httpx.get(f"{system['aggregate']}/v1/rollups/{node}", params={"day": day},
                     headers=auth).json()


def imported(servers, *paths: Path, **options) -> None:
    _, result = asyncio.run(import_and_announce(servers.database_url, servers.nats_url,
                                                list(paths), **options))
    assert result.problems == [], [str(p) for p in result.problems]


def test_ingest_accepts_a_unit_imported_after_it_started(system: dict, servers, auth: dict,
                                                         tmp_path: Path) -> None:
    today = datetime.now(ZONE).date().isoformat()
    unit = f"{HERE}-NEW"
    refused = submit(system, unit, today, {"fever": 1}, auth)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "unknown_unit"

    villages = write(tmp_path / "villages.csv", "code,name", f"{HERE},新建村", f"{THERE},新建二村")
    units = write(tmp_path / "units.csv", "code,name,type,node", f"{unit},新建村卫生室,"
                  f"village_clinic,{HERE}")
    imported(servers, villages, units)

    accepted = eventually(
        lambda: submit(system, unit, today, {"fever": 1}, auth).status_code == 201,
        timeout=30, interval=0.5)
    assert accepted
    assert eventually(lambda: rollup(system, HERE, today, auth)["values"].get("fever") == 1,
                      timeout=30)
    assert rollup(system, HERE, today, auth)["name"] == "新建村"


def test_a_moved_unit_rolls_up_where_it_was_on_each_day(system: dict, servers, auth: dict,
                                                        tmp_path: Path) -> None:
    today = datetime.now(ZONE).date()
    yesterday = today - timedelta(days=1)
    unit, witness = f"{HERE}-MOVE", f"{HERE}-W"
    villages = write(tmp_path / "villages.csv", "code,name", f"{HERE},新建村", f"{THERE},新建二村")
    header = "code,name,type,node,placed_from"
    units = write(tmp_path / "units.csv", header,
                  f"{unit},流动药店,pharmacy,{HERE},{today - timedelta(days=5)}")
    imported(servers, villages, units)
    # The move, from today; a unit new in the same import tells when ingest has reloaded it.
    write(units, header, f"{unit},流动药店,pharmacy,{THERE},{today}",
          f"{witness},见证药店,pharmacy,{HERE},")
    imported(servers, units)
    assert eventually(
        lambda: submit(system, witness, today.isoformat(), {}, auth).status_code == 201,
        timeout=30, interval=0.5)

    assert submit(system, unit, yesterday.isoformat(), {"ili": 3}, auth).status_code == 201
    assert submit(system, unit, today.isoformat(), {"ili": 4}, auth).status_code == 201
    assert eventually(
        lambda: rollup(system, THERE, today.isoformat(), auth)["values"].get("ili") == 4,
        timeout=30)
    assert eventually(lambda: rollup(system, HERE, yesterday.isoformat(), auth)["values"].get("ili")
                      == 3, timeout=30)
    assert rollup(system, HERE, today.isoformat(), auth)["values"].get("ili") is None
    assert rollup(system, THERE, yesterday.isoformat(), auth)["values"].get("ili") is None
    # Expected where it is on each day: today in its new village, yesterday in the old one.
    missing_there = rollup(system, THERE, today.isoformat(), auth)["completeness"]
    assert missing_there["reported"] == 1 and missing_there["missing"] == 0
    town = rollup(system, TOWN, yesterday.isoformat(), auth)["values"]
    assert town.get("ili") == 3

"""Accountability on real NATS and PostgreSQL with the services running: a town's week of
reports, zero reports, corrections and silences, sent through ingest, gives per unit and per
village the tallies (expected, reported, zero, late, missing, corrected) that a recompute from
the ingest ledger and the registry gives, ranked as a 通报 ranks them."""

import asyncio
import random
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from shared.registry.reference import Reference
from tests.conftest import issue_token

ZONE = ZoneInfo("Asia/Shanghai")
TOWN = "430621107"  # no other test reports there (test_rate_limit takes the far end)
LATEST = text("""
    SELECT DISTINCT ON (unit_code, day) unit_code, day, node_code, revision, zero, late
    FROM ingest.reports
    WHERE day BETWEEN :d0 AND :d1 AND node_code LIKE :town || '%'
    ORDER BY unit_code, day, revision DESC
""")


def values(unit_type: str, n: int) -> dict[str, int]:
    return {m: n for m in default_catalogue().form_for(unit_type).required}


async def ledger_and_registry(database_url: str, d0: date, d1: date):
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            latest = (await session.execute(LATEST, {"d0": d0, "d1": d1, "town": TOWN})).all()
            reference = await Reference.load(session)
    finally:
        await engine.dispose()
    return latest, reference


def test_a_weeks_tallies_equal_a_recompute_from_the_ledger(servers, system) -> None:
    county = {"Authorization": f"Bearer {issue_token(servers, 'operator', '430621', '县')}"}
    today = datetime.now(ZONE).date()
    d0, d1 = today - timedelta(days=7), today - timedelta(days=1)  # past days: none pending
    days = [d0 + timedelta(days=i) for i in range(7)]
    _, reference = asyncio.run(ledger_and_registry(servers.database_url, d0, d1))
    units = sorted(u.code for u in reference.units.values()
                   if any(u.active_on(d) and (u.node_on(d) or "").startswith(TOWN) for d in days))
    assert len(units) > 50

    rng = random.Random(18)
    bulk, corrections = [], []
    for day in days:
        for code in units:
            unit = reference.units[code]
            if not unit.active_on(day) or rng.random() < 0.25:
                continue  # 漏报
            zero = rng.random() < 0.4
            bulk.append({"unit": code, "day": day.isoformat(), "reporter": "信息员",
                         "values": {} if zero else values(unit.unit_type, 1)})
            if not zero and rng.random() < 0.2:
                corrections.append((code, day, values(unit.unit_type, 2)))
    answer = httpx.post(f"{system['ingest']}/v1/reports/bulk", json=bulk, headers=county,
                        timeout=120)
    assert answer.status_code in (200, 201, 207), answer.text
    assert all(r["status"] in ("accepted", "duplicate") for r in answer.json()["results"]), [
        r for r in answer.json()["results"] if r["status"] not in ("accepted", "duplicate")][:3]
    for code, day, fixed in corrections:
        answer = httpx.post(f"{system['ingest']}/v1/reports/{code}/{day}/corrections",
                            headers=county, timeout=30,
                            json={"values": fixed, "reporter": "信息员", "reason": "填错"})
        assert answer.status_code in (200, 201), answer.text

    latest, reference = asyncio.run(ledger_and_registry(servers.database_url, d0, d1))
    reported = {(r.unit_code, r.day): r for r in latest}

    def tallies() -> dict:
        answer = httpx.get(f"{system['aggregate']}/v1/accountability/{TOWN}", headers=county,
                           params={"start": d0.isoformat(), "end": d1.isoformat()}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    deadline = time.monotonic() + 60
    while (got := tallies())["totals"]["corrected"] < len({(c, d) for c, d, _ in corrections}) \
            or got["totals"]["reported"] < len(reported):
        assert time.monotonic() < deadline, got["totals"]
        time.sleep(0.5)

    # The recompute: the ledger's latest revision of each unit-day, the registry's units.
    want: dict[str, Counter] = defaultdict(Counter)
    for code in units:
        unit = reference.units[code]
        for day in days:
            node = unit.node_on(day)
            if not unit.active_on(day) or node is None or not node.startswith(TOWN):
                continue
            tally = want[code]
            tally["expected"] += 1
            if (r := reported.get((code, day))) is None:
                tally["missing"] += 1
                continue
            tally["reported"] += 1
            tally["zero"] += r.zero
            tally["late"] += r.late
            tally["corrected"] += r.revision > 1
    fields = ("expected", "reported", "zero", "late", "missing", "corrected")
    got_units = {u["unit"]: u for u in got["units"]}
    assert set(got_units) == set(want)
    for code, tally in want.items():
        assert {f: got_units[code][f] for f in fields} == {f: tally[f] for f in fields}, code
        assert got_units[code]["pending"] == 0 and got_units[code]["sent_back"] is None
    assert {f: got["totals"][f] for f in fields} == {
        f: sum(t[f] for t in want.values()) for f in fields}
    assert got["totals"]["corrected"] > 0 and got["totals"]["missing"] > 0
    assert got["totals"]["zero"] > 0

    # Each village's tallies are its units'; the lowest reporting rate comes first.
    by_village: dict[str, Counter] = defaultdict(Counter)
    for code, tally in want.items():
        node = reference.units[code].node_on(d1) or ""
        if len(node) == 12:
            by_village[node].update(tally)
    villages = {c["node"]: c for c in got["children"]}
    assert set(villages) == set(by_village)
    for node, tally in by_village.items():
        assert villages[node]["missing"] == tally["missing"], node
        assert villages[node]["reported"] == tally["reported"], node
    rates = [c["reporting_rate"] for c in got["children"]]
    assert rates == sorted(rates) and [c["rank"] for c in got["children"]] == list(
        range(1, len(rates) + 1))
    worst = [u["missing"] + u["late"] for u in got["units"]]
    assert worst == sorted(worst, reverse=True)

    # A sector's tallies are its units' alone.
    edu = {"Authorization": "Bearer " + issue_token(servers, "operator", "430621", "县教育局",
                                                    sector="education")}
    answer = httpx.get(f"{system['aggregate']}/v1/accountability/{TOWN}", headers=edu,
                       params={"start": d0.isoformat(), "end": d1.isoformat()}, timeout=60)
    schools = answer.json()["units"]
    assert schools and {u["sector"] for u in schools} == {"education"}
    assert {u["unit"] for u in schools} < set(want)

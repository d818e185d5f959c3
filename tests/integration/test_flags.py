"""疑似瞒报 flags on real NATS and PostgreSQL: a zero report on a day the same unit sent a case
is flagged whichever arrives first, non-zero values identical for N days are flagged once per
run; flags are listed and counted within the operator's area and sector, and a dismissal is
kept with who, when and why."""

from datetime import UTC, datetime, timedelta

import nats
import pytest

from shared import auth
from shared.db import make_engine, make_sessionmaker
from tests.integration.alerts_harness import (
    BASE_DAY,
    Bus,
    FakeClock,
    alerts_database,
    case,
    issue_operator,
    local,
    replica,
    report,
    wait_for,
)
from tests.integration.test_alerts_api import bearer

VILLAGE, TOWN = "430621113001", "430621113"
CLINIC, VC = f"{VILLAGE}-CL", f"{VILLAGE}-VC"
PC = f"{VILLAGE}-PC1"


async def sector_operator(database_url: str, scope: str, holder: str, sector: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            token, _ = await auth.issue(session, "operator", scope, holder, datetime.now(UTC),
                                        sector)
    finally:
        await engine.dispose()
    return token


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def bus(servers):
    nc = await nats.connect(servers.nats_url)
    yield Bus(nc)
    await nc.close()


async def test_a_zero_report_on_a_day_with_a_case_is_flagged_and_a_dismissal_kept(
        servers, db, bus) -> None:
    day = BASE_DAY + timedelta(days=3)
    clock = FakeClock(local(day, 20))
    town = await issue_operator(db, TOWN)
    health = await sector_operator(db, TOWN, "卫健局", "health")
    schools = await sector_operator(db, TOWN, "教育局", "education")
    async with replica(servers, db, clock) as r:
        # The zero report first, then the case; and for another unit the case first.
        await bus.publish(report(CLINIC, VILLAGE, "village_clinic", day, {}))
        await bus.publish(case(CLINIC, VILLAGE, "village_clinic", local(day, 15)))
        await bus.publish(case(PC, VILLAGE, "private_clinic", local(day, 9), kind="ili"))
        await bus.publish(report(PC, VILLAGE, "private_clinic", day, {"fever": 0, "ili": 0}))
        # A case on another day than a zero report: nothing.
        await bus.publish(report(VC, VILLAGE, "village_committee", day, {}))
        await bus.publish(case(VC, VILLAGE, "village_committee", local(day + timedelta(days=1),
                                                                       9)))
        params = {"node": TOWN, "start": day.isoformat(),
                  "end": (day + timedelta(days=1)).isoformat()}

        async def listed(token: str = town) -> list[dict]:
            answer = await r.http.get("/v1/flags", params=params, headers=bearer(token))
            assert answer.status_code == 200, answer.text
            return answer.json()

        async def two() -> list[dict] | None:
            found = await listed()
            return found if len(found) >= 2 else None

        found = await wait_for(two)
        assert {(f["unit"], f["kind"], f["day"]) for f in found} == {
            (CLINIC, "zero_with_case", day.isoformat()), (PC, "zero_with_case", day.isoformat())}
        assert all(f["status"] == "open" and f["sector"] == "health" for f in found)
        counts = (await r.http.get("/v1/flags/counts", params=params,
                                   headers=bearer(town))).json()
        assert (counts["total"], counts["open"]) == (2, 2)
        assert counts["by_kind"]["zero_with_case"] == {"open": 2, "dismissed": 0}
        assert counts["open_by_unit"] == {CLINIC: 1, PC: 1}
        assert len(await listed(health)) == 2 and await listed(schools) == []

        # A second case that day (sent twice) raises no second flag: the flag counts it.
        again = case(CLINIC, VILLAGE, "village_clinic", local(day, 16))
        await bus.publish(again)
        await bus.publish(again)

        async def counted_twice() -> list[dict] | None:
            found = await listed()
            return found if any(f["unit"] == CLINIC and f["details"]["cases"] == 2
                                for f in found) else None

        found = await wait_for(counted_twice)
        assert len(found) == 2

        flag = next(f for f in found if f["unit"] == CLINIC)
        path = f"/v1/flags/{flag['flag_id']}/dismiss"
        refused = await r.http.post(path, json={"reason": "x"}, headers=bearer(schools))
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "outside_sector"
        assert (await r.http.post(path, json={"reason": ""}, headers=bearer(town))
                ).status_code == 422
        done = await r.http.post(path, json={"reason": "已核实:病人为外村来诊"},
                                 headers=bearer(health))
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["dismissed_by"],
                done.json()["dismissal_reason"]) == ("dismissed", "卫健局", "已核实:病人为外村来诊")
        twice = await r.http.post(path, json={"reason": "再次"}, headers=bearer(town))
        assert twice.status_code == 409
        assert twice.json()["errors"][0]["code"] == "flag_dismissed"

    # Kept: a new replica reads the dismissal as it was made, the flag still listed.
    async with replica(servers, db, clock) as r:
        kept = (await r.http.get("/v1/flags", params={**params, "status": "dismissed"},
                                 headers=bearer(town))).json()
        assert [(f["flag_id"], f["dismissed_by"], f["dismissal_reason"]) for f in kept] == [
            (flag["flag_id"], "卫健局", "已核实:病人为外村来诊")]
        counts = (await r.http.get("/v1/flags/counts", params=params,
                                   headers=bearer(town))).json()
        assert (counts["total"], counts["open"]) == (2, 1)


async def test_identical_values_for_n_days_are_flagged_once_per_run(servers, db, bus) -> None:
    first = BASE_DAY + timedelta(days=10)
    clock = FakeClock(local(first + timedelta(days=9), 20))
    town = await issue_operator(db, TOWN)
    same = {"fever": 2, "ili": 1}
    async with replica(servers, db, clock) as r:
        assert r.ctx.rules.identical_days == 5
        # Four identical days, a different one, then six identical days.
        days = [first + timedelta(days=i) for i in range(11)]
        for i, day in enumerate(days):
            await bus.publish(report(CLINIC, VILLAGE, "village_clinic", day,
                                     {"fever": 3, "ili": 1} if i == 4 else same))
        params = {"node": TOWN, "start": first.isoformat(),
                  "end": days[-1].isoformat(), "kind": "identical_values"}

        async def run_of_six() -> list[dict] | None:
            found = (await r.http.get("/v1/flags", params=params, headers=bearer(town))).json()
            return found if found and found[0]["details"]["days"] == 6 else None

        found = await wait_for(run_of_six)
        assert len(found) == 1
        assert found[0]["details"]["first_day"] == days[5].isoformat()
        assert found[0]["details"]["last_day"] == days[10].isoformat()
        assert found[0]["day"] == days[10].isoformat()
        # A correction that changes the values of a day in the run breaks nothing already said.
        await bus.publish(report(CLINIC, VILLAGE, "village_clinic", days[0], {"fever": 9},
                                 revision=2))
        found = await wait_for(run_of_six)
        assert len(found) == 1

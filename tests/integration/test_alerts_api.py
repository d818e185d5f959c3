"""The operators' HTTP API on real NATS and PostgreSQL: open alerts of a subtree with the time
left, acknowledge (the clock stops), close with an outcome and a note, the history; and an
operator acts only inside their own subtree."""

import uuid
from datetime import timedelta

import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.alerts_harness import (
    BASE_DAY,
    Bus,
    FakeClock,
    alert_of_case,
    alerts_database,
    case,
    history,
    issue_operator,
    issue_unit,
    local,
    replica,
    wait_for,
)

VILLAGE, TOWN, OTHER_TOWN = "430621108001", "430621108", "430621104"
MIN = timedelta(minutes=1)


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def bus(servers):
    nc = await nats.connect(servers.nats_url)
    yield Bus(nc)
    await nc.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_operator_lists_acknowledges_and_closes_inside_their_subtree(
        servers, db, bus) -> None:
    found = local(BASE_DAY + timedelta(days=30), 16, 0)
    clock = FakeClock(found + 10 * MIN)
    town, county = await issue_operator(db, TOWN), await issue_operator(db, "430621")
    other, unit = await issue_operator(db, OTHER_TOWN), await issue_unit(db, f"{VILLAGE}-CL")
    async with replica(servers, db, clock) as r:
        event = case(f"{VILLAGE}-CL", VILLAGE, "village_clinic", found)
        await bus.publish(event)
        alert_id = str(await wait_for(lambda: alert_of_case(r.ctx, event)))
        api = r.http

        listed = (await api.get("/v1/alerts", params={"kind": "case"},
                                headers=bearer(town))).json()
        mine = next(a for a in listed if a["alert_id"] == alert_id)
        assert mine["seconds_left"] == 110 * 60 and mine["status"] == "open"
        assert mine["level"] == "village" and mine["recipients"] == ["village_committee"]
        assert all(a["node"].startswith(TOWN) for a in listed)
        gauges = {(sample.name, sample.labels.get("level")): sample.value
                  for family in text_string_to_metric_families((await api.get("/metrics")).text)
                  for sample in family.samples}
        assert gauges[("rollcall_alerts_open", "village")] == 1
        assert gauges[("rollcall_alerts_overdue", "village")] == 0
        by_county = (await api.get("/v1/alerts", params={"node": VILLAGE},
                                   headers=bearer(county))).json()
        assert alert_id in {a["alert_id"] for a in by_county}

        # Outside one's subtree, without a token, or as a unit: refused with a reason.
        refused = await api.get("/v1/alerts", params={"node": VILLAGE}, headers=bearer(other))
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "outside_area"
        assert (await api.post(f"/v1/alerts/{alert_id}/acknowledge",
                               headers=bearer(other))).status_code == 403
        # The codes of the one catalogue, as every service answers them.
        for answer, status, code in (
                (await api.get(f"/v1/alerts/{alert_id}"), 401, "unauthenticated"),
                (await api.get("/v1/alerts", headers=bearer("rc_nonsense")), 401, "bad_token"),
                (await api.get("/v1/alerts", headers=bearer(unit)), 403, "not_operator"),
                (await api.get(f"/v1/alerts/{uuid.uuid4()}", headers=bearer(town)), 404,
                 "unknown_alert"),
                (await api.get("/v1/alerts", params={"node": "43x"}, headers=bearer(town)), 422,
                 "bad_node")):
            assert (answer.status_code, answer.json()["errors"][0]["code"]) == (status, code)

        clock.set(found + 90 * MIN + timedelta(seconds=1))
        await r.tick()  # the 30-minute warning, once its moment has passed
        clock.set(found + 95 * MIN)
        acked = await api.post(f"/v1/alerts/{alert_id}/acknowledge",
                               json={"reason": "已电话联系村委会"}, headers=bearer(town))
        assert acked.status_code == 200, acked.text
        assert acked.json()["status"] == "acknowledged" and acked.json()["seconds_left"] is None
        again = await api.post(f"/v1/alerts/{alert_id}/acknowledge", headers=bearer(town))
        assert again.status_code == 409
        assert again.json()["errors"][0]["code"] == "wrong_state"

        clock.set(found + 200 * MIN)
        await r.tick()  # acknowledged: nothing escalates
        bad = await api.post(f"/v1/alerts/{alert_id}/close", json={"outcome": "cured"},
                             headers=bearer(town))
        assert bad.status_code == 422
        closed = await api.post(f"/v1/alerts/{alert_id}/close",
                                json={"outcome": "referred", "note": "已转诊至县医院发热门诊"},
                                headers=bearer(town))
        assert closed.status_code == 200, closed.text
        assert closed.json()["outcome"] == "referred" and closed.json()["status"] == "closed"
        assert (await api.post(f"/v1/alerts/{alert_id}/close",
                               json={"outcome": "other", "note": "x"},
                               headers=bearer(town))).status_code == 409

        steps = (await api.get(f"/v1/alerts/{alert_id}/history", headers=bearer(town))).json()
        assert [(s["change"], s["actor"], s["reason"]) for s in steps] == [
            ("opened", "system", None), ("warned", "system", "30 minutes left"),
            ("acknowledged", f"值班员-{TOWN}", "已电话联系村委会"),
            ("closed", f"值班员-{TOWN}", "已转诊至县医院发热门诊")]
        assert [at for _, at, *_ in await history(r.ctx, alert_id)][2:] == [
            found + 95 * MIN, found + 200 * MIN]
        assert alert_id not in {a["alert_id"] for a in (await api.get(
            "/v1/alerts", headers=bearer(town))).json()}
        assert alert_id in {a["alert_id"] for a in (await api.get(
            "/v1/alerts", params={"status": "closed"}, headers=bearer(town))).json()}

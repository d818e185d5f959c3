"""`GET /v1/alerts` pages through any number of alerts: a county with more than 1,000 active
alerts (missing reports at a cutoff) is read whole through the cursor, each alert exactly once
even as new ones open between pages; a node alone or its subtree; and the counts per kind and
level. The alerts are opened in bulk through the repository, in process."""

import uuid
from datetime import date, timedelta

import pytest

from services.alerts import repository
from services.alerts.machine import NewAlert
from shared.auth import Principal
from shared.rules import load_rules
from tests.integration.alerts_harness import (
    BASE_DAY,
    FakeClock,
    alerts_database,
    issue_operator,
    local,
    replica,
)

COUNTY = "439981"  # not a real county, and no other test's: so no other alerts mix in
TOWNS = [f"{COUNTY}{t:03d}" for t in (1, 2, 3)]
VILLAGES = [f"{town}{v:03d}" for town in TOWNS for v in range(1, 402)]  # 1,203
RULES = load_rules()
MIN = timedelta(minutes=1)


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


def missing(node: str, day: date, started, tag: str = "") -> NewAlert:
    return NewAlert(key=f"missing:{node}:{day.isoformat()}:1400{tag}", kind="missing_report",
                    topic="missing_report", node=node, day=day, started_at=started,
                    received_at=started, recipients=["village_committee"],
                    details={"day": day.isoformat(), "cutoff": "14:00", "units": []})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_more_than_a_thousand_alerts_are_read_whole_through_the_cursor(
        servers, db) -> None:
    day = BASE_DAY + timedelta(days=200)
    # Three cutoffs an hour apart: many alerts share a deadline, so the alert id breaks ties.
    starts = [local(day, 12), local(day, 13), local(day, 14)]
    now = starts[0] + 150 * MIN  # past the first deadline by half an hour
    clock = FakeClock(now)
    token = await issue_operator(db, COUNTY)
    async with replica(servers, db, clock) as r:
        async with r.ctx.sessions() as session, session.begin():
            opened = await repository.open_alerts(session, [
                missing(node, day, starts[i % 3]) for i, node in enumerate(VILLAGES + TOWNS)],
                RULES, now)
            taken = Principal(uuid.uuid4(), "operator", COUNTY, "值班员")
            for state in opened[:30]:  # some acknowledged: they list after the open ones
                await repository.acknowledge(session, state.alert_id, taken, None, now, RULES)
        assert len(opened) == len(VILLAGES) + len(TOWNS) == 1206

        async def read(params: dict, pages: list, late: list | None = None) -> list[dict]:
            seen, cursor = [], None
            while True:
                answer = await r.http.get("/v1/alerts", headers=bearer(token),
                                          params={**params, **({"cursor": cursor} if cursor
                                                               else {})})
                assert answer.status_code == 200, answer.text
                seen += answer.json()
                pages.append(len(answer.json()))
                cursor = answer.headers.get("Next-Cursor")
                if late:  # alerts opened between pages: before and after the cursor
                    async with r.ctx.sessions() as session, session.begin():
                        await repository.open_alerts(session, late, RULES, now)
                    late = None
                if cursor is None:
                    return seen

        newcomers = [missing(VILLAGES[0], day, starts[0] - MIN, tag="-early"),
                     missing(VILLAGES[1], day, starts[2] + MIN, tag="-late")]
        pages: list[int] = []
        listed = await read({"node": COUNTY, "limit": 500}, pages, late=newcomers)
        ids = [a["alert_id"] for a in listed]
        assert len(ids) == len(set(ids)), "an alert listed twice"
        assert {str(s.alert_id) for s in opened} <= set(ids), "an alert never listed"
        assert len(ids) == 1207 and pages == [500, 500, 207]  # the later newcomer, not the
        # earlier one: its place was on a page already read
        order = [(a["status"] != "open", a["deadline"], a["alert_id"]) for a in listed]
        assert order == sorted(order) and [a["status"] for a in listed[-30:]] == [
            "acknowledged"] * 30

        # One node alone, or its subtree.
        alone = await read({"node": TOWNS[0], "scope": "exact"}, [])
        assert [a["node"] for a in alone] == [TOWNS[0]]
        below = await read({"node": TOWNS[0], "limit": 1000}, [])
        # The town, its 401 villages, and the two newcomers (villages of it).
        assert len(below) == 404 and all(a["node"].startswith(TOWNS[0]) for a in below)
        for on, expected in ((day, 404), (day - timedelta(days=1), 0)):
            assert len(await read({"node": TOWNS[0], "day": on.isoformat()}, [])) == expected

        counts = (await r.http.get("/v1/alerts/counts", headers=bearer(token),
                                   params={"node": COUNTY})).json()
        assert counts["total"] == 1208 and counts["by_kind"] == {"missing_report": 1208}
        # Past their deadline at once, the first cutoff's alerts went a level up: 401 villages'
        # and the early newcomer's to their town, the first town's to the county. The other
        # two towns' alerts are still their own.
        assert counts["by_level"] == {"county": 1, "town": 401 + 1 + 2, "village": 803}
        # Open past their deadline: the first cutoff's 402, less the 10 of them acknowledged,
        # and the early newcomer.
        assert counts["overdue"] == 402 - 10 + 1
        exact = (await r.http.get("/v1/alerts/counts", headers=bearer(token),
                                  params={"node": TOWNS[0], "scope": "exact"})).json()
        assert (exact["total"], exact["by_level"]) == (1, {"county": 1})

        refused = await r.http.get("/v1/alerts", headers=bearer(token),
                                   params={"node": COUNTY, "cursor": "not-a-cursor"})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["code"] == "bad_cursor"
        not_a_day = await r.http.get("/v1/alerts", headers=bearer(token), params={"day": "0.0"})
        assert not_a_day.status_code == 422 and not_a_day.json()["errors"][0]["field"] == "day"

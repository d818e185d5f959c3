"""Review and sign-off (逐级审核上报) on real NATS and PostgreSQL: a town sends a unit's report
back with a reason, the unit reads it on its token's API and corrects, the correction clears
it, and both are audited; a town confirms its day, the county sees the frozen figures, and a
later correction marks the county's figure as changed after confirmation (with the
difference) and reopens the town's confirmation and the county's."""

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import nats
import pytest
from sqlalchemy import text

from rollcall.embedded import EmbeddedNats
from services.signoff import desk as desk_cases
from services.signoff import store
from shared.auth import Principal
from shared.contracts import ReportAccepted
from tests.conftest import Servers
from tests.integration.alerts_harness import BASE_DAY, wait_for
from tests.integration.signoff_support import (
    CLINIC,
    CLINIC_2,
    CLINIC_OTHER_TOWN,
    COUNTY,
    OTHER_TOWN,
    TOWN,
    desk,
    signoff_database,
)


@pytest.fixture(scope="module")
def servers(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The session's PostgreSQL with a NATS server of this module's own: on the session's,
    other tests' reports of the same units and days would reach this module's signoff."""
    own = EmbeddedNats(tmp_path_factory.mktemp("signoff-nats"))
    try:
        yield Servers(own.start(), servers.database_url)
    finally:
        own.stop()


@pytest.fixture(scope="module")
def database_url(servers: Servers) -> str:
    return signoff_database(servers)


async def signoff_events(nats_url: str, day: str) -> list[tuple[str, dict]]:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().subscribe("signoff.>", ordered_consumer=True)
        seen = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return seen
            data = json.loads(msg.data)
            if data["day"] == day:
                seen.append((msg.subject, data))
    finally:
        await nc.close()


async def test_a_send_back_is_seen_by_the_unit_and_its_correction_clears_it(
        servers: Servers, database_url: str):
    day = BASE_DAY + timedelta(days=1)
    async with desk(servers, database_url, day) as d:
        clinic, town = await d.unit(CLINIC), await d.operator(TOWN)
        other_town = await d.operator(OTHER_TOWN)
        await d.report(clinic, CLINIC, day, {"fever": 2, "ili": 1})

        async def reviewed():
            page = (await d.signoff.get(f"/v1/review/{TOWN}", params={"day": str(day)},
                                        headers=town)).json()
            return [u for u in page["units"] if u["unit"] == CLINIC and u["report"]]
        [row] = await wait_for(reviewed)
        assert row["report"]["values"] == {"fever": 2, "ili": 1} and row["sendback"] is None

        body = {"unit": CLINIC, "day": str(day), "reason": "发热人数与门诊日志不符,请核实"}
        outside = await d.signoff.post("/v1/sendbacks", json=body, headers=other_town)
        assert outside.status_code == 403, outside.text
        as_unit = await d.signoff.post("/v1/sendbacks", json=body, headers=clinic)
        assert as_unit.status_code == 403
        nothing = await d.signoff.post("/v1/sendbacks", headers=town,
                                       json={**body, "unit": CLINIC_2})
        assert (nothing.status_code, nothing.json()["errors"][0]["code"]) == (
            404, "nothing_to_review")
        blank = await d.signoff.post("/v1/sendbacks", json={**body, "reason": "  "},
                                     headers=town)
        assert blank.status_code == 422
        assert [e["field"] for e in blank.json()["errors"]] == ["reason"]
        sent = await d.signoff.post("/v1/sendbacks", json=body, headers=town)
        assert sent.status_code == 201, sent.text
        assert sent.json()["revision"] == 1 and sent.json()["status"] == "open"
        again = await d.signoff.post("/v1/sendbacks", json=body, headers=town)
        assert (again.status_code, again.json()["errors"][0]["code"]) == (
            409, "already_sent_back")

        # The unit reads the reason on its own token, at ingest.
        async def notices(status: str):
            found = (await d.ingest.get(f"/v1/units/{CLINIC}/sendbacks",
                                        headers=clinic)).json()
            return [n for n in found if n["day"] == str(day) and n["status"] == status]
        [notice] = await wait_for(lambda: notices("open"))
        assert notice["reason"] == body["reason"] and notice["revision"] == 1
        assert notice["sent_by"].endswith(f"值班员-{TOWN}")
        assert (await d.ingest.get(f"/v1/units/{CLINIC}/sendbacks",
                                   headers=await d.unit(CLINIC_2))).status_code == 403

        # The town cannot confirm while a report below is sent back.
        refused = await d.signoff.post("/v1/confirmations", headers=town,
                                       json={"node": TOWN, "day": str(day)})
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (
            409, "sendbacks_open")

        await d.correct(clinic, CLINIC, day, {"fever": 1, "ili": 1}, "门诊日志核对后为1人")
        [cleared] = await wait_for(lambda: notices("cleared"))
        assert cleared["cleared_revision"] == 2
        assert cleared["cleared_reason"] == "门诊日志核对后为1人"
        listed = (await d.signoff.get("/v1/sendbacks", headers=town,
                                      params={"node": TOWN, "day": str(day)})).json()
        assert [(s["status"], s["revision"], s["cleared_revision"]) for s in listed] == [
            ("cleared", 1, 2)]
        open_now = (await d.signoff.get("/v1/sendbacks", headers=town,
                                        params={"node": TOWN, "day": str(day),
                                                "open": "true"})).json()
        assert open_now == []

        audit = (await d.signoff.get("/v1/audit", headers=town,
                                     params={"node": TOWN, "day": str(day)})).json()
        assert [(a["action"], a["unit"], a["revision"]) for a in audit] == [
            ("sent_back", CLINIC, 1), ("cleared", CLINIC, 2)]
        assert audit[0]["reason"] == body["reason"] and audit[0]["actor"].startswith("operator:")
        assert audit[1]["reason"] == "门诊日志核对后为1人"
        assert audit[1]["actor"].startswith("unit:")

        confirmed = await d.signoff.post("/v1/confirmations", headers=town,
                                         json={"node": TOWN, "day": str(day)})
        assert confirmed.status_code == 201, confirmed.text
        events = await signoff_events(servers.nats_url, str(day))
        assert [s for s, _ in events] == [
            f"signoff.sent_back.{COUNTY}.{TOWN}.{TOWN}001",
            f"signoff.cleared.{COUNTY}.{TOWN}.{TOWN}001",
            f"signoff.confirmed.{COUNTY}.{TOWN}._"]


async def test_a_correction_after_the_towns_confirmation_shows_at_the_county_and_reopens_it(
        servers: Servers, database_url: str):
    day = BASE_DAY + timedelta(days=2)
    async with desk(servers, database_url, day) as d:
        county, town = await d.operator(COUNTY), await d.operator(TOWN)
        clinic = await d.unit(CLINIC)
        await d.report(clinic, CLINIC, day, {"fever": 2, "ili": 1})
        await d.report(county, CLINIC_2, day, {"fever": 1, "ili": 0})
        await d.report(county, CLINIC_OTHER_TOWN, day, {"fever": 4, "ili": 2})

        async def view(node: str, who: dict) -> dict:
            answer = await d.signoff.get(f"/v1/signoff/{node}", params={"day": str(day)},
                                         headers=who)
            assert answer.status_code == 200, answer.text
            return answer.json()

        async def live(node: str, fever: int):
            return (await view(node, county))["live"].get("fever") == fever
        assert await wait_for(lambda: live(COUNTY, 7))

        # Only the node's own operator confirms, and only at a level that confirms.
        for who, node, code in ((county, TOWN, "not_own_node"),
                                (await d.operator(f"{TOWN}001"), f"{TOWN}001",
                                 "not_confirming")):
            refused = await d.signoff.post("/v1/confirmations", headers=who,
                                           json={"node": node, "day": str(day)})
            assert refused.json()["errors"][0]["code"] == code, refused.text

        d.clock.advance(hours=6)  # 15:00
        first = await d.signoff.post("/v1/confirmations", headers=town,
                                     json={"node": TOWN, "day": str(day)})
        assert first.status_code == 201, first.text
        assert first.json()["confirmation"]["figures"] == {"fever": 3, "ili": 1}
        assert first.json()["confirmation"]["confirmed_by"] == f"operator:值班员-{TOWN}"
        same = await d.signoff.post("/v1/confirmations", headers=town,
                                    json={"node": TOWN, "day": str(day)})
        assert same.status_code == 200
        assert same.json()["confirmation"] == first.json()["confirmation"]

        seen = await view(COUNTY, county)
        children = {c["node"]: c for c in seen["children"]}
        assert children[TOWN]["status"] == "confirmed"
        assert children[TOWN]["confirmation"]["figures"] == {"fever": 3, "ili": 1}
        assert children[TOWN]["confirmation"]["confirmed_at"].startswith(f"{day}T07:00")
        assert children[OTHER_TOWN]["status"] == "unconfirmed"  # live figures, unconfirmed
        assert children[OTHER_TOWN]["live"] == {"fever": 4, "ili": 2}
        assert children[OTHER_TOWN]["confirmation"] is None
        assert seen["status"] == "unconfirmed" and seen["confirms"]

        county_confirmed = await d.signoff.post("/v1/confirmations", headers=county,
                                                json={"node": COUNTY, "day": str(day)})
        assert county_confirmed.status_code == 201
        assert county_confirmed.json()["confirmation"]["figures"] == {"fever": 7, "ili": 3}

        d.clock.advance(minutes=30)
        await d.correct(clinic, CLINIC, day, {"fever": 5, "ili": 1}, "漏记3名发热病人")

        async def reopened():
            seen = await view(COUNTY, county)
            return seen if seen["status"] == "reopened" else None
        seen = await wait_for(reopened)
        assert seen["changed_after_confirmation"] and seen["difference"] == {"fever": 3}
        assert seen["confirmation"]["figures"] == {"fever": 7, "ili": 3}  # nothing silently
        assert seen["live"] == {"fever": 10, "ili": 3}
        children = {c["node"]: c for c in seen["children"]}
        changed = children[TOWN]
        assert changed["status"] == "reopened" and changed["changed_after_confirmation"]
        assert changed["difference"] == {"fever": 3}
        assert changed["confirmation"]["figures"] == {"fever": 3, "ili": 1}
        assert [(c["unit"], c["revision"], c["confirmed_revision"], c["label"], c["reason"])
                for c in changed["changes"]] == [
            (CLINIC, 2, 1, "更正 after confirmation", "漏记3名发热病人")]
        assert children[OTHER_TOWN]["status"] == "unconfirmed"
        assert not children[OTHER_TOWN]["changed_after_confirmation"]

        # Redelivered, the correction changes nothing more (effectively once).
        async with d.ctx.sessions() as session:
            held = (await session.execute(text(
                'SELECT node, unit_type, "values", submitted_at FROM signoff.unit_days '
                "WHERE unit = :u AND day = :d"), {"u": CLINIC, "d": day})).one()
        replay = ReportAccepted(
            report_id=uuid.uuid4(), unit=CLINIC, node=held.node, unit_type=held.unit_type,
            sector="health", day=day, revision=2, values=held.values, zero=False, late=False,
            submitted_at=held.submitted_at, reporter="信息员", reason="漏记3名发热病人")
        async with d.ctx.sessions() as session, session.begin():
            assert await desk_cases.take_reports(session, [replay, replay], d.ctx.rules,
                                                 d.ctx.kinds, d.clock()) == 0
        assert [c["unit"] for c in (await view(TOWN, town))["changes"]] == [CLINIC]

        # The town confirms again: a new version with the corrected figures.
        again = await d.signoff.post("/v1/confirmations", headers=town,
                                     json={"node": TOWN, "day": str(day)})
        assert again.status_code == 201, again.text
        assert again.json()["confirmation"]["version"] == 2
        assert again.json()["confirmation"]["figures"] == {"fever": 6, "ili": 1}
        assert again.json()["status"] == "confirmed" and again.json()["difference"] == {}

        events = await signoff_events(servers.nats_url, str(day))
        assert sorted((s, e.get("version")) for s, e in events) == sorted([
            (f"signoff.confirmed.{COUNTY}.{TOWN}._", 1),
            (f"signoff.confirmed.{COUNTY}._._", 1),
            (f"signoff.reopened.{COUNTY}.{TOWN}._", 1),
            (f"signoff.reopened.{COUNTY}._._", 1),
            (f"signoff.confirmed.{COUNTY}.{TOWN}._", 2)])
        reopen = next(e for s, e in events if s == f"signoff.reopened.{COUNTY}._._")
        assert reopen["difference"] == {"fever": 3} and reopen["unit"] == CLINIC


async def test_a_confirmation_racing_corrections_holds_each_revision_or_is_reopened_by_it(
        servers: Servers, database_url: str):
    """Nothing changes silently under a confirmed number: a confirmation and a correction taken
    at the same moment (two transactions) end with the confirmation holding the correction, or
    reopened by it, every time."""
    day = BASE_DAY + timedelta(days=3)
    async with desk(servers, database_url, day) as d:
        ctx, operator = d.ctx, Principal(uuid.uuid4(), "operator", TOWN, "race")
        base = ReportAccepted(
            report_id=uuid.uuid4(), unit=CLINIC, node=f"{TOWN}001", unit_type="village_clinic",
            sector="health", day=day, revision=1, values={"fever": 0, "ili": 0}, zero=True,
            late=False, submitted_at=d.clock(), reporter="信息员")

        async def take(event: ReportAccepted) -> None:
            async with ctx.sessions() as session, session.begin():
                await desk_cases.take_reports(session, [event], ctx.rules, ctx.kinds, d.clock())

        async def confirm() -> None:
            async with ctx.sessions() as session, session.begin():
                await desk_cases.confirm(session, TOWN, day, operator, ctx.rules, ctx.kinds,
                                         d.clock())

        await take(base)
        for revision in range(2, 14):
            event = base.model_copy(update={"revision": revision, "zero": False,
                                            "values": {"fever": revision, "ili": 0},
                                            "reason": f"第{revision}次更正"})
            await asyncio.gather(take(event), confirm())
            async with ctx.sessions() as session:
                cid, current = (await store.current_confirmations(session, [TOWN], day))[TOWN]
                changes = (await store.changes_of(session, [cid]))[cid]
            if current.units.get(CLINIC) == revision:
                assert current.figures["fever"] == revision and current.reopened_at is None
            else:
                assert current.reopened_at is not None, revision
                assert revision in [c.revision for c in changes], revision


async def test_a_county_that_confirms_after_its_towns_waits_for_every_one(
        servers: Servers, database_url: str, tmp_path):
    """逐级, strictly: with `after_children = true` the county confirms only once every town
    with units has confirmed, and again only once a reopened town has confirmed again."""
    config = tmp_path / "signoff.toml"
    config.write_text('[[confirm]]\nlevel = "town"\nby = "16:00"\n\n[[confirm]]\n'
                      'level = "county"\nby = "17:00"\nafter_children = true\n',
                      encoding="utf-8")
    day = BASE_DAY + timedelta(days=4)
    async with desk(servers, database_url, day, signoff_config=config) as d:
        county = await d.operator(COUNTY)
        towns = desk_cases.children_with_units(d.ctx.reference, COUNTY, day)
        assert TOWN in towns and len(towns) > 2

        async def confirm_county():
            return await d.signoff.post("/v1/confirmations", headers=county,
                                        json={"node": COUNTY, "day": str(day)})

        async def confirm_town(town: str) -> None:
            who = Principal(uuid.uuid4(), "operator", town, f"值班员-{town}")
            async with d.ctx.sessions() as session, session.begin():
                await desk_cases.confirm(session, town, day, who, d.ctx.rules, d.ctx.kinds,
                                         d.clock(), d.ctx.reference)

        refused = await confirm_county()
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (
            409, "children_unconfirmed")
        assert str(len(towns)) in refused.json()["errors"][0]["message_en"]
        for town in towns[:-1]:
            await confirm_town(town)
        assert (await confirm_county()).json()["errors"][0]["message_en"].startswith("1 ")
        await confirm_town(towns[-1])
        confirmed = await confirm_county()
        assert confirmed.status_code == 201, confirmed.text

"""The rules of a unit's day said twice agree, PostgreSQL against Python: whether a cutoff has
passed at an instant (`shared/deadlines.py` `cutoff_passed` / `sql_cutoff_passed`, at, just
before and just after the cutoff, in several zones), a unit's cutoff (`calendar.cutoff_of` /
`cutoff_sql`), and which exemption covers a unit on a day (`Exemption.covers` / `exemption_sql`).
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from shared import deadlines
from shared.registry import calendar
from shared.registry.unit_types import unit_types

ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC"), ZoneInfo("America/New_York")]
DAY = date(2024, 3, 10)  # New York moves its clocks that night


@pytest.fixture
async def connection(servers):
    url = make_url(servers.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield conn
    await conn.close()


async def test_a_cutoff_passes_at_the_same_instant_in_sql_and_python(connection) -> None:
    sql = f"SELECT {deadlines.sql_cutoff_passed('CAST($3 AS date)', 'CAST($4 AS time)')}"
    sql = sql.replace(":now", "$1").replace(":zone", "$2")
    cases = []
    for zone in ZONES:
        for cutoff in (time(10), time(14), time(23, 59), time(0, 30)):
            at = datetime.combine(DAY, cutoff, zone)
            for moment in (at - timedelta(seconds=1), at, at + timedelta(microseconds=1),
                           at + timedelta(hours=5), at - timedelta(days=1)):
                cases.append((zone, cutoff, moment.astimezone(UTC)))
    for zone, cutoff, moment in cases:
        got = await connection.fetchval(sql, moment, zone.key, DAY, cutoff)
        assert got == deadlines.cutoff_passed(DAY, cutoff, moment, zone), (zone, cutoff, moment)
    # The boundary itself: pending at 10:00:00, missing at 10:00:00.000001.
    shanghai = ZONES[0]
    assert not deadlines.cutoff_passed(DAY, time(10), datetime.combine(DAY, time(10), shanghai),
                                       shanghai)
    assert deadlines.day_state(DAY, time(10), reported=False, exempt=False, zone=shanghai,
                               now=datetime.combine(DAY, time(10, 0, 0, 1), shanghai)
                               ) == deadlines.DayState.MISSING


async def test_a_units_cutoff_is_its_own_or_its_types(connection) -> None:
    sql = f"SELECT {calendar.cutoff_sql('CAST($1 AS time)', 'CAST($2 AS text)')}"
    for own in (None, time(9, 30)):
        for unit_type in [*unit_types(), "no_such_type"]:
            assert await connection.fetchval(sql, own, unit_type) == calendar.cutoff_of(
                own, unit_type)


NODES = ["430621", "430621108", "430621108001", "430621104001"]
UNIT_TYPES = ["kindergarten", "village_clinic"]
DAYS = [DAY + timedelta(days=i) for i in range(10)]
exemption_st = st.builds(
    lambda node, unit, unit_type, weekday, start, length, withdrawn: (
        node, unit, unit_type if (node or unit or unit_type) else "kindergarten", weekday,
        start, None if length is None else start + timedelta(days=length), withdrawn),
    st.none() | st.sampled_from(NODES), st.none() | st.sampled_from(["U1", "U2"]),
    st.none() | st.sampled_from(UNIT_TYPES), st.none() | st.integers(1, 7),
    st.sampled_from(DAYS), st.none() | st.integers(0, 4), st.booleans())


def _exemptions() -> list[tuple]:
    drawn: list = []

    @settings(max_examples=60, database=None, suppress_health_check=list(HealthCheck))
    @given(exemption_st)
    def collect(x) -> None:
        drawn.append(x)

    collect()
    return drawn


async def test_an_exemption_covers_the_same_units_in_sql_and_python(connection) -> None:
    drawn = _exemptions()
    transaction = connection.transaction()
    await transaction.start()
    try:  # written and read inside one transaction that is rolled back: nothing stays
        await connection.executemany(
            "INSERT INTO registry.units (code, name, unit_type, sector) "
            "VALUES ($1, $1, 'kindergarten', 'education') ON CONFLICT DO NOTHING",
            [("U1",), ("U2",)])
        await connection.execute("DELETE FROM registry.exemptions")
        ids = []
        for node, unit, unit_type, weekday, start, end, withdrawn in drawn:
            ids.append(await connection.fetchval(
                "INSERT INTO registry.exemptions (node_code, unit_code, unit_type, weekday, "
                "valid_from, valid_to, withdrawn, reason, declared_by, declared_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, 'r', 't', now()) RETURNING exemption_id",
                node, unit, unit_type, weekday, start, end, withdrawn))
        exemptions = [calendar.Exemption(i, node, unit, unit_type, weekday, start, end, "r", "t",
                                         datetime.now(UTC), withdrawn)
                      for i, (node, unit, unit_type, weekday, start, end, withdrawn)
                      in zip(ids, drawn, strict=True)]
        sql = (f"SELECT x.exemption_id FROM (SELECT 1) o LEFT JOIN LATERAL "
               f"{calendar.exemption_sql('CAST($1 AS date)', '$2', '$3', '$4')} AS x ON true")
        for day in DAYS:
            for unit in ("U1", "U2", "U3"):
                for node in ("430621108001", "430621104001", "430621108"):
                    for unit_type in UNIT_TYPES:
                        got = await connection.fetchval(sql, day, unit, node, unit_type)
                        want = calendar.exempt_by(exemptions, unit, node, unit_type, day)
                        assert got == (want and want.exemption_id), (day, unit, node, unit_type)
    finally:
        await transaction.rollback()

"""The placement rule said twice agrees: `registry.placement_on(day)` in PostgreSQL and its Python
twin (shared/registry/placement.py, which `UnitInfo.node_on`/`active_on` use) give every unit
the same node and the same activity on every day, across moves, days before the first
placement, active_from/active_to edges and units never placed."""

from datetime import date, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from shared.registry import placement

D0 = date(2024, 3, 1)
DAYS = [D0 + timedelta(days=i) for i in range(16)]
NODES = ["430621", "430621108", "430621108001", "430621108002"]  # demo nodes (foreign keys)

day_st = st.sampled_from(DAYS[1:-1])  # so that the first and last days fall outside
unit_st = st.tuples(
    st.dictionaries(day_st, st.sampled_from(NODES), max_size=4),  # valid_from → node
    st.none() | day_st,  # active_from
    st.none() | day_st)  # active_to


def _units() -> list[tuple[dict[date, str], date | None, date | None]]:
    drawn: list = []

    @settings(max_examples=150, database=None, suppress_health_check=list(HealthCheck))
    @given(unit_st)
    def collect(unit) -> None:
        drawn.append(unit)

    collect()
    # The edges by hand as well: placed and active on the same day, one day apart, never placed.
    edges = [({DAYS[5]: NODES[2]}, DAYS[5], DAYS[5]), ({DAYS[5]: NODES[2], DAYS[6]: NODES[3]},
                                                       DAYS[6], None),
             ({}, None, None), ({DAYS[3]: NODES[0]}, None, DAYS[2])]
    return drawn + edges


@pytest.fixture
async def connection(servers):
    url = make_url(servers.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield conn
    await conn.close()


async def test_the_sql_placement_rule_and_its_python_twin_agree(connection) -> None:
    units = {f"PLT-{i:04d}": unit for i, unit in enumerate(_units())}
    transaction = connection.transaction()
    await transaction.start()
    try:  # written and read inside one transaction that is rolled back: nothing stays
        await connection.executemany(
            "INSERT INTO registry.units (code, name, unit_type, sector, active_from, active_to) "
            "VALUES ($1, $1, 'village_clinic', 'health', $2, $3)",
            [(code, a_from, a_to) for code, (_, a_from, a_to) in units.items()])
        await connection.executemany(
            "INSERT INTO registry.placements (unit_code, valid_from, node_code) "
            "VALUES ($1, $2, $3)",
            [(code, start, node) for code, (moves, _, _) in units.items()
             for start, node in moves.items()])
        for day in DAYS:
            rows = await connection.fetch(
                "SELECT unit_code, node_code, active FROM registry.placement_on($1) "
                "WHERE unit_code LIKE 'PLT-%'", day)
            got = {r["unit_code"]: (r["node_code"], r["active"]) for r in rows}
            want = {}
            for code, (moves, a_from, a_to) in units.items():
                node = placement.node_on(sorted(moves.items()), day)
                if node is not None:
                    want[code] = (node, placement.active_on(a_from, a_to, day))
            assert got == want, day
    finally:
        await transaction.rollback()

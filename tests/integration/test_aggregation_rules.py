"""The aggregation kinds said twice, in Python and in SQL, agree: the SQL that the rollups run
(`sql_combine`, as the recount, the extremes' recompute and the filtered views use it) gives in
PostgreSQL what each kind's Python `combine` gives, and ignores a metric no kind is named for."""

import json

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from shared.aggregation import KINDS, over_units, sql_combine, sql_kinds
from shared.catalogue import default_catalogue

values_st = st.lists(st.one_of(st.integers(-1000, 1000), st.sampled_from([36.5, 37.3, 0.25])),
                     max_size=12)
# Per metric: its name, then how each of its values reaches SQL, as the rollups store them.
COMBINED = f"""
    SELECT kv.key AS metric,
           {sql_combine("CAST($2 AS jsonb) ->> kv.key", "CAST(kv.value AS float8)")} AS value
    FROM jsonb_array_elements(CAST($1 AS jsonb)) AS unit(values)
    CROSS JOIN LATERAL jsonb_each_text(unit.values) AS kv
    WHERE CAST($2 AS jsonb) ? kv.key
    GROUP BY kv.key
"""


@pytest.fixture(scope="module")
async def connection(servers):
    url = make_url(servers.database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    yield conn
    await conn.close()


def _examples() -> list[list[float]]:
    """Lists of values drawn by hypothesis (the empty list, negatives, decimals among them)."""
    examples: list[list[float]] = []

    @settings(max_examples=80, database=None, suppress_health_check=list(HealthCheck))
    @given(values_st)
    def collect(values: list[float]) -> None:
        examples.append(values)

    collect()
    return examples


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
async def test_the_sql_aggregate_of_each_kind_combines_as_python_does(connection, kind) -> None:
    for values in _examples():
        rows = await connection.fetch(COMBINED, json.dumps([{"m": v} for v in values]),
                                      json.dumps({"m": kind.name}))
        got = {r["metric"]: r["value"] for r in rows}.get("m")
        want = kind.fold(float(v) for v in values)
        assert got == (None if want is None else pytest.approx(want)), (kind.name, values)


async def test_every_catalogue_metric_combines_by_its_kind_and_unknown_ones_are_left_out(
        connection) -> None:
    kinds = over_units(default_catalogue())
    units = [{code: float(i + len(code)) for code in kinds} | {"retired": 5.0} for i in range(4)]
    rows = await connection.fetch(COMBINED, json.dumps(units), sql_kinds(kinds))
    got = {r["metric"]: r["value"] for r in rows}
    assert set(got) == set(kinds)
    for code, kind in kinds.items():
        assert got[code] == pytest.approx(kind.fold(u[code] for u in units)), code

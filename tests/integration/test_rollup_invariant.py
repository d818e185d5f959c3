"""The rollup invariant on PostgreSQL: whatever the order, duplication, batching and corrections
of accepted reports, the stored rollups equal a recompute from the latest revision of each unit."""

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.aggregate.projector import apply_batch
from services.aggregate.rollup import Applied, from_scratch
from shared.catalogue import default_catalogue
from shared.contracts import ReportAccepted
from shared.db import make_engine, make_sessionmaker

catalogue = default_catalogue()
NODES = ["430621108001", "430621108002", "430621104001", "430621108", "430621"]
UNITS = [f"T-{i}" for i in range(8)]
_days = itertools.count()


def event(unit: str, day: date, revision: int, node: str, values: dict, late: bool
          ) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{unit}/{day}/{revision}"), unit=unit,
        node=node, unit_type="village_clinic", sector="health", day=day, revision=revision,
        values=values, zero=all(v == 0 for v in values.values()), late=late,
        submitted_at=datetime(2020, 1, 1, tzinfo=UTC), reporter="test")


values_st = st.fixed_dictionaries({}, optional={
    "fever": st.integers(0, 9), "nat_tests": st.integers(0, 30),
    "max_temperature": st.sampled_from([36.6, 37.3, 38.4, 39.9]),
    "supply_days": st.integers(0, 20)})
# A unit's history: revisions 1..n, each possibly moving it (a correction of the placement).
history_st = st.lists(st.tuples(st.sampled_from(NODES), values_st, st.booleans()),
                      min_size=1, max_size=4)


@pytest.fixture(scope="module")
def db(servers):
    runner = asyncio.Runner()
    engine = make_engine(servers.database_url, pool_size=2)
    yield runner, make_sessionmaker(engine)
    runner.run(engine.dispose())
    runner.close()


async def stored(sessions, day: date) -> tuple[dict, dict]:
    async with sessions() as session:
        values = {(n, day, m): v for n, m, v in await session.execute(text(
            "SELECT node_code, metric, value FROM aggregate.rollups WHERE day = :d"), {"d": day})}
        counts = {(n, day): (r, z, lt) for n, r, z, lt in await session.execute(text(
            "SELECT node_code, reported, zero, late FROM aggregate.completeness WHERE day = :d"),
            {"d": day})}
    return values, counts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(histories=st.dictionaries(st.sampled_from(UNITS), history_st, min_size=1),
       data=st.data())
def test_stored_rollups_equal_recompute(db, histories: dict, data) -> None:
    runner, sessions = db
    day = date(2001, 1, 1) + timedelta(days=next(_days))
    events = [event(unit, day, rev, node, values, late)
              for unit, history in histories.items()
              for rev, (node, values, late) in enumerate(history, 1)]
    # Redeliveries and replays, in any order, in batches of any size; a crash is a batch whose
    # transaction never committed, so its events come again.
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    shuffled = data.draw(st.permutations(duplicated))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(shuffled)), max_size=6)))
    batches = [shuffled[a:b] for a, b in itertools.pairwise([0, *cuts, len(shuffled)])]
    crashed = data.draw(st.sets(st.integers(0, len(batches) - 1), max_size=2))

    async def run() -> None:
        for i, batch in enumerate(batches):
            if i in crashed:
                async with sessions() as session:
                    await apply_batch(session, batch, catalogue, datetime.now(UTC))
                    await session.rollback()
            async with sessions() as session, session.begin():
                await apply_batch(session, batch, catalogue, datetime.now(UTC))

    runner.run(run())
    latest = [Applied(e.unit, e.day, e.revision, e.node, e.values, e.zero, e.late)
              for e in events if e.revision == len(histories[e.unit])]
    want_values, want_counts = from_scratch(latest, catalogue)
    got_values, got_counts = runner.run(stored(sessions, day))
    assert {k: v for k, v in got_values.items() if v} == {k: v for k, v in want_values.items() if v}
    assert {k: c for k, c in got_counts.items() if any(c)} == want_counts

"""The rollup invariant on PostgreSQL and JetStream: whatever the order, duplication, batching,
corrections, crashes and consumer restarts, the stored rollups and completeness figures equal a
recompute from the latest revision of each unit's report and from the registry (placements,
cutoffs, calendars), both read at an instant of the day (before, at and after a cutoff: the clock
is part of the invariant); and reconcile, which recomputes from the ledger, finds nothing to say.

The events go through a real stream: published in a random order (with repeats, which the
stream drops by message id), then consumed from stored sequence numbers by a consumer that
commits or crashes batch by batch, loses acknowledgements, restarts from an earlier position
(so it replays what it already applied) and sometimes runs two batches at once, as two replicas
would."""

import asyncio
import itertools
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js.api import StreamConfig
from sqlalchemy import text

from rollcall import reconcile
from services.aggregate.projector import apply_batch
from services.aggregate.rollup import Applied, Counts, from_scratch
from shared.aggregation import over_units
from shared.catalogue import default_catalogue
from shared.contracts import ReportAccepted, reports_of
from shared.db import make_engine, make_sessionmaker
from shared.deadlines import Moment
from shared.registry import demo
from shared.registry.unit_types import unit_types

catalogue = default_catalogue()
STREAM, SUBJECT = "INVARIANT", "invariant.events"
NODES = ["430621108001", "430621108002", "430621104001", "430621108", "430621"]
# Units of the demo registry (expected that day, so missing until they report; the roster is read
# from the registry, which earlier tests may have added to) and units the registry does not know
# (reported, never expected).
REGISTERED = ["430621108001-CL", "430621108001-VC", "430621108002-CL", "430621104001-VC",
              "430621108-HC", "430621-HOSP"]
UNITS = [*REGISTERED, "T-0", "T-1", "T-2"]
_days = itertools.count()
ZONE = ZoneInfo("Asia/Shanghai")
# When the figures are read, local time on the test's day: before and at the schools' 10:00, just
# after it, between the clinics' 12:00 and the villages' 14:00, after every cutoff.
READ_AT = [time(9, 59, 59), time(10), time(10, 0, 0, 1), time(13), time(23, 59, 59)]

values_st = st.fixed_dictionaries({}, optional={
    "fever": st.integers(0, 9), "nat_tests": st.integers(0, 30),
    "max_temperature": st.sampled_from([36.6, 37.3, 38.4, 39.9]),
    "supply_days": st.integers(0, 20)})
# A unit's history: revisions 1..n, each possibly moving it (a correction of the placement).
history_st = st.lists(st.tuples(st.sampled_from(NODES), values_st, st.booleans()),
                      min_size=1, max_size=4)
# What the consumer does with each batch: its size, and whether it commits and acknowledges,
# commits but loses the acknowledgement (a restart replays from `back` messages earlier),
# crashes before committing, or runs at the same time as an overlapping batch (a redelivery to
# another replica while the first one still works on it).
step_st = st.tuples(st.integers(1, 8), st.sampled_from(["ack", "ack", "lost", "crash", "pair"]),
                    st.integers(0, 12))


def event(unit: str, day: date, revision: int, node: str, values: dict, late: bool
          ) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{unit}/{day}/{revision}"), unit=unit,
        node=node, unit_type="village_clinic", sector="health", day=day, revision=revision,
        values=values, zero=all(v == 0 for v in values.values()), late=late,
        submitted_at=datetime(2021, 1, 1, tzinfo=UTC) + timedelta(minutes=revision),
        reporter="test")


LEDGER = text("""
    INSERT INTO ingest.reports (report_id, unit_code, day, revision, node_code, values, zero,
                                late, submitted_at, reporter, reason)
    VALUES (:report_id, :unit, :day, :revision, :node, CAST(:values AS jsonb), :zero, :late,
            :submitted_at, 'test', NULL)
""")
# Written out independently of aggregate's own query: active that day, at the latest placement
# that had begun.
ROSTER = text("""
    SELECT u.code, (SELECT p.node_code FROM registry.placements p
                    WHERE p.unit_code = u.code AND p.valid_from <= :d
                    ORDER BY p.valid_from DESC LIMIT 1) AS node, u.cutoff, u.unit_type
    FROM registry.units u
    WHERE (u.active_from IS NULL OR u.active_from <= :d)
      AND (u.active_to IS NULL OR u.active_to >= :d)
      AND EXISTS (SELECT 1 FROM registry.placements p
                  WHERE p.unit_code = u.code AND p.valid_from <= :d)
""")


class Harness:
    def __init__(self, database_url: str, nats_url: str) -> None:
        self.database_url, self.nats_url = database_url, nats_url

    async def start(self) -> None:
        self.engine = make_engine(self.database_url, pool_size=3)
        self.sessions = make_sessionmaker(self.engine)
        self.nc = await nats.connect(self.nats_url)
        self.js = self.nc.jetstream()
        await self.js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT],
                                              duplicate_window=3600))

    async def stop(self) -> None:
        await self.nc.close()
        await self.engine.dispose()

    async def publish(self, events: list[ReportAccepted]) -> list[int]:
        """The stream's sequence numbers of the events it kept (repeats are dropped)."""
        kept = []
        for e in events:
            ack = await self.js.publish(SUBJECT, e.model_dump_json().encode(),
                                        headers={"Nats-Msg-Id": e.msg_id})
            if not ack.duplicate:
                kept.append(ack.seq)
        return kept

    async def read(self, seqs: list[int]) -> list[ReportAccepted]:
        # Decoded as every consumer decodes (any contract version).
        return [e for seq in seqs for e in reports_of((await self.js.get_msg(STREAM, seq)).data)]

    async def apply(self, seqs: list[int], commit: bool = True) -> None:
        events = await self.read(seqs)
        async with self.sessions() as session, session.begin():
            await apply_batch(session, events, catalogue, datetime.now(UTC))
            if not commit:
                await session.rollback()

    async def consume(self, seqs: list[int], steps: list[tuple[int, str, int]]) -> None:
        """Consume the stored events from the start, batch by batch, as `steps` say."""
        position, plan = 0, iter(steps)
        while position < len(seqs):
            size, outcome, back = next(plan, (8, "ack", 0))
            batch = seqs[position:position + size]
            if outcome == "crash":
                await self.apply(batch, commit=False)
            elif outcome == "pair":  # another replica takes an overlapping batch meanwhile
                shift = back % (size + 1)
                other = seqs[position + shift:position + shift + size]
                await asyncio.gather(self.apply(batch), self.apply(other))
                position = min(len(seqs), position + shift + size)
            else:
                await self.apply(batch)
                position += len(batch)
                if outcome == "lost":  # restart: replay from before the unacknowledged batch
                    position = max(0, position - len(batch) - back)

    async def record_ledger(self, events: list[ReportAccepted]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(LEDGER, [
                {"report_id": e.report_id, "unit": e.unit, "day": e.day, "revision": e.revision,
                 "node": e.node, "values": json.dumps(e.values), "zero": e.zero,
                 "late": e.late, "submitted_at": e.submitted_at} for e in events])

    async def stored(self, day: date, moment: Moment) -> tuple[dict, dict]:
        async with self.sessions() as session:
            values = {(n, day, m): v for n, m, v in await session.execute(text(
                "SELECT node_code, metric, value FROM aggregate.rollups WHERE day = :d"),
                {"d": day})}
            rows = await session.execute(text(
                "SELECT node_code, expected, reported, zero, late, exempt, unreported "
                "FROM aggregate.completeness WHERE day = :d"), {"d": day})
            # Pending and missing apart, by hand: the units not reported by cutoff, each cutoff
            # passed or not at `moment`.
            counts = {}
            for r in rows:
                unreported = {time.fromisoformat(c): n for c, n in r.unreported.items()}
                missing = sum(n for c, n in unreported.items()
                              if moment.now > datetime.combine(day, c, ZONE))
                counts[(r.node_code, day)] = Counts(
                    r.expected, r.reported, r.zero, r.late, missing,
                    sum(unreported.values()) - missing, r.exempt)
        return values, counts

    async def exempt(self, unit: str, day: date) -> None:
        """A calendar for one unit on the day (a test's day is its own: nothing else sees it)."""
        async with self.sessions() as session, session.begin():
            await session.execute(text("""
                INSERT INTO registry.exemptions (unit_code, valid_from, valid_to, reason,
                                                 declared_by, declared_at)
                VALUES (:u, :d, :d, '停业', 'test', now())"""), {"u": unit, "d": day})

    async def roster(self, day: date, exempt: set[str]) -> list[tuple]:
        """(unit, day, node, cutoff, exempt) of every unit the registry places that day, where
        it was placed then: the demo county and whatever else earlier tests registered in this
        database."""
        types = unit_types()
        async with self.sessions() as session:
            return [(code, day, node, own or types[unit_type].cutoff, code in exempt)
                    for code, node, own, unit_type in await session.execute(ROSTER, {"d": day})]

    async def reconcile(self, day: date, moment: Moment) -> list:
        async with self.sessions() as session:
            return (await reconcile.check(session, day, "430621", catalogue, moment)).differences


@pytest.fixture(scope="module")
def harness(servers):
    runner = asyncio.Runner()
    h = Harness(servers.database_url, servers.nats_url)
    runner.run(h.start())
    yield runner, h
    runner.run(h.stop())
    runner.close()


def _comparable(values: dict, counts: dict) -> tuple[dict, dict]:
    """Sums of nothing are zero whether stored or not; extremes must match exactly."""
    kinds = over_units(catalogue)
    return ({k: v for k, v in values.items() if not (kinds[k[2]].additive and v == 0)},
            {k: c for k, c in counts.items() if c})


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(histories=st.dictionaries(st.sampled_from(UNITS), history_st, min_size=1),
       steps=st.lists(step_st, max_size=12), read_at=st.sampled_from(READ_AT),
       exempt=st.sets(st.sampled_from(REGISTERED), max_size=2), data=st.data())
def test_stored_rollups_equal_recompute(harness, histories: dict, steps: list, read_at,
                                        exempt: set, data) -> None:
    runner, h = harness
    day = date(2021, 1, 1) + timedelta(days=next(_days))
    moment = Moment(datetime.combine(day, read_at, ZONE), ZONE)
    events = [event(unit, day, rev, node, values, late)
              for unit, history in histories.items()
              for rev, (node, values, late) in enumerate(history, 1)]
    published = data.draw(st.permutations(
        events + data.draw(st.lists(st.sampled_from(events), max_size=len(events)))))

    async def run() -> list[int]:
        for unit in sorted(exempt):
            await h.exempt(unit, day)
        await h.record_ledger(events)
        seqs = await h.publish(published)
        await h.consume(seqs, steps)
        return seqs

    seqs = runner.run(run())
    assert len(seqs) == len(events)  # the stream kept each event once
    latest = [Applied(e.unit, e.day, e.revision, e.node, e.values, e.zero, e.late)
              for e in events if e.revision == len(histories[e.unit])]
    roster = runner.run(h.roster(day, exempt))
    # The demo county is all there: a registry that lost it would make the check vacuous.
    assert {(u["code"], u["node"]) for u in demo.units()} <= {(r[0], r[2]) for r in roster}
    want_values, want_counts = from_scratch(latest, catalogue, roster, moment)
    got = _comparable(*runner.run(h.stored(day, moment)))
    assert got == _comparable(want_values, want_counts)
    assert runner.run(h.reconcile(day, moment)) == []


_weeks = itertools.count()
# A stock (summed across units, its last day over days), a flow, and the two extremes.
week_values_st = st.fixed_dictionaries({}, optional={
    "home_observation": st.integers(0, 12), "fever": st.integers(0, 5),
    "max_temperature": st.sampled_from([36.6, 37.3, 38.4, 39.9]),
    "supply_days": st.integers(0, 20)})
week_st = st.lists(st.tuples(st.sampled_from(UNITS), st.integers(0, 6), st.sampled_from(NODES),
                             week_values_st, st.integers(1, 2)), min_size=1, max_size=20)


def over_the_week(latest: list[ReportAccepted], node: str, days: list[date]) -> dict:
    """Each metric of `node` over the days, written out: across units by its kind, then over
    days by its kind (a stock is the last day with reports, where a missing sum is zero)."""
    out = {}
    for code, metric in catalogue.metrics.items():
        daily = []
        for day in days:
            here = [e for e in latest if e.day == day and e.node.startswith(node)]
            values = [e.values[code] for e in here if code in e.values]
            if values:
                daily.append({"sum": sum, "max": max, "min": min}[metric.aggregation](values))
            elif here and metric.aggregation == "sum":
                daily.append(0)
        if daily and any(code in e.values for e in latest if e.node.startswith(node)):
            out[code] = {"sum": sum, "last": lambda d: d[-1], "max": max,
                         "min": min}[metric.over_days](daily)
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(week=week_st)
def test_a_range_rollup_equals_the_recompute_for_each_kind_over_days(harness, week) -> None:
    """Seven days of reports and corrections: the range rollup (`views.node_view` over the
    span) equals the figures written out from the ledger, a stock being its last day's figure
    and never the week's sum; reconcile's range check finds nothing."""
    from services.aggregate.views import Span, node_view

    runner, h = harness
    start = date(2017, 1, 1) + timedelta(days=7 * next(_weeks))  # days no other test writes
    days = [start + timedelta(days=i) for i in range(7)]
    latest_of: dict[tuple[str, date], tuple[str, dict]] = {}
    events = []
    for unit, d, node, values, revisions in week:
        day = days[d]
        if (unit, day) in latest_of:
            continue
        for revision in range(1, revisions + 1):
            events.append(event(unit, day, revision, node, values if revision == revisions
                                else {**values, "fever": 1}, False))
        latest_of[(unit, day)] = (node, values)
    latest = [e for e in events if e.revision == max(
        x.revision for x in events if (x.unit, x.day) == (e.unit, e.day))]

    async def run() -> tuple[dict, list]:
        await h.record_ledger(events)
        await h.consume(await h.publish(events), [])
        async with h.sessions() as session:
            now = Moment(datetime.now(UTC), ZONE)
            views = {node: (await node_view(session, node, Span(days[0], days[-1]), catalogue,
                                            now, list_limit=0))["values"] for node in NODES}
            found = await reconcile.check_range(session, days[0], days[-1], "430621",
                                                catalogue)
        return views, found.differences

    views, differences = runner.run(run())
    for node in NODES:
        want = over_the_week(latest, node, days)
        got = views[node]
        for code in set(want) | set(got):
            assert got.get(code, 0) == pytest.approx(want.get(code, 0)), (node, code)
    assert differences == []

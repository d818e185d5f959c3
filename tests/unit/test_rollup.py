"""The rollup arithmetic against its invariant, in memory: applying replacements incrementally
gives what a recompute from the latest revisions gives, whatever the order and duplication."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.aggregate.rollup import (
    Applied,
    Changes,
    Counts,
    Figures,
    Tally,
    from_scratch,
    moved,
    spread,
)
from shared.catalogue import default_catalogue
from shared.deadlines import Moment

catalogue = default_catalogue()
DAY = date(2026, 11, 23)
NODES = ["430621108001", "430621108002", "430621104001", "430621108", "430621"]
UNITS = [f"U{i}" for i in range(6)]

values_st = st.fixed_dictionaries({}, optional={
    "fever": st.integers(0, 20), "ili": st.integers(0, 20), "nat_tests": st.integers(0, 50),
    "max_temperature": st.sampled_from([36.5, 37.3, 38.0, 39.2, 40.1]),
    "supply_days": st.integers(0, 30)})
report_st = st.builds(lambda unit, rev, node, values, late: Applied(
    unit, DAY, rev, node, values, all(v == 0 for v in values.values()), late),
    st.sampled_from(UNITS), st.integers(1, 4), st.sampled_from(NODES), values_st, st.booleans())


class MemoryStore:
    """The projector's effect, applied to dicts as the SQL applies it to tables."""

    def __init__(self) -> None:
        self.units: dict[str, Applied] = {}
        self.values: dict = {}
        self.counts: dict = {}

    def apply(self, new: Applied) -> None:
        old = self.units.get(new.unit)
        if old is not None and old.revision >= new.revision:
            return
        changes = Changes(catalogue)
        changes.replace(old, new)
        effect = changes.effect()
        self.units[new.unit] = new
        for key, delta in effect.sums.items():
            self.values[key] = self.values.get(key, 0.0) + delta
        for kind, extremes in effect.extremes.items():
            for key, v in extremes.items():
                self.values[key] = kind.combine(self.values.get(key, v), v)
        for key, change in effect.counts.items():
            self.counts[key] = self.counts.get(key, Counts()) + change
        for node, day, metric in effect.recompute:
            expected, _ = from_scratch(self.units.values(), catalogue)
            if (node, day, metric) in expected:
                self.values[(node, day, metric)] = expected[(node, day, metric)]
            else:
                self.values.pop((node, day, metric), None)


@settings(max_examples=300)
@given(st.lists(report_st, max_size=30))
def test_incremental_equals_recompute(reports: list[Applied]) -> None:
    store = MemoryStore()
    for report in reports:
        store.apply(report)
    expected_values, expected_counts = from_scratch(store.units.values(), catalogue)
    got = {k: v for k, v in store.values.items() if v != 0}
    assert got == {k: v for k, v in expected_values.items() if v != 0}
    assert {k: c for k, c in store.counts.items() if c} == expected_counts


def test_correction_lowering_the_max_recomputes_it() -> None:
    store = MemoryStore()
    store.apply(Applied("A", DAY, 1, "430621108001", {"max_temperature": 39.5}, False, False))
    store.apply(Applied("B", DAY, 1, "430621108002", {"max_temperature": 38.0}, False, False))
    assert store.values[("430621", DAY, "max_temperature")] == 39.5
    store.apply(Applied("A", DAY, 2, "430621108001", {"max_temperature": 37.0}, False, False))
    assert store.values[("430621", DAY, "max_temperature")] == 38.0
    assert store.values[("430621108001", DAY, "max_temperature")] == 37.0


def test_zero_report_counts_as_reported_but_adds_nothing() -> None:
    store = MemoryStore()
    store.apply(Applied("A", DAY, 1, "430621108001", {}, True, False))
    assert store.counts[("430621", DAY)] == Counts(reported=1, zero=1)
    assert not any(store.values.values())


@settings(max_examples=200)
@given(st.lists(report_st, max_size=30))
def test_a_batch_has_the_effect_of_its_reports_one_by_one(reports: list[Applied]) -> None:
    """What the projector does with a batch (the newest revision per unit-day, replacing what is
    stored) moves the figures as far as applying the reports one at a time does."""
    one_by_one, batched = MemoryStore(), MemoryStore()
    for r in reports:
        one_by_one.apply(r)
    newest: dict = {}
    for r in reports:
        if r.unit not in newest or r.revision > newest[r.unit].revision:
            newest[r.unit] = r
    for r in newest.values():
        batched.apply(r)
    assert {k: c for k, c in batched.counts.items() if c} == {
        k: c for k, c in one_by_one.counts.items() if c}
    assert {k: v for k, v in batched.values.items() if v} == {
        k: v for k, v in one_by_one.values.items() if v}


def test_a_first_report_ends_unreported_where_the_registry_expects_the_unit() -> None:
    changes = Changes(catalogue)
    changes.replace(None, Applied("A", DAY, 1, "430621108001", {"fever": 1}, False, True),
                    expected=("430621108002", "10:00:00"))
    effect = changes.effect()
    assert effect.unreported[("430621108002", DAY, "10:00:00")] == -1
    assert effect.unreported[("430621108", DAY, "10:00:00")] == -1
    assert ("430621108001", DAY, "10:00:00") not in effect.unreported
    assert effect.counts[("430621108001", DAY)] == Counts(reported=1, late=1)
    assert effect.counts[("430621108", DAY)] == Counts(reported=1, late=1)
    assert ("430621108002", DAY) in effect.touched and ("43", DAY) in effect.touched


ZONE = ZoneInfo("Asia/Shanghai")


def at(hh: int, mm: int, ss: int = 0, us: int = 0) -> Moment:
    return Moment(datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, us, tzinfo=ZONE), ZONE)


def test_from_scratch_counts_pending_until_the_cutoff_and_missing_after() -> None:
    applied = [Applied("A", DAY, 2, "430621108001", {}, True, False)]
    roster = [("A", DAY, "430621108001", time(10), False),
              ("B", DAY, "430621108001", time(10), False),
              ("C", DAY, "430621108", time(14), False),
              ("D", DAY, "430621108", time(10), True)]
    _, counts = from_scratch(applied, catalogue, roster, at(10, 0))
    assert counts[("430621108001", DAY)] == Counts(expected=2, reported=1, zero=1, pending=1)
    assert counts[("430621108", DAY)] == Counts(expected=3, reported=1, zero=1, pending=2,
                                                exempt=1)
    _, counts = from_scratch(applied, catalogue, roster, at(10, 0, 0, 1))
    assert counts[("430621108", DAY)] == Counts(expected=3, reported=1, zero=1, missing=1,
                                                pending=1, exempt=1)
    # Due so far: A (reported) and B (missing); C is not due before 14:00.
    assert counts[("430621108", DAY)].rates() == {
        "reporting_rate": 1 / 2, "on_time_rate": 1 / 2, "final_reporting_rate": None}
    _, counts = from_scratch(applied, catalogue, roster, at(14, 0, 1))
    assert counts[("430621108", DAY)].rates() == {
        "reporting_rate": 1 / 3, "on_time_rate": 1 / 3, "final_reporting_rate": 1 / 3}
    assert Counts().rates() == {"reporting_rate": None, "on_time_rate": None,
                                "final_reporting_rate": None}


def test_a_tally_splits_its_unreported_units_at_the_instant_asked() -> None:
    tally = Tally(expected=5, reported=2, unreported={"10:00:00": 2, "14:00:00": 1}, exempt=1)
    assert tally.at(DAY, at(9, 59)) == Counts(expected=5, reported=2, pending=3, exempt=1)
    assert tally.at(DAY, at(10, 0)).pending == 3
    assert tally.at(DAY, at(10, 0, 0, 1)) == Counts(expected=5, reported=2, missing=2,
                                                    pending=1, exempt=1)
    # A past day has no pending units; a future day has nothing missing.
    assert tally.at(DAY - timedelta(days=1), at(9, 0)).pending == 0
    assert tally.at(DAY + timedelta(days=1), at(23, 0)).missing == 0
    assert moved({"10:00:00": 2}, {"10:00:00": -2, "14:00:00": 1}) == {"14:00:00": 1}


def test_spread_reaches_every_level_once() -> None:
    assert spread({("430621108001", DAY), ("430621108002", DAY)}) == {
        (n, DAY) for n in ("430621108001", "430621108002", "430621108", "430621", "4306", "43")}


def test_figures_over_days_combine_each_metric_by_its_kind_over_days() -> None:
    """Flows sum, stocks take the last day's figure, extremes stay extremes; counts add."""
    a = Figures({"fever": 2, "home_observation": 10, "max_temperature": 38.5, "supply_days": 9},
                Counts(expected=3, reported=2, zero=1, missing=1))
    b = Figures({"fever": 1, "home_observation": 7, "max_temperature": 39.0, "supply_days": 4},
                Counts(expected=3, reported=3, late=1))
    both = Figures.over_days([a, b], catalogue)
    assert both.values == {"fever": 3, "home_observation": 7, "max_temperature": 39.0,
                           "supply_days": 4}
    assert both.counts == Counts(expected=6, reported=5, zero=1, late=1, missing=1)


def test_a_stock_over_seven_days_is_its_last_day_not_their_sum() -> None:
    """10 people under home observation every day of a week are 10 people, not 70."""
    week = [Figures({"home_observation": 10, "central_isolation": 3, "fever": 1},
                    Counts(expected=1, reported=1)) for _ in range(7)]
    folded = Figures.over_days(week, catalogue)
    assert folded.values["home_observation"] == 10
    assert folded.values["central_isolation"] == 3
    assert folded.values["fever"] == 7


def test_a_stock_that_falls_to_zero_is_zero_on_the_last_day() -> None:
    """A summed metric missing from a day with reports is zero that day (zero sums are not
    stored): the stock fell to zero, it did not stay at the day before's figure. A day without
    any report has no figure and leaves the last one standing."""
    monday = Figures({"home_observation": 10}, Counts(expected=1, reported=1))
    tuesday_all_released = Figures({}, Counts(expected=1, reported=1, zero=1))
    wednesday_nothing_yet = Figures({}, Counts(expected=1, missing=1))
    assert Figures.over_days([monday, tuesday_all_released], catalogue).values == {
        "home_observation": 0}
    assert Figures.over_days([monday, wednesday_nothing_yet], catalogue).values == {
        "home_observation": 10}


def test_counts_add_and_subtract_by_name() -> None:
    a = Counts(expected=5, reported=3, zero=1, late=2, missing=2)
    b = Counts(reported=1, late=1, missing=-1)
    assert a + b == Counts(expected=5, reported=4, zero=1, late=3, missing=1)
    assert (a + b) - b == a
    assert not Counts() and not (b - b) and Counts(missing=-1)
    assert a.as_dict() == {"expected": 5, "reported": 3, "zero": 1, "late": 2, "missing": 2,
                           "pending": 0, "exempt": 0}


def test_a_metric_the_catalogue_does_not_know_counts_nowhere() -> None:
    """Refused at the door; if a changed catalogue leaves one in stored reports, every path
    ignores it alike (none treats it as a sum)."""
    unknown = Applied("A", DAY, 1, "430621108001", {"fever": 2, "retired": 7}, False, False)
    values, _ = from_scratch([unknown], catalogue)
    assert {m for _, _, m in values} == {"fever"}
    changes = Changes(catalogue)
    changes.replace(None, unknown)
    effect = changes.effect()
    assert {m for _, _, m in effect.sums} == {"fever"}
    assert not any(effect.extremes.values())
    folded = Figures.over_days([Figures({"fever": 1}), Figures({"fever": 2, "retired": 3})],
                               catalogue)
    assert folded.values == {"fever": 3}

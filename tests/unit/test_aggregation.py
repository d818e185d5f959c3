"""Each aggregation over days, against its definition written out: a node's figures over a
range of days, folded from its daily figures (`Figures.over_days`, what range rollups answer),
equal what one computes straight from the units' reports of every day."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.aggregate.rollup import Applied, Counts, Figures, from_scratch
from shared.aggregation import DAY_KINDS, KINDS
from shared.catalogue import Catalogue, Metric

START = date(2026, 11, 20)
NODES = ["430621108001", "430621108002", "430621104001"]
# One metric per pair of kinds (across units, over days) the catalogue may declare.
PAIRS = [(across, over) for across in KINDS for over in DAY_KINDS]
CATALOGUE = Catalogue({f"{a}_{o}": Metric(f"{a}_{o}", "指标", "Metric", "count", a, o, "个",
                                          "pieces") for a, o in PAIRS})

unit_day_st = st.tuples(
    st.sampled_from(["U0", "U1", "U2", "U3"]), st.integers(0, 6), st.sampled_from(NODES),
    st.dictionaries(st.sampled_from(list(CATALOGUE.metrics)), st.integers(0, 40)))


def by_definition(reports: list[Applied], node: str, days: list[date]) -> dict[str, float]:
    """Across units, then over days, each written out by its name; a summed metric is zero on
    a day the node has reports without it, and a day without reports has no figure."""
    out: dict[str, float] = {}
    for code in CATALOGUE.metrics:
        across, over = code.split("_")
        daily = []
        for day in days:
            here = [r for r in reports if r.day == day and r.node.startswith(node)]
            values = [r.values[code] for r in here if code in r.values]
            if values:
                daily.append({"sum": sum, "max": max, "min": min}[across](values))
            elif here and across == "sum":
                daily.append(0)
        if daily and any(code in r.values for r in reports if r.node.startswith(node)):
            out[code] = {"sum": sum, "last": lambda d: d[-1], "max": max, "min": min,
                         "average": lambda d: sum(d) / len(d)}[over](daily)
    return out


@given(st.lists(unit_day_st, max_size=25))
def test_a_range_rollup_equals_the_recompute_for_every_kind(unit_days: list) -> None:
    latest = {(unit, START + timedelta(days=d)): Applied(
        unit, START + timedelta(days=d), 1, node, values, not any(values.values()), False)
        for unit, d, node, values in unit_days}
    reports = list(latest.values())
    values, counts = from_scratch(reports, CATALOGUE)
    days = [START + timedelta(days=d) for d in range(7)]
    for node in ["430621108001", "430621108", "430621"]:
        daily = [Figures({m: v for (n, day, m), v in values.items() if (n, day) == (node, d)},
                         counts.get((node, d), Counts())) for d in days]
        got = Figures.over_days(daily, CATALOGUE).values
        want = by_definition(reports, node, days)
        assert got.keys() == want.keys()
        for code, value in want.items():
            assert abs(got[code] - value) < 1e-9, (node, code)


def test_a_stock_summed_over_days_would_fail() -> None:
    """10 people under observation each day of a week: the stock's range figure is 10; the same
    figures declared as a flow give 70, which is what the stock must never read."""
    week = [Figures({"sum_last": 10, "sum_sum": 10}, Counts(reported=1)) for _ in range(7)]
    folded = Figures.over_days(week, CATALOGUE).values
    assert folded["sum_last"] == 10
    assert folded["sum_sum"] == 70


def test_an_average_is_per_day_with_a_figure() -> None:
    days = [Figures({"sum_average": 4}, Counts(reported=1)),
            Figures({}, Counts(reported=1)),  # reported, none that day: zero
            Figures({}, Counts(missing=1))]  # nobody reported: no figure
    assert Figures.over_days(days, CATALOGUE).values == {"sum_average": 2}

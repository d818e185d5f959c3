"""The placement rule: where a unit sits on a day, and whether it is expected to report then.

A unit sits at the node of its latest placement whose valid_from is on or before the day (none
before its first placement); it is active on the days from active_from to active_to, both
inclusive, either bound open when unset. An active unit with a placement is expected to report
that day, at that node (docs/architecture.md, "Cutoffs, completeness, timeliness").

The database states the same rule as `registry.placement_on(day)` (migration registry_0003),
which every query about expected units reads; the functions here are its twin for code that
holds the registry in memory, and tests/integration/test_placement_rule.py holds the two to the
same answers.
"""

import bisect
from collections.abc import Sequence
from datetime import date

Placements = Sequence[tuple[date, str]]  # (valid_from, node), sorted by valid_from

PLACEMENT_ON = "registry.placement_on"  # the SQL twin: (unit_code, node_code, active, ...)


def node_on(placements: Placements, day: date) -> str | None:
    """The node of the latest placement that started on or before `day`."""
    i = bisect.bisect_right(placements, day, key=lambda p: p[0]) - 1
    return placements[i][1] if i >= 0 else None


def active_on(active_from: date | None, active_to: date | None, day: date) -> bool:
    return (active_from is None or active_from <= day) and (active_to is None or day <= active_to)


def placement_on(day: str) -> str:
    """The SQL table expression of every placed unit on the day given by the SQL `day`
    (columns unit_code, node_code, active, name, unit_type, sector)."""
    return f"{PLACEMENT_ON}({day})"

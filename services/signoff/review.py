"""The rules of review and sign-off (逐级审核上报), pure: no SQL, NATS or HTTP.

- A node's figures for a day are its units' latest revisions combined as the catalogue says
  (`shared/aggregation.py`, the rule aggregate's rollups follow), so a snapshot holds exactly
  the revisions it lists.
- A confirmation is **touched** by a report whose revision it does not hold: a correction of a
  unit it holds (更正 after confirmation) or a unit's first report after it (迟报 after
  confirmation). A touched confirmation is reopened: the node confirms again.
- The difference shown beside a confirmed number is live minus confirmed, per metric.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.aggregation import MetricKinds

Status = Literal["unconfirmed", "confirmed", "reopened", "not_required"]
Number = int | float


def figures(values: Iterable[Mapping[str, Number]], kinds: MetricKinds) -> dict[str, Number]:
    """The units' values combined across units, metric by metric (a metric the catalogue does
    not know is left out, as everywhere)."""
    out: dict[str, Number] = {}
    for unit_values in values:
        for metric, value in unit_values.items():
            kind = kinds.get(metric)
            if kind is None or value is None:
                continue
            out[metric] = value if metric not in out else kind.combine(out[metric], value)
    return out


def difference(live: Mapping[str, Number], confirmed: Mapping[str, Number]) -> dict[str, Number]:
    """Live minus confirmed for each metric that differs (a metric absent on one side is 0)."""
    out = {}
    for metric in sorted(set(live) | set(confirmed)):
        delta = live.get(metric, 0) - confirmed.get(metric, 0)
        if delta:
            out[metric] = round(delta, 6) if isinstance(delta, float) else delta
    return out


def touches(held: Mapping[str, int], unit: str, revision: int) -> bool:
    """Whether a unit's `revision` changes a snapshot that holds `held` (unit → revision)."""
    return held.get(unit, 0) < revision


def change_kind(held: Mapping[str, int], unit: str) -> Literal["correction", "late_report"]:
    """更正 when the snapshot held the unit's report, 迟报 when the unit first reported after it."""
    return "correction" if unit in held else "late_report"


@dataclass(frozen=True, slots=True)
class Confirmation:
    node: str
    version: int
    figures: dict[str, Number]
    units: dict[str, int]
    confirmed_at: datetime
    confirmed_by: str
    reopened_at: datetime | None


def status(confirms: bool, current: Confirmation | None) -> Status:
    if not confirms:
        return "not_required"
    if current is None:
        return "unconfirmed"
    return "reopened" if current.reopened_at is not None else "confirmed"

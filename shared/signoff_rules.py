"""Which levels confirm their day (确认上报) and by when, read from a data file
(shared/data/signoff.toml, or ROLLCALL_SIGNOFF_CONFIG): the signoff service refuses a
confirmation at a level that does not confirm, and the alerts service raises a missing
confirmation at the time given here. One file, read by this one module, for both."""

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from shared.deadlines import cutoff_instant, is_past
from shared.hierarchy import Level, level_of

DEFAULT_PATH = Path(__file__).parent / "data" / "signoff.toml"
# Levels that may confirm: a confirmation travels on `signoff.<action>.<county>.<town>.<village>`.
CONFIRMABLE = {"village": Level.VILLAGE, "town": Level.TOWN, "county": Level.COUNTY}


@dataclass(frozen=True, slots=True)
class ConfirmLevel:
    level: Level
    by: time  # local time on the reporting day
    after_children: bool = False  # 逐级: confirms only once its confirming children have


@dataclass(frozen=True)
class SignoffRules:
    levels: tuple[ConfirmLevel, ...]

    def _of(self, node: str) -> ConfirmLevel | None:
        level = level_of(node)
        return next((c for c in self.levels if c.level == level), None)

    def confirms(self, node: str) -> bool:
        """Whether the operator of `node` confirms its day."""
        return self._of(node) is not None

    def after_children(self, node: str) -> bool:
        """Whether `node` confirms only once every child of a confirming level has (逐级)."""
        found = self._of(node)
        return found is not None and found.after_children

    def due_at(self, node: str, day: date, zone: ZoneInfo) -> datetime | None:
        """When `node` must have confirmed `day` (None: its level does not confirm)."""
        found = self._of(node)
        return None if found is None else cutoff_instant(day, found.by, zone)

    def levels_due(self, now: datetime, zone: ZoneInfo, catch_up_days: int,
                   grace: timedelta = timedelta(0)) -> list[tuple[date, Level]]:
        """(day, level) whose confirmation time, and `grace` after it (for a confirmation made
        just before it to arrive), have passed at `now` (`deadlines.is_past`: a confirmation at
        the time itself is on time), today and `catch_up_days` days before."""
        today = now.astimezone(zone).date()
        out = []
        for back in range(catch_up_days, -1, -1):
            day = today - timedelta(days=back)
            out += [(day, c.level) for c in self.levels
                    if is_past(cutoff_instant(day, c.by, zone) + grace, now)]
        return out


def load_signoff_rules(path: Path | None = None) -> SignoffRules:
    """Read and check the file; a bad one stops the start, naming what is wrong."""
    data = tomllib.loads((path or DEFAULT_PATH).read_text(encoding="utf-8"))
    levels = []
    for i, entry in enumerate(data.get("confirm", [])):
        name = entry.get("level")
        if name not in CONFIRMABLE:
            raise ValueError(f"confirm[{i}].level: {name!r} is not one of "
                             f"{', '.join(CONFIRMABLE)}")
        try:
            by = time.fromisoformat(str(entry["by"]))
        except (KeyError, ValueError):
            raise ValueError(f"confirm[{i}].by: a local time such as \"16:00\" is needed") \
                from None
        after = entry.get("after_children", False)
        if not isinstance(after, bool):
            raise ValueError(f"confirm[{i}].after_children: true or false")
        levels.append(ConfirmLevel(CONFIRMABLE[name], by, after))
    if len({c.level for c in levels}) != len(levels):
        raise ValueError("confirm: a level is listed twice")
    return SignoffRules(tuple(sorted(levels, key=lambda c: c.level)))

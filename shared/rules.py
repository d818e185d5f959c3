"""The rules of every clock, read from a data file (shared/data/rules.toml, or ROLLCALL_RULES):
deadlines (ingest's receipts and the alerts' clocks read the same ones), the warning lead,
escalation steps, the outbreak threshold and window, missing-report checks and recipients
(also of supplies below a stock level: the levels themselves are the catalogue's).
Nothing here is hard-coded policy; this module only parses and checks."""

import itertools
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

DEFAULT_PATH = Path(__file__).parent / "data" / "rules.toml"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after_deadline: timedelta
    levels_up: int


@dataclass(frozen=True)
class Rules:
    deadlines: dict[str, timedelta]  # "default", "<topic>" or "<topic>.<unit type>"
    warning_before: timedelta
    escalation: tuple[EscalationStep, ...]
    outbreak_threshold: int
    outbreak_window_days: int
    outbreak_metric: str
    missing_grace: timedelta
    missing_catch_up_days: int
    recipients: dict[str, tuple[str, ...]]
    # 疑似瞒报: a unit's non-zero values identical this many days in a row raise a flag.
    identical_days: int = 5

    def deadline_after(self, topic: str, unit_type: str | None) -> timedelta:
        """The clock's length for a topic (a case kind, `outbreak` or `missing_report`), the
        most specific entry first: `<topic>.<unit type>`, then `<topic>`, then `default`."""
        for key in (f"{topic}.{unit_type}", topic, "default"):
            if key in self.deadlines:
                return self.deadlines[key]
        raise KeyError("the rules have no default deadline")

    def recipients_for(self, unit_type: str | None, missing_report: bool = False,
                       kind: str | None = None) -> list[str]:
        """Who must be told: an alert kind listed under [recipients] (`missing_report`,
        `supply_low`) by its own entry, any other by the unit type's, else `default`."""
        key = "missing_report" if missing_report else (kind if kind in self.recipients
                                                       else unit_type)
        return list(self.recipients.get(key or "default", self.recipients["default"]))


def load_rules(path: Path | None = None) -> Rules:
    data = tomllib.loads((path or DEFAULT_PATH).read_text(encoding="utf-8"))
    minutes = lambda m: timedelta(minutes=float(m))  # noqa: E731
    deadlines = {key: minutes(value) for key, value in data["deadline"].items()}
    escalation = tuple(EscalationStep(minutes(s["after_deadline"]), int(s["levels_up"]))
                       for s in data["escalation"]["steps"])
    rules = Rules(
        deadlines=deadlines,
        warning_before=minutes(data["escalation"]["warning_before"]),
        escalation=escalation,
        outbreak_threshold=int(data["outbreak"]["threshold"]),
        outbreak_window_days=int(data["outbreak"]["window_days"]),
        outbreak_metric=str(data["outbreak"].get("metric", "ili")),
        missing_grace=timedelta(seconds=float(data["missing_report"]["grace_seconds"])),
        missing_catch_up_days=int(data["missing_report"]["catch_up_days"]),
        recipients={key: tuple(value) for key, value in data["recipients"].items()},
        identical_days=int(data.get("suspicion", {}).get("identical_days", 5)),
    )
    _check(rules)
    return rules


def _check(rules: Rules) -> None:
    """Refuse rules the clock cannot follow, naming what is wrong."""
    if "default" not in rules.deadlines or "default" not in rules.recipients:
        raise ValueError("alert rules need deadline.default and recipients.default")
    if any(d <= timedelta(0) for d in rules.deadlines.values()):
        raise ValueError("alert deadlines must be positive")
    if rules.warning_before < timedelta(0):
        raise ValueError("escalation.warning_before must not be negative")
    steps = rules.escalation
    if not steps or any(b.after_deadline < a.after_deadline or b.levels_up <= a.levels_up
                        for a, b in itertools.pairwise(steps)):
        raise ValueError("escalation.steps must go later and higher, one after the other")
    if steps[0].after_deadline < timedelta(0) or steps[0].levels_up < 1:
        raise ValueError("the first escalation step comes at or after the deadline, a level up")
    if rules.outbreak_threshold < 1 or rules.outbreak_window_days < 1:
        raise ValueError("outbreak.threshold and outbreak.window_days must be at least 1")
    if rules.identical_days < 2:
        raise ValueError("suspicion.identical_days must be at least 2")

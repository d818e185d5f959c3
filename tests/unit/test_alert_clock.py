"""The alert clock's rules, with a fake clock: pure functions, no broker, no database."""

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.alerts import clock
from shared.catalogue import default_catalogue
from shared.contracts import AlertEscalated, AlertOpened
from shared.rules import DEFAULT_PATH, load_rules

RULES = load_rules()
ZONE = ZoneInfo("Asia/Shanghai")
FOUND = datetime(2031, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
M = timedelta(minutes=1)


def test_deadline_is_found_time_plus_two_hours_and_configurable_by_kind_and_type() -> None:
    assert clock.deadline_for(FOUND, "fever", "village_clinic", RULES) == FOUND + 120 * M
    assert clock.deadline_for(FOUND, "ili", "kindergarten", RULES) == FOUND + 120 * M
    rules = replace(RULES, deadlines={**RULES.deadlines, "fever": 90 * M,
                                      "fever.kindergarten": 60 * M})
    assert clock.deadline_for(FOUND, "fever", "kindergarten", rules) == FOUND + 60 * M
    assert clock.deadline_for(FOUND, "fever", "pharmacy", rules) == FOUND + 90 * M
    assert clock.deadline_for(FOUND, "ili", "pharmacy", rules) == FOUND + 120 * M


def test_recipients_by_unit_type() -> None:
    assert RULES.recipients_for("private_clinic") == ["village_committee"]
    assert RULES.recipients_for("pharmacy") == ["village_committee"]
    assert RULES.recipients_for("primary_school") == ["cdc", "education_authority"]
    assert RULES.recipients_for("kindergarten") == ["cdc", "education_authority"]
    assert RULES.recipients_for("something_new") == ["village_committee"]
    assert RULES.recipients_for(None, missing_report=True) == ["village_committee"]


S = timedelta(seconds=1)


def walk(deadline: datetime, start: datetime, end: datetime) -> list[tuple[datetime, str, int]]:
    """Tick on every minute and one second after it, from start to end; what fires, and when."""
    stage, fired, minute = 0, [], start
    while minute <= end:
        for now in (minute, minute + S):
            steps, stage = clock.due(deadline, stage, now, RULES)
            fired += [(now, s.action, s.levels_up) for s in steps]
        minute += M
    return fired


def test_each_step_fires_once_just_after_its_moment_never_at_it() -> None:
    deadline = FOUND + 120 * M
    fired = walk(deadline, FOUND, FOUND + 6 * 60 * M)
    assert fired == [(deadline - 30 * M + S, "warn", 0), (deadline + S, "escalate", 1),
                     (deadline + 60 * M + S, "escalate", 2)]


def test_an_escalation_comes_only_once_the_deadline_has_passed() -> None:
    """At the deadline the operator is still in time (`deadlines.is_past`)."""
    deadline = FOUND + 120 * M
    assert clock.due(deadline, 1, deadline, RULES) == ([], 1)
    steps, stage = clock.due(deadline, 1, deadline + timedelta(microseconds=1), RULES)
    assert [(s.action, s.at) for s in steps] == [("escalate", deadline)] and stage == 2


def test_after_an_outage_due_steps_fire_together_without_a_stale_warning() -> None:
    deadline = FOUND + 120 * M
    steps, stage = clock.due(deadline, 0, deadline + 61 * M, RULES)
    assert [(s.action, s.levels_up) for s in steps] == [("escalate", 1), ("escalate", 2)]
    assert stage == 3 and clock.next_due(deadline, stage, RULES) is None
    # Within the warning window but before the deadline: the warning alone.
    steps, stage = clock.due(deadline, 0, deadline - 5 * M, RULES)
    assert [s.action for s in steps] == ["warn"] and stage == 1
    assert clock.next_due(deadline, 1, RULES) == deadline


def test_nothing_is_due_before_its_time_and_nothing_twice() -> None:
    deadline = FOUND + 120 * M
    assert clock.due(deadline, 0, deadline - 31 * M, RULES) == ([], 0)
    assert clock.due(deadline, 1, deadline - 1 * M, RULES) == ([], 1)
    assert clock.due(deadline, 3, deadline + 600 * M, RULES) == ([], 3)


def test_escalation_goes_village_town_county() -> None:
    village = "430621108001"
    assert clock.escalation_target(village, 1) == "430621108"
    assert clock.escalation_target(village, 2) == "430621"
    assert clock.escalation_target("430621108", 1) == "430621"
    assert clock.escalation_target("430621", 9) == "43"
    assert clock.level_name("430621108") == "town"


def test_outbreak_window_takes_the_larger_count_per_day_and_seven_days() -> None:
    day = date(2031, 3, 8)
    counts = {day - timedelta(days=i): clock.unit_day_count(1, 2.0) for i in range(8)}
    assert clock.window_total(counts, day, RULES) == 14  # days 2..8, not the 8th day back
    assert clock.unit_day_count(3, None) == 3
    assert clock.window_total(counts, day, RULES, after=day - timedelta(days=2)) == 4
    assert not clock.is_outbreak(9, RULES) and clock.is_outbreak(10, RULES)


def test_cutoffs_due_in_local_time_after_the_grace() -> None:
    cutoffs = [time(10), time(12), time(14)]
    ten = datetime(2031, 3, 2, 10, 0, tzinfo=ZONE)
    today, yesterday = date(2031, 3, 2), date(2031, 3, 1)
    # Due once the cutoff and its minute of grace have passed, not at that moment itself.
    before = clock.cutoffs_due(ten + 60 * timedelta(seconds=1), ZONE, cutoffs, RULES)
    assert before == [(yesterday, time(10)), (yesterday, time(12)), (yesterday, time(14))]
    after = clock.cutoffs_due(ten + 61 * timedelta(seconds=1), ZONE, cutoffs, RULES)
    assert after[-1] == (today, time(10)) and len(after) == 4


def test_rules_that_the_clock_cannot_follow_are_refused(tmp_path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "rules.toml"
    bad.write_text(text.replace("after_deadline = 60", "after_deadline = -5"), encoding="utf-8")
    with pytest.raises(ValueError, match="later and higher"):
        load_rules(bad)
    bad.write_text(text.replace("threshold = 10", "threshold = 0"), encoding="utf-8")
    with pytest.raises(ValueError, match="threshold"):
        load_rules(bad)


def test_alert_events_carry_the_hierarchy_and_a_deterministic_id() -> None:
    import uuid

    alert_id = uuid.uuid4()
    common = {"alert_id": alert_id, "kind": "case", "node": "430621108001",
              "recipients": ["village_committee"], "level": "town",
              "responsible": "430621108", "status": "open", "deadline": FOUND, "late": False,
              "at": FOUND, "actor": "system"}
    opened = AlertOpened(seq=1, started_at=FOUND, **common)
    escalated = AlertEscalated(seq=3, from_node="430621108001", step=1, **common)
    assert opened.subject == "alert.opened.430621.430621108.430621108001"
    assert escalated.subject == "alert.escalated.430621.430621108.430621108001"
    assert escalated.msg_id == f"alert:{alert_id}:3"


def test_a_unit_under_a_stock_level_puts_each_node_of_that_level_above_it_below() -> None:
    catalogue = default_catalogue()
    day = date(2031, 3, 2)

    def below(node: str, days: float | None) -> dict[str, bool]:
        values = {} if days is None else {"supply_days": days}
        return {r.node: r.below
                for r in clock.stock_readings(catalogue, f"{node}-CL", node, day, 1, values)}

    # A village's unit: its town's reserve is 15 days, its county's 60 (the catalogue's levels).
    assert below("430621108001", 10) == {"430621108": True, "430621": True}
    assert below("430621108001", 20) == {"430621108": False, "430621": True}
    assert below("430621108001", 14.5) == {"430621108": True, "430621": True}
    assert below("430621108001", 15) == {"430621108": False, "430621": True}
    assert below("430621108001", 60) == {"430621108": False, "430621": False}
    # Nothing known of supplies is not below anything; a unit run by the county has no town.
    assert below("430621108001", None) == {"430621108": False, "430621": False}
    assert below("430621", 30) == {"430621": True}
    [county, town] = clock.stock_readings(catalogue, "U", "430621108001", day, 3,
                                          {"supply_days": 10})
    assert town.key == "supply_low:430621108:supply_days:2031-03-02"
    assert (town.stock_level, town.minimum, town.revision, town.value) == (
        "town_reserve_15_days", 15, 3, 10)
    assert county.key == "supply_low:430621:supply_days:2031-03-02"


def test_supply_alerts_have_their_own_deadline_and_recipients() -> None:
    assert RULES.deadline_after("supply_low", None) == 24 * 60 * M
    assert RULES.recipients_for(None, kind="supply_low") == ["command_centre"]
    assert RULES.recipients_for("pharmacy", kind="case") == ["village_committee"]

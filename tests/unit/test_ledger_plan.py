"""A person's file as the ledger reasons about it (services/ledger/plan.py): the phase counted on
a day, the countdowns held, the headcounts of every level; and the regimes' configuration."""

from datetime import date, timedelta

import pytest

from services.ledger import plan
from services.ledger.regimes import RegimeError, load_regimes
from shared.hierarchy import Level

REGIMES = load_regimes()
D0 = date(2026, 3, 1)
VILLAGE = "430621108001"


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def facts(**over) -> plan.Facts:
    base = {"person_id": "p1", "pseudonym": "GK-1", "category": "close_contact",
            "village": VILLAGE, "regime": "7+7", "start": D0, "phase_ends": (), "outcome": None,
            "tests_done": frozenset(), "team": frozenset({1, 2}), "signed": {}}
    return plan.Facts(**{**base, **over})


def keys(f: plan.Facts, today: date, kind: str) -> dict[date, bool]:
    return {c.day: c.met for c in plan.countdowns(REGIMES, f, today) if c.kind == kind}


def test_a_7_plus_7_arrival_holds_tests_on_days_2_and_7_a_release_and_a_sign_off_a_day():
    f = facts()
    assert keys(f, D0, plan.TEST) == {day(2): False, day(7): False}
    assert keys(f, D0, plan.RELEASE) == {day(7): False}
    assert keys(f, D0, plan.SIGNOFF) == {day(n): False for n in range(14)}
    assert plan.planned_release(REGIMES.regimes["7+7"], f) == day(14)
    signoff = next(c for c in plan.countdowns(REGIMES, f, D0) if c.kind == plan.SIGNOFF)
    assert signoff.group == f"signoff:{VILLAGE}:{D0}" and signoff.alert_kind == \
        "team_signoff_missing"


def test_a_release_on_day_7_counts_the_person_in_home_monitoring_from_day_7():
    regime = REGIMES.regimes["7+7"]
    f = facts(phase_ends=(day(7),))
    assert plan.phase_on(regime, f, day(6)).kind == "central_isolation"
    assert plan.phase_on(regime, f, day(7)).kind == "home_health_monitoring"
    assert plan.phase_on(regime, f, day(-1)) is None
    assert keys(f, day(7), plan.RELEASE) == {day(7): True, day(14): False}
    # Not released yet on day 8: still counted in central isolation, the release overdue.
    late = facts()
    assert plan.phase_on(regime, late, day(8)).kind == "central_isolation"


def test_closing_the_file_announces_the_test_after_release_and_ends_the_sign_offs():
    f = facts(phase_ends=(day(7), day(14)), outcome="completed")
    assert keys(f, day(14), plan.TEST) == {day(2): False, day(7): False, day(21): False}
    assert max(keys(f, day(14), plan.SIGNOFF)) == day(13)
    assert plan.phase_on(REGIMES.regimes["7+7"], f, day(14)) is None
    early = facts(phase_ends=(day(3),), outcome="hospitalised")
    assert keys(early, day(3), plan.TEST) == {day(2): False}  # no test after an early closing
    assert keys(early, day(3), plan.RELEASE) == {day(7): True}


def test_a_stay_past_its_plan_needs_the_sign_off_of_every_day_up_to_today():
    f = facts()
    assert max(keys(f, day(20), plan.SIGNOFF)) == day(20)


def test_met_is_every_member_signed_and_the_test_of_its_day():
    f = facts(tests_done=frozenset({day(2)}), signed={D0: frozenset({1, 2}),
                                                      day(1): frozenset({1})})
    assert keys(f, D0, plan.TEST)[day(2)] is True
    signs = keys(f, D0, plan.SIGNOFF)
    assert signs[D0] is True and signs[day(1)] is False
    assert not plan.signed_off(facts(team=frozenset()), D0)  # no team: never signed


def test_headcounts_roll_up_every_level_and_count_missing_sign_offs_once_final():
    files = [facts(), facts(person_id="p2", village="430621108002", phase_ends=(day(7),),
                            signed={day(8): frozenset({1, 2})})]
    counted = plan.headcounts(REGIMES, files, day(8), Level.COUNTY)
    assert counted[VILLAGE] == {"control_central_isolation": 1, "control_signoff_missing": 1}
    assert counted["430621108"] == {"control_central_isolation": 1,
                                    "control_home_health_monitoring": 1,
                                    "control_signoff_missing": 1}
    assert counted["430621"] == counted["430621108"] and "43" not in counted
    assert "control_signoff_missing" not in plan.headcounts(
        REGIMES, files, day(8), Level.COUNTY, final=False)["430621"]


def test_a_bad_regimes_file_names_every_problem(tmp_path):
    bad = tmp_path / "regimes.toml"
    bad.write_text("""
[categories]
x = { name_zh = "甲", name_en = "X" }
[outcomes]
completed = { name_zh = "完成", name_en = "Done" }
[phases.central_isolation]
place = "hotel"
metric = "control_central_isolation"
[regimes.a]
phases = [{ kind = "nowhere", days = 0 }]
test_days = [9]
[team]
roles = { doctor = "医生" }
""", encoding="utf-8")
    with pytest.raises(RegimeError) as refused:
        load_regimes(bad)
    problems = str(refused.value).splitlines()
    assert any("phases.central_isolation.place" in p for p in problems)
    assert any("regimes.a.phases[0].kind" in p for p in problems)
    assert any("regimes.a.phases[0].days" in p for p in problems)
    assert any("regimes.a.test_days" in p for p in problems)

"""What a correction of a registration may change (services/ledger/intake.py
`check_correction`): the fields that differ, the problems never allowed (422) and what the file
already holds forbids (409)."""

from datetime import date, timedelta

from services.ledger.intake import Recorded, check_correction
from services.ledger.regimes import load_regimes

REGIMES = load_regimes()
D0 = date(2026, 3, 1)
BEFORE = {"name": "张小明", "contact": None, "category": "close_contact", "regime": "7+7",
          "site": "县隔离点", "start_day": D0, "village": "430621108001"}
FRESH = Recorded(released_on=None, closed=False, first_recorded=None)


def check(recorded: Recorded = FRESH, **given):
    changes, problems, conflicts = check_correction({"reason": "录入错误", **given}, BEFORE,
                                                    recorded, REGIMES, D0 + timedelta(days=5))
    return changes, {(e.field, e.code) for e in problems}, {(e.field, e.code) for e in conflicts}


def test_only_what_differs_changes_and_blanks_clear_or_are_refused() -> None:
    assert check(name=" 张晓明 ", category="close_contact", contact=" 139 ") == (
        {"name": ("张小明", "张晓明"), "contact": (None, "139")}, set(), set())
    assert check(site="") == ({"site": ("县隔离点", None)}, {("site", "site_required")}, set())
    assert check(name="  ")[1] == {("name", "required")}
    assert check(name="张小明")[1] == {("fields", "nothing_changed")}
    assert check(regime="monitoring_3", site=None)[1] == set()


def test_the_plan_is_fixed_once_released_and_never_starts_after_what_is_recorded() -> None:
    released = Recorded(released_on=D0 + timedelta(days=7), closed=False, first_recorded=None)
    assert check(released, regime="14+7")[2] == {("regime", "released")}
    assert check(released, category="secondary_contact")[2] == set()
    tested = Recorded(released_on=None, closed=False, first_recorded=D0 + timedelta(days=2))
    assert check(tested, start_day=D0 + timedelta(days=3))[2] == {
        ("start_day", "recorded_before_start")}
    assert check(tested, start_day=D0 + timedelta(days=2))[2] == set()
    assert check(start_day=D0 + timedelta(days=6))[1] == {("start_day", "future_day")}
    assert check(village="430621108002")[1] == {("village", "not_correctable")}

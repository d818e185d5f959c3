"""The simulator's day is plausible: what it sends would pass the door's rules."""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rollcall.simulate import Plan, case_for, report_for, values_for
from shared.catalogue import default_catalogue

ZONE = ZoneInfo("Asia/Shanghai")


def test_reports_are_mostly_zero_and_always_valid():
    rng, catalogue = random.Random(1), default_catalogue()
    types = ["village_clinic", "primary_school", "village_committee", "pharmacy", "enterprise"]
    bodies = [report_for({"unit": f"U{i}", "unit_type": types[i % 5]},
                         datetime(2026, 3, 2).date(), rng, Plan(zero_share=0.7))
              for i in range(1000)]
    zero = sum("values" not in b for b in bodies)
    assert 600 < zero < 800
    for body in bodies:
        assert not catalogue.validate(body.get("values", {}))
    assert all(body["day"] == "2026-03-02" for body in bodies)


def test_clinics_report_fevers_and_schools_absences():
    rng = random.Random(2)
    assert set(values_for("village_clinic", rng)) >= {"fever", "ili", "nat_tests"}
    assert values_for("primary_school", rng)["sick_absence"] >= 1


def test_a_case_is_found_before_now_in_local_time_and_fevers_carry_a_temperature():
    rng, now = random.Random(3), datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    for _ in range(50):
        case = case_for({"unit": "U", "unit_type": "primary_school"}, now, ZONE, rng)
        found = datetime.fromisoformat(case["found_at"]).replace(tzinfo=ZONE)
        assert found < now and (now - found).total_seconds() <= 25 * 60
        assert case["kind"] in ("fever", "ili")
        if case["kind"] == "fever":
            assert 37.3 <= case["temperature"] <= 42
    late = case_for({"unit": "U", "unit_type": "village_clinic"}, now, ZONE, rng, minutes_ago=100)
    found = datetime.fromisoformat(late["found_at"]).replace(tzinfo=ZONE)
    assert found == now - timedelta(minutes=100)

"""The simulator's day is plausible: what it sends would pass the door's rules."""

import json
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rollcall.simulate import EXAMPLE_UNIT, Plan, case_for, report_for, todays_reports, values_for
from shared.catalogue import default_catalogue

ZONE = ZoneInfo("Asia/Shanghai")
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_first_report() -> dict:
    """The body of the README's first example: the first report sent in "Try it"."""
    text = README.read_text(encoding="utf-8")
    try_it = text[text.index("## Try it"):]
    body = re.search(r"-d '(\{.*?\})'", try_it, re.S)
    assert body, "the README's first example is a POST /v1/reports with a JSON body"
    day = date(2026, 3, 2).isoformat()  # the shell's $(date +%F)
    return json.loads(re.sub(r"'\$\(.*?\)'", day, body.group(1)))


def test_the_simulator_leaves_the_readme_example_unit_alone():
    """On a fresh `make run` the README's first example must answer 201, not 409: the simulator
    has sent every other unit's day, never this one."""
    unit = readme_first_report()["unit"]
    assert unit == EXAMPLE_UNIT
    pending = [{"unit": unit, "unit_type": "village_clinic"}] + [
        {"unit": f"430621108{i:03d}-VC", "unit_type": "village_committee"} for i in range(50)]
    for seed in range(20):
        bodies = todays_reports(pending, date(2026, 3, 2), random.Random(seed),
                                Plan(share=1.0))
        assert len(bodies) == 50 and unit not in {b["unit"] for b in bodies}


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

"""The rules of review and sign-off, pure: which levels confirm and by when (the one file both
signoff and alerts read), a snapshot's figures, live minus confirmed, and which report touches
a confirmation."""

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.signoff import review
from shared.aggregation import over_units
from shared.catalogue import default_catalogue
from shared.hierarchy import Level
from shared.signoff_rules import load_signoff_rules

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2031, 3, 2)


def test_the_default_file_makes_towns_and_the_county_confirm_by_their_times() -> None:
    rules = load_signoff_rules()
    assert rules.confirms("430621108") and rules.confirms("430621")
    assert not rules.confirms("430621108001")
    assert rules.due_at("430621108", DAY, ZONE) == datetime(2031, 3, 2, 16, 0, tzinfo=ZONE)
    assert rules.due_at("430621108001", DAY, ZONE) is None


def test_a_level_is_due_only_once_its_time_has_passed() -> None:
    rules = load_signoff_rules()
    at = lambda hh, mm=0, ss=0: datetime(2031, 3, 2, hh, mm, ss, tzinfo=ZONE)  # noqa: E731
    assert (DAY, Level.TOWN) not in rules.levels_due(at(16), ZONE, 0)  # at the time: on time
    assert rules.levels_due(at(16, 0, 1), ZONE, 0) == [(DAY, Level.TOWN)]
    assert set(rules.levels_due(at(17, 0, 1), ZONE, 0)) == {(DAY, Level.TOWN),
                                                             (DAY, Level.COUNTY)}
    yesterday = set(rules.levels_due(at(9), ZONE, 1))
    assert yesterday == {(date(2031, 3, 1), Level.TOWN), (date(2031, 3, 1), Level.COUNTY)}


@pytest.mark.parametrize(("text", "wrong"), [
    ('[[confirm]]\nlevel = "city"\nby = "16:00"\n', "confirm[0].level"),
    ('[[confirm]]\nlevel = "town"\nby = "four"\n', "confirm[0].by"),
    ('[[confirm]]\nlevel = "town"\nby = "16:00"\nafter_children = "yes"\n',
     "confirm[0].after_children"),
    ('[[confirm]]\nlevel = "town"\nby = "16:00"\n[[confirm]]\nlevel = "town"\nby = "17:00"\n',
     "listed twice"),
])
def test_a_bad_file_is_refused_naming_what_is_wrong(tmp_path: Path, text: str,
                                                    wrong: str) -> None:
    path = tmp_path / "signoff.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=wrong.replace("[", r"\[").replace("]", r"\]")):
        load_signoff_rules(path)


def test_a_file_without_levels_confirms_nothing(tmp_path: Path) -> None:
    path = tmp_path / "signoff.toml"
    path.write_text("", encoding="utf-8")
    rules = load_signoff_rules(path)
    assert not rules.confirms("430621") and rules.levels_due(
        datetime(2031, 3, 2, 23, tzinfo=ZONE), ZONE, 1) == []


def test_a_snapshot_combines_units_as_the_catalogue_says() -> None:
    kinds = over_units(default_catalogue())
    units = [{"fever": 2, "max_temperature": 38.5, "supply_days": 20},
             {"fever": 1, "max_temperature": 39.1, "supply_days": 12, "unknown": 5}]
    assert review.figures(units, kinds) == {"fever": 3, "max_temperature": 39.1,
                                            "supply_days": 12}


def test_the_difference_is_live_minus_confirmed_for_what_differs() -> None:
    assert review.difference({"fever": 5, "ili": 1}, {"fever": 2, "ili": 1}) == {"fever": 3}
    assert review.difference({"ili": 1}, {"fever": 2, "ili": 1}) == {"fever": -2}
    assert review.difference({"fever": 2}, {"fever": 2}) == {}


def test_a_report_touches_a_confirmation_that_does_not_hold_its_revision() -> None:
    held = {"A-CL": 1, "B-CL": 2}
    assert review.touches(held, "A-CL", 2) and review.change_kind(held, "A-CL") == "correction"
    assert not review.touches(held, "B-CL", 2) and not review.touches(held, "B-CL", 1)
    assert review.touches(held, "C-CL", 1) and review.change_kind(held, "C-CL") == "late_report"


def test_a_node_s_status() -> None:
    conf = review.Confirmation("430621108", 1, {}, {}, datetime(2031, 3, 2, tzinfo=ZONE), "x",
                               None)
    assert review.status(False, None) == "not_required"
    assert review.status(True, None) == "unconfirmed"
    assert review.status(True, conf) == "confirmed"
    assert review.status(True, replace(conf, reopened_at=conf.confirmed_at)) == "reopened"

import pytest

from shared.hierarchy import Level, ancestors, level_of, parent_of, subject_tokens


def test_levels_follow_code_length() -> None:
    codes = ("43", "4306", "430621", "430621108", "430621108001")
    assert [level_of(c) for c in codes] == list(Level)


@pytest.mark.parametrize("bad", ["", "4", "43062", "abc123", "4306211080011"])
def test_bad_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        level_of(bad)


def test_ancestors_are_prefixes_top_down() -> None:
    assert ancestors("430621108001") == ("43", "4306", "430621", "430621108", "430621108001")
    assert ancestors("430621") == ("43", "4306", "430621")
    assert parent_of("430621108") == "430621"
    assert parent_of("43") is None


def test_subjects_carry_county_town_village() -> None:
    assert subject_tokens("430621108001") == "430621.430621108.430621108001"
    assert subject_tokens("430621108") == "430621.430621108._"
    assert subject_tokens("430621") == "430621._._"
    with pytest.raises(ValueError):
        subject_tokens("4306")

import uuid

from shared.auth import Principal, hash_token


def test_unit_submits_only_for_itself() -> None:
    p = Principal(uuid.uuid4(), "unit", "430621108001-CL", "王医生")
    assert p.may_submit_for("430621108001-CL", "430621108001")
    assert not p.may_submit_for("430621108001-VC", "430621108001")
    assert not p.may_see("430621")


def test_operator_reaches_its_subtree_only() -> None:
    p = Principal(uuid.uuid4(), "operator", "430621108", "公田镇值班")
    assert p.may_submit_for("430621108001-CL", "430621108001")
    assert not p.may_submit_for("430621104001-CL", "430621104001")
    assert p.may_see("430621108002") and not p.may_see("430621")


def test_tokens_are_hashed() -> None:
    assert hash_token("rc_x") != "rc_x" and len(hash_token("rc_x")) == 64


def test_a_sector_operator_reaches_its_sector_below_its_node() -> None:
    edu = Principal(uuid.uuid4(), "operator", "430621", "县教育局", "education")
    assert edu.may_submit_for("430621108-PS", "430621108", "education")
    assert not edu.may_submit_for("430621108001-CL", "430621108001", "health")
    assert not edu.may_submit_for("430622-PS", "430622", "education")
    assert edu.covers("education") and not edu.covers("health")
    territorial = Principal(uuid.uuid4(), "operator", "430621", "县指挥部")
    assert territorial.covers("health") and territorial.sector is None

"""One refusal catalogue: every code has its status and both messages, filled from parameters."""

import re
import string
from pathlib import Path

import pytest

from shared.refusals import CATALOGUE, DETAILS, Refused, problem, refuse

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_refusal_has_a_status_and_both_messages_with_the_same_parameters(code: str) -> None:
    kind = CATALOGUE[code]
    assert kind.status in DETAILS and kind.message_zh.strip() and kind.message_en.strip()
    names = [{f for _, f, _, _ in string.Formatter().parse(m) if f}
             for m in (kind.message_zh, kind.message_en)]
    assert names[0] == names[1]


def test_a_refusal_names_the_field_the_code_and_the_reason() -> None:
    refused = refuse("outside_area", "node", what="430621")
    assert isinstance(refused, Refused) and refused.status == 403
    body = problem(refused.status, refused.errors)
    assert body["detail"] == "forbidden"
    assert body["errors"] == [{"field": "node", "code": "outside_area",
                               "message_zh": "430621 不在此凭证的辖区内",
                               "message_en": "430621 is outside this credential's area"}]
    assert refuse("bad_token", "authorization").headers == {"WWW-Authenticate": "Bearer"}
    assert refuse("auth_unavailable", "authorization").headers == {"Retry-After": "5"}


def test_services_raise_only_codes_of_the_catalogue() -> None:
    used = set()
    for path in (ROOT / "services").rglob("*.py"):
        used |= set(re.findall(r"refus(?:e|al)\(\s*\"([a-z_]+)\"", path.read_text()))
    assert used and used <= set(CATALOGUE)

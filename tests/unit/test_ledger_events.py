"""The bulk path writes ReportAccepted's JSON directly; it must say exactly what the contract
says, whatever the report."""

import uuid
from datetime import UTC, date, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.ledger import Submission, _event, accepted_payload, accepted_subject
from shared.contracts import ReportAccepted
from shared.registry.reference import UnitInfo

UNITS = [UnitInfo("430621108001-CL", "卫生室", "village_clinic", "health", None, None,
                  time(12), ((date(2020, 1, 1), "430621108001"),)),
         UnitInfo("430621-HOSP", "医院", "hospital", "health", None, None, time(12),
                  ((date(2020, 1, 1), "430621"),))]


@given(unit=st.sampled_from(UNITS), day=st.dates(date(2020, 1, 1), date(2030, 1, 1)),
       values=st.dictionaries(st.sampled_from(["fever", "ili", "max_temperature"]),
                              st.integers(0, 100) | st.floats(30, 45)),
       late=st.booleans(), reporter=st.text(min_size=1, max_size=10),
       actor=st.none() | st.text(max_size=10),
       moment=st.datetimes(timezones=st.just(UTC)))
def test_the_written_event_is_the_contracts(unit: UnitInfo, day: date, values: dict,
                                            late: bool, reporter: str, actor: str | None,
                                            moment: datetime) -> None:
    sub = Submission(unit=unit, day=day, values=values, zero=not any(values.values()),
                     late=late, reporter=reporter, submitted_at=moment, actor=actor)
    report_id = uuid.uuid4()
    node = unit.node_on(day)
    expected = _event(sub, report_id, 1, late, node)
    written = ReportAccepted.model_validate_json(accepted_payload(sub, report_id, node))
    assert written == ReportAccepted.model_validate_json(expected.model_dump_json())
    assert accepted_subject(node) == written.subject == expected.subject
    assert f"report:{unit.code}:{day.isoformat()}:1" == written.msg_id


def test_a_count_travels_as_an_integer_and_a_decimal_keeps_its_digits() -> None:
    """`"fever": 2`, never `2.0`, in the event every consumer reads."""
    sub = Submission(unit=UNITS[0], day=date(2026, 3, 1), values={"fever": 2,
                     "max_temperature": 38.4}, zero=False, late=False, reporter="王",
                     submitted_at=datetime(2026, 3, 1, tzinfo=UTC))
    node = UNITS[0].node_on(sub.day)
    for payload in (accepted_payload(sub, uuid.uuid4(), node),
                    _event(sub, uuid.uuid4(), 2, False, node).model_dump_json().encode()):
        event = ReportAccepted.model_validate_json(payload)
        assert event.values == {"fever": 2, "max_temperature": 38.4}
        assert type(event.values["fever"]) is int
        assert b'"fever":2' in payload.replace(b" ", b"")

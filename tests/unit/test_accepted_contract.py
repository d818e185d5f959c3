"""The versioned accepted-report contract (shared/contracts.py `reports_of`): v1 (one report a
message) and v2 (a village's batch) read alike; an unknown version or a malformed batch is
refused, never guessed at."""

import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared.contracts import (
    ACCEPTED_BATCH_MAX,
    ReportAccepted,
    UnknownVersion,
    accepted_batch,
    accepted_batch_id,
    reports_of,
)


def report(unit: str = "430621108001-CL", revision: int = 1) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid4(), unit=unit, node="430621108001", unit_type="village_clinic",
        sector="health", day=date(2026, 11, 30), revision=revision,
        values={"fever": 2, "max_temperature": 38.4}, zero=False, late=False,
        submitted_at=datetime(2026, 11, 30, 8, tzinfo=UTC), reporter="王")


def test_a_v1_message_is_one_report() -> None:
    one = report()
    assert reports_of(one.model_dump_json().encode()) == [one]


def test_a_v2_message_is_its_reports_in_order() -> None:
    reports = [report(f"430621108001-U{i}") for i in range(5)] + [report(revision=2)]
    data = accepted_batch([r.model_dump_json().encode() for r in reports])
    assert reports_of(data) == reports
    assert type(reports_of(data)[0].values["fever"]) is int


@pytest.mark.parametrize("version", [3, 0, "2", None])
def test_an_unknown_version_is_refused_by_name(version) -> None:
    body = f'{{"version": {version if not isinstance(version, str) else repr(version)}, '
    body = body.replace("None", "null").replace("'", '"')
    data = (body + f'"reports": [{report().model_dump_json()}]}}').encode()
    with pytest.raises(UnknownVersion, match=r"version: .* is not a known report\.accepted"):
        reports_of(data)


@pytest.mark.parametrize("data", [
    b'{"version": 2, "reports": []}', b'{"version": 2}', b'[1, 2]', b'not json',
    b'{"version": 2, "reports": [{"unit": "x"}]}', b'{"unit": "x"}'])
def test_a_malformed_message_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):  # ValidationError is one
        reports_of(data)


def test_a_batch_is_bounded() -> None:
    one = report().model_dump_json().encode()
    assert len(reports_of(accepted_batch([one] * ACCEPTED_BATCH_MAX))) == ACCEPTED_BATCH_MAX
    for data in (accepted_batch([one] * (ACCEPTED_BATCH_MAX + 1)),
                 b'{"version": 2, "reports": [' + b",".join([one] * 257) + b"]}"):
        with pytest.raises(ValueError, match=f"(?s)reports.*(at most|1 to) {ACCEPTED_BATCH_MAX}"):
            reports_of(data)


def test_a_bad_report_in_a_batch_refuses_the_whole_message() -> None:
    good = report().model_dump_json().encode()
    with pytest.raises(ValidationError, match="revision"):
        reports_of(accepted_batch([good, good.replace(b'"revision":1', b'"revision":0')]))


def test_a_batch_id_is_derived_from_its_reports() -> None:
    ids = ["report:u1:2026-11-30:1", "report:u2:2026-11-30:1"]
    assert accepted_batch_id(ids) == accepted_batch_id(list(ids))
    assert accepted_batch_id(ids) != accepted_batch_id(ids[::-1])
    assert accepted_batch_id(ids).startswith("reports:")
    assert accepted_batch_id(ids[:1]) == ids[0]  # a batch of one keeps its report's id

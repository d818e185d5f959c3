"""Ingest's idempotency and revision rules (`services.ingest.revisions`), without a database:
a retry changes nothing and answers with what is stored, a conflict is refused with its code,
and revisions are numbered without gaps."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.models import ReportRow
from services.ingest.revisions import (
    NextRevision,
    Retry,
    classify_case,
    classify_first,
    firsts,
    next_revision,
)
from shared.refusals import Refused

DAY = date(2026, 3, 2)
UNIT = "430621108001-CL"


def revision_row(report_id: uuid.UUID, unit_code: str, day: date, revision: int,
                 values: dict, reason: str | None, late: bool) -> ReportRow:
    """A stored revision, as the ledger reads it (built, never stored)."""
    return ReportRow(report_id=report_id, unit_code=unit_code, day=day, revision=revision,
                     values=values, reason=reason, late=late)


def code_of(decision: object) -> tuple[int, str]:
    assert isinstance(decision, Refused), decision
    return decision.status, decision.error.code


# -- within one batch --------------------------------------------------------------------------

keys = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), max_size=12)


@given(data=st.data(), batch_keys=keys)
def test_firsts_keeps_the_first_of_each_key_and_id(data, batch_keys) -> None:
    ids = data.draw(st.lists(st.none() | st.sampled_from([1, 2, 3]), min_size=len(batch_keys),
                             max_size=len(batch_keys)))
    kept = firsts(batch_keys, ids)
    assert kept == sorted(kept)
    kept_keys = [batch_keys[i] for i in kept]
    assert len(set(kept_keys)) == len(kept_keys)  # no key twice
    kept_ids = [ids[i] for i in kept if ids[i] is not None]
    assert len(set(kept_ids)) == len(kept_ids)  # no chosen id twice
    for i in range(len(batch_keys)):  # a left-out item repeats an earlier kept one
        if i not in kept:
            earlier = kept[:sum(1 for k in kept if k < i)]
            assert any(batch_keys[j] == batch_keys[i]
                       or (ids[i] is not None and ids[j] == ids[i]) for j in earlier)


# -- first reports -----------------------------------------------------------------------------


def first_row(values: dict, report_id: uuid.UUID | None = None) -> ReportRow:
    return revision_row(report_id or uuid.uuid4(), UNIT, DAY, 1, values, None, False)


def test_a_first_report_sent_again_is_a_retry_by_id_or_by_content() -> None:
    stored = first_row({"fever": 1})
    by_id = {stored.report_id: stored}
    same_id = classify_first(UNIT, DAY, {"fever": 1}, stored.report_id, by_id, stored)
    assert same_id == Retry(stored)
    no_id = classify_first(UNIT, DAY, {"fever": 1}, None, by_id, stored)
    assert no_id == Retry(stored)


def test_a_different_first_report_is_refused() -> None:
    stored = first_row({"fever": 1})
    by_id = {stored.report_id: stored}
    other_values = classify_first(UNIT, DAY, {"fever": 2}, None, by_id, stored)
    assert code_of(other_values) == (409, "already_reported")
    assert str(DAY) in other_values.error.message_en
    # The same id for another unit's report, or for other figures: the id is reused.
    assert code_of(classify_first("430621108002-CL", DAY, {"fever": 1}, stored.report_id,
                                  by_id, None)) == (409, "id_reused")
    assert code_of(classify_first(UNIT, DAY, {"fever": 2}, stored.report_id, by_id,
                                  stored)) == (409, "id_reused")
    # A new id for a day already reported, even with the same figures: a different report.
    assert code_of(classify_first(UNIT, DAY, {"fever": 1}, uuid.uuid4(), by_id,
                                  stored)) == (409, "already_reported")


# -- corrections -------------------------------------------------------------------------------

values = st.dictionaries(st.sampled_from(["fever", "ili"]), st.integers(0, 2), max_size=2)
reasons = st.sampled_from(["误报", "补报", "更正"])
ids_pool = [uuid.UUID(int=n) for n in range(1, 4)]
corrections = st.fixed_dictionaries({
    "values": values, "reason": reasons,
    "report_id": st.none() | st.sampled_from(ids_pool),
    "revision": st.none() | st.integers(2, 6)})


def decide(stored: list[ReportRow], c: dict):
    same_id = next((r for r in stored if r.report_id == c["report_id"]), None)
    return next_revision(UNIT, DAY, c["values"], c["reason"], c["report_id"], c["revision"],
                         stored, same_id)


def store(stored: list[ReportRow], c: dict, decision: NextRevision) -> ReportRow:
    row = revision_row(c["report_id"] or uuid.uuid4(), UNIT, DAY, decision.revision, c["values"],
              c["reason"], decision.late)
    stored.append(row)
    return row


@given(late=st.booleans(), first=values, history=st.lists(corrections, max_size=8))
def test_corrections_number_revisions_without_gaps_and_a_retry_changes_nothing(
        late: bool, first: dict, history: list[dict]) -> None:
    stored = [revision_row(uuid.uuid4(), UNIT, DAY, 1, first, None, late)]
    for c in history:
        decision = decide(stored, c)
        if isinstance(decision, NextRevision):
            assert decision.revision == stored[-1].revision + 1
            assert c["revision"] in (None, decision.revision)
            assert decision.late == late  # timeliness is the first report's
            row = store(stored, c, decision)
            assert decide(stored, c) == Retry(row)  # the same correction again: a retry
        elif isinstance(decision, Retry):
            assert decision.stored in stored
            assert (decision.stored.values, decision.stored.reason) == (c["values"],
                                                                         c["reason"])
        else:
            assert code_of(decision) in {(409, "revision_conflict"), (409, "id_reused")}
        assert [r.revision for r in stored] == list(range(1, len(stored) + 1))


def test_a_stale_or_skipping_revision_is_refused() -> None:
    stored = [first_row({"fever": 1})]
    c = {"values": {"fever": 0}, "reason": "误报", "report_id": None, "revision": 2}
    store(stored, c, decide(stored, c))
    stale = decide(stored, {**c, "values": {"fever": 2}})
    assert code_of(stale) == (409, "revision_conflict")
    assert "the next is 3" in stale.error.message_en
    assert code_of(decide(stored, {**c, "revision": 7})) == (409, "revision_conflict")
    assert isinstance(decide(stored, {**c, "revision": 3}), NextRevision)


def test_nothing_to_correct() -> None:
    c = {"values": {}, "reason": "误报", "report_id": None, "revision": None}
    assert code_of(decide([], c)) == (404, "no_report")


def test_an_unnumbered_correction_equal_to_the_first_report_is_a_new_revision() -> None:
    """Only a correction is a retry of a correction: the same figures as the first report, with
    a reason, is a revision of its own."""
    stored = [first_row({"fever": 1})]
    c = {"values": {"fever": 1}, "reason": "误报", "report_id": None, "revision": None}
    assert decide(stored, c) == NextRevision(2, False)


def test_a_correction_id_used_for_another_day_is_refused() -> None:
    elsewhere = revision_row(uuid.uuid4(), UNIT, date(2026, 3, 1), 2, {"fever": 0}, "误报", False)
    decision = next_revision(UNIT, DAY, {"fever": 0}, "误报", elsewhere.report_id, None,
                             [first_row({"fever": 1})], elsewhere)
    assert code_of(decision) == (409, "id_reused")


# -- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCase:
    case_id: uuid.UUID
    unit: str
    person_ref: str
    found_at: datetime


FOUND = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_a_case_sent_again_is_a_retry_by_id_or_by_person_and_time() -> None:
    row = StoredCase(uuid.uuid4(), UNIT, "P-1", FOUND)
    key = (UNIT, "P-1", FOUND)
    by_id, by_key = {row.case_id: row}, {key: row}
    assert classify_case(key, row.case_id, by_id, by_key) == Retry(row)
    assert classify_case(key, None, by_id, by_key) == Retry(row)
    assert classify_case(key, uuid.uuid4(), by_id, by_key) == Retry(row)
    other = (UNIT, "P-2", FOUND)
    assert code_of(classify_case(other, row.case_id, by_id, by_key)) == (409, "id_reused")
    with pytest.raises(RuntimeError):  # neither new nor stored: the ledger lost a row
        classify_case(other, None, by_id, by_key)

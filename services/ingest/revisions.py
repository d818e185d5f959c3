"""Ingest's idempotency and revision rules, as plain functions over what the ledger holds
(docs/architecture.md: "Contracts", effectively once, and "The path of a daily report").

Submitting the same report twice (a retry) changes nothing and answers with what is stored; a
different report for a day already reported is refused (send a correction); a correction is the
next revision of the unit's day, and its retry is recognised by its report id, by the revision it
names, or (naming neither) by being identical to the latest revision. `services.ingest.ledger`
reads what these functions need and writes what they decide; nothing here touches a database.
"""

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from shared.refusals import Refused, refuse


class StoredReport(Protocol):
    """One stored revision of a report, as the ledger reads it."""

    report_id: UUID
    unit_code: str
    day: date
    revision: int
    values: dict
    reason: str | None
    late: bool
    note: str | None


class StoredCase(Protocol):
    case_id: UUID
    unit: str
    person_ref: str
    found_at: datetime


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class Retry(Generic[Row]):
    """The submission is one already stored: answer with `stored`, change nothing."""

    stored: Row


@dataclass(frozen=True, slots=True)
class NextRevision:
    """Store the correction as `revision`; `late` is the first report's (timeliness belongs to
    the first report: correcting it later does not make it late, nor on time)."""

    revision: int
    late: bool


def firsts(keys: Sequence[Hashable], ids: Sequence[Hashable | None]) -> list[int]:
    """The positions in a batch of the items that repeat no earlier item's natural key nor its
    client-chosen id (None: the client chose none). A repeat within the batch is judged against
    the first once it is stored, like any retry."""
    out: list[int] = []
    seen_keys: set = set()
    seen_ids: set = set()
    for i, (key, id_) in enumerate(zip(keys, ids, strict=True)):
        if key in seen_keys or (id_ is not None and id_ in seen_ids):
            continue
        seen_keys.add(key)
        if id_ is not None:
            seen_ids.add(id_)
        out.append(i)
    return out


def id_reused(field: str) -> Refused:
    return refuse("id_reused", field)


def classify_first(unit: str, day: date, values: Mapping, report_id: UUID | None,
                   by_id: Mapping[UUID, StoredReport], first: StoredReport | None,
                   note: str | None = None) -> Retry[StoredReport] | Refused:
    """A first report the ledger did not take as new: the same one again (a retry: the same
    values and note), or a different one. `by_id`: stored revisions by report id; `first`: the
    unit's stored first report for the day."""
    if report_id is not None and report_id in by_id:
        row = by_id[report_id]
        same = (row.unit_code == unit and row.day == day and row.revision == 1
                and row.values == values and row.note == note)
        return Retry(row) if same else id_reused("report_id")
    if first is None:  # cannot happen: nothing is deleted from the ledger
        raise RuntimeError(f"report for {unit} {day} neither stored nor found")
    if report_id is None and first.values == values and first.note == note:
        return Retry(first)  # a retry without a report id: known by its natural key
    return refuse("already_reported", "day", day=day, revision=first.revision)


def next_revision(unit: str, day: date, values: Mapping, reason: str,
                  report_id: UUID | None, revision: int | None,
                  stored: Sequence[StoredReport], same_id: StoredReport | None,
                  note: str | None = None) -> Retry[StoredReport] | NextRevision | Refused:
    """What a correction of `unit`'s `day` is, given the day's stored revisions (`stored`, in
    order) and the stored revision that already has the correction's report id (`same_id`, if
    any, whichever unit and day it belongs to). Decided while the unit's day is locked, so that
    two corrections never both take the same next revision."""
    if report_id is not None and same_id is not None:
        same = (same_id.unit_code == unit and same_id.day == day
                and same_id.values == values and same_id.reason == reason
                and same_id.note == note)
        return Retry(same_id) if same else id_reused("report_id")
    if not stored:
        return refuse("no_report", "day", day=day)
    latest = stored[-1]
    if revision is not None and revision != latest.revision + 1:
        named = next((row for row in stored if row.revision == revision), None)
        if (named is not None and named.values == values and named.reason == reason
                and named.note == note):
            return Retry(named)
        return refuse("revision_conflict", "revision", revision=revision,
                      latest=latest.revision, next=latest.revision + 1)
    if (revision is None and report_id is None and latest.revision > 1
            and latest.values == values and latest.reason == reason and latest.note == note):
        return Retry(latest)
    return NextRevision(latest.revision + 1, stored[0].late)


def classify_case(key: tuple[str, str, datetime], case_id: UUID | None,
                  by_id: Mapping[UUID, StoredCase], by_key: Mapping[tuple, StoredCase]
                  ) -> Retry[StoredCase] | Refused:
    """A case the ledger did not take as new: a retry (the same id, or the same person found at
    the same unit at the same moment), or an id already used for another case. `key` is the
    case's (unit, person_ref, found_at)."""
    if case_id is not None and case_id in by_id:
        row = by_id[case_id]
        same = (row.unit, row.person_ref, row.found_at) == key
        return Retry(row) if same else id_reused("case_id")
    if key in by_key:
        return Retry(by_key[key])
    raise RuntimeError(f"case {case_id or key} neither stored nor found")

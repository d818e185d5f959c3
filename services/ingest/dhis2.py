"""DHIS2 data value sets through ingest's door: a payload becomes reports, and the units' latest
reports become a payload (the format and the mapping: shared/dhis2.py).

An import is a submission like any other. Its values are grouped into one report per unit and
day and sent through `submissions` with the operator's credential: the same checks, the same
idempotency, the same ledger (who, when; a correction's reason) and every refusal kept. A unit
and day with no report gets its first report; one already reported gets a correction with the
imported values over the latest revision's (DHIS2 upserts values one by one); one whose values
would not change is left alone (ignored). A value the door refuses (an unknown data element, a
negative count…) is a conflict and the unit-day's other values are sent again without it, so
one bad value does not cost its neighbours. Counts are per data value, as DHIS2 counts them.
"""

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from services.ingest import ledger, submissions
from services.ingest.ratelimit import UnitRate
from services.ingest.schemas import CorrectionCommand, SubmitReport
from services.ingest.service import IngestContext
from services.ingest.submissions import Incoming, Outcome
from shared import dhis2
from shared.auth import Principal
from shared.errors import FieldError

REASON = "DHIS2 数据导入 / DHIS2 data value set import"
MAX_VALUES = 100_000


@dataclass
class Row:
    """One data value of the payload, mapped to Rollcall's codes where the mapping knows them
    (otherwise as it came, for the door to refuse)."""

    index: int
    unit: str
    day: str
    metric: str
    value: object
    stored_by: str | None
    comment: str | None
    org_unit: str
    period: str
    element: str


@dataclass
class Group:
    """The rows of one unit and day: one report."""

    unit: str
    day: str
    rows: list[Row] = field(default_factory=list)


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _rows(payload: dict, mapping: dhis2.IdMapping, summary: dhis2.Summary) -> list[Row]:
    """The payload's data values as rows; those that cannot even be placed are conflicts."""
    values = payload.get("dataValues")
    # A data value set may name the period, org unit and combo once for all its values.
    period0, org_unit0 = payload.get("period"), payload.get("orgUnit")
    rows: list[Row] = []
    for i, dv in enumerate(values):  # type: ignore[arg-type]
        if not isinstance(dv, dict):
            summary.conflict([i], "a data value is a JSON object", None, prop="dataValues")
            continue
        if dv.get("deleted") is True:
            summary.conflict([i], "Rollcall keeps every revision: a value is corrected, never "
                                  "deleted", None, obj=str(dv.get("dataElement")))
            continue
        element, period = _text(dv.get("dataElement")), _text(dv.get("period", period0))
        org_unit = _text(dv.get("orgUnit", org_unit0))
        if element is None:
            summary.conflict([i], f"Value #{i} data element not defined in group or value",
                             "E8102")
            continue
        if period is None:
            summary.conflict([i], f"Value #{i} period not defined in group or value",
                             dhis2.E_PERIOD)
            continue
        if org_unit is None:
            summary.conflict([i], f"Value #{i} org unit not defined in group or value",
                             dhis2.E_ORG_UNIT_MISSING)
            continue
        coc = _text(dv.get("categoryOptionCombo"))
        rows.append(Row(
            index=i, unit=mapping.code_of(org_unit) or org_unit,
            day=dhis2.day_of(period) or period,
            metric=mapping.metric_of(element, coc) or element,
            value=dhis2.number_of(dv.get("value")), stored_by=_text(dv.get("storedBy")),
            comment=_text(dv.get("comment")), org_unit=org_unit, period=period,
            element=element))
    return rows


def _groups(rows: list[Row], summary: dhis2.Summary) -> list[Group]:
    """One group per unit and day; values that repeat a unit, day and metric are conflicts
    (DHIS2's E8128: which of them would win is not for the importer to guess)."""
    by_key: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        by_key[(row.unit, row.day, row.metric)].append(row)
    groups: dict[tuple[str, str], Group] = {}
    for (unit, day, metric), same in by_key.items():
        if len(same) > 1:
            summary.conflict([r.index for r in same],
                             f"Values #{[r.index for r in same]} all affect the same data "
                             f"value: {unit} {day} {metric}", dhis2.E_SAME_VALUE,
                             obj=same[0].element)
            continue
        groups.setdefault((unit, day), Group(unit, day)).rows.append(same[0])
    return list(groups.values())


def _report_of(group: Group, principal: Principal, latest) -> tuple[Incoming | None, dict]:
    """The submission a group makes: a first report, a correction over `latest`, or None when
    nothing would change. Also the values the group would set."""
    values = {r.metric: r.value for r in group.rows}
    reporter = next((r.stored_by for r in group.rows if r.stored_by), None) or "DHIS2"
    comments = list(dict.fromkeys(r.comment for r in group.rows if r.comment))
    note = " / ".join(comments) or None
    body: dict = {"unit": group.unit, "day": group.day, "reporter": reporter, "values": values}
    if latest is None:
        if note:
            body["note"] = note
        return submissions.read(SubmitReport, body, principal), values
    merged = {**latest.values, **values}
    if merged == latest.values and (note is None or note == latest.note):
        return None, values
    body.update(values=merged, reason=REASON, revision=latest.revision + 1)
    if note or latest.note:
        body["note"] = note or latest.note
    return submissions.read(CorrectionCommand, body, principal), values


def _error_code(error: FieldError) -> str | None:
    """DHIS2's ErrorCode for a refusal of the door, where DHIS2 has one."""
    code = error.code
    if error.field == "unit":
        return {"unknown_unit": dhis2.E_ORG_UNIT_NOT_FOUND,
                "outside_area": dhis2.E_NO_ACCESS}.get(code)
    if error.field == "day":
        return dhis2.E_UNTIMELY if code in ("future_day", "day_locked") else (
            dhis2.E_PERIOD_INVALID)
    if error.field.startswith("values."):
        if code == "unknown_metric":
            return dhis2.E_ELEMENT_NOT_FOUND
        if code in ("not_a_number", "not_integer", "negative", "too_precise", "out_of_range"
                    ) or code.endswith("_type") or code.endswith("_parsing"):
            return dhis2.E_VALUE_INVALID
    if error.field == "note" and code == "string_too_long":
        return dhis2.E_COMMENT_TOO_LONG
    return None


def _object_of(error: FieldError, rows: list[Row]) -> str:
    row = rows[0]
    if error.field == "day":
        return row.period
    if error.field.startswith("values."):
        return row.element
    return row.org_unit


def _conflict(summary: dhis2.Summary, rows: list[Row], errors: list[FieldError],
              outcome: Outcome) -> None:
    """The group's rows refused: one conflict per reason, naming the door's own code."""
    for error in errors:
        message = error.message_en
        if error.field == "day" and dhis2.day_of(rows[0].period) is None:
            message = (f"Period not valid: `{rows[0].period}`: Rollcall takes daily periods "
                       "(yyyyMMdd)")
        summary.conflict(
            [r.index for r in rows], message, _error_code(error),
            obj=_object_of(error, rows), prop=error.field,
            objects={"code": error.code, "message_zh": error.message_zh,
                     **({"rejection_id": str(outcome.rejection_id)}
                        if outcome.rejection_id else {})})


def _value_errors(group: Group, errors: list[FieldError]) -> dict[str, list[FieldError]] | None:
    """The refusals of a group by the metric they name, when every one names a metric the
    group imports (its other values can then go in without them); None otherwise."""
    mine = {r.metric for r in group.rows}
    by_metric: dict[str, list[FieldError]] = defaultdict(list)
    for e in errors:
        metric = e.field.removeprefix("values.")
        if not e.field.startswith("values.") or metric not in mine:
            return None
        by_metric[metric].append(e)
    return by_metric


def _count(summary: dhis2.Summary, group: Group, outcome: Outcome, latest) -> None:
    if outcome.status == "duplicate":
        summary.same(len(group.rows))
        return
    for row in group.rows:
        before = latest.values if latest is not None else {}
        if row.metric not in before:
            summary.imported += 1
        elif before[row.metric] != row.value:
            summary.updated += 1
        else:
            summary.same(1)


async def import_values(ctx: IngestContext, payload: object, principal: Principal,
                        mapping: dhis2.IdMapping) -> dhis2.Summary:
    """A DHIS2 data value set (parsed JSON, or a CSV read by `dhis2.from_csv`) imported as
    reports through the door, answered with DHIS2's import summary."""
    summary = dhis2.Summary()
    if not isinstance(payload, dict) or not isinstance(payload.get("dataValues"), list):
        error = FieldError("dataValues", "not_a_data_value_set", "须为 DHIS2 数据值集",
                           "not a DHIS2 data value set: {\"dataValues\": [...]}")
        [outcome] = await submissions.keep_refused(ctx, [Incoming(
            {"body": payload} if not isinstance(payload, dict) else payload, None, principal,
            [error])], "report")
        summary.conflict([], error.message_en, None, prop="dataValues",
                         objects={"code": error.code, "rejection_id": str(outcome.rejection_id)})
        return summary
    if len(payload["dataValues"]) > MAX_VALUES:
        summary.conflict([], f"at most {MAX_VALUES} data values in one import", None,
                         prop="dataValues")
        return summary
    # An operator's import from another system is not a unit's device sending too fast: the
    # per-unit rate limit (a burst of 20) would refuse a unit's month of days.
    door = dataclasses.replace(ctx, limiter=UnitRate(0, 0))
    pending = _groups(_rows(payload, mapping, summary), summary)
    while pending:  # again without the values refused: each pass has fewer, so it ends
        pending = await _submit(door, pending, principal, summary)
    summary.description = ("Rollcall: one report per org unit and day, through ingest's "
                           "checks; unchanged values are counted as ignored")
    return summary


async def _submit(ctx: IngestContext, groups: list[Group], principal: Principal,
                  summary: dhis2.Summary) -> list[Group]:
    """Sends the groups through the door and counts the outcome; answers the groups to send
    again without the values the door refused."""
    keys = []
    for g in groups:
        try:
            keys.append((g.unit, date.fromisoformat(g.day)))
        except ValueError:
            pass
    async with ctx.sessions() as session:
        stored = await ledger.latest_of(session, keys)
    firsts: list[tuple[Group, Incoming]] = []
    corrections: list[tuple[Group, Incoming]] = []
    latest_of: dict[int, object] = {}
    for g in groups:
        try:
            latest = stored.get((g.unit, date.fromisoformat(g.day)))
        except ValueError:
            latest = None
        item, _ = _report_of(g, principal, latest)
        latest_of[id(g)] = latest
        if item is None:
            summary.same(len(g.rows))
        elif latest is None:
            firsts.append((g, item))
        else:
            corrections.append((g, item))
    again: list[Group] = []
    for batch, use_case in ((firsts, submissions.submit_reports),
                            (corrections, submissions.correct_reports)):
        if not batch:
            continue
        outcomes = await use_case(ctx, [item for _, item in batch])
        for (group, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.status != "rejected":
                _count(summary, group, outcome, latest_of[id(group)])
                continue
            by_metric = _value_errors(group, outcome.errors)
            if by_metric is None:
                _conflict(summary, group.rows, outcome.errors, outcome)
                continue
            keep = [r for r in group.rows if r.metric not in by_metric]
            for row in group.rows:
                if row.metric in by_metric:
                    _conflict(summary, [row], by_metric[row.metric], outcome)
            if keep:
                again.append(Group(group.unit, group.day, keep))
    return again


# -- export ----------------------------------------------------------------------------------


async def unit_figures(ctx: IngestContext, node: str, start: date, end: date
                       ) -> list[dhis2.Figure]:
    """Each unit's latest report below `node` from `start` to `end`, value by value: stored by
    its reporter, created when its first revision arrived, last updated by its latest, its note
    as every value's comment. A zero report with no values has no value to send."""
    async with ctx.sessions() as session:
        rows = await ledger.latest_in_range(session, node, start, end)
    out: list[dhis2.Figure] = []
    for r in rows:
        for metric, value in sorted(ctx.catalogue.typed(r.values).items()):
            out.append(dhis2.Figure(r.unit_code, r.day, metric, value, r.reporter, r.created,
                                    r.submitted_at, r.note))
    return out

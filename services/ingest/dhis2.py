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
import uuid
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


@dataclass
class Early:
    """A value refused before it could become a report (not an object, a field missing, the
    same value twice): kept like any refusal, then reported as a conflict."""

    indexes: list[int]
    error: FieldError
    payload: object
    code: str | None = None
    obj: str | None = None
    value: str | None = None


_WHAT = {"dataElement": "data element", "period": "period", "orgUnit": "org unit"}


def _rows(payload: dict, mapping: dhis2.IdMapping, early: list[Early]) -> list[Row]:
    """The payload's data values as rows; those that cannot even be placed are conflicts."""
    values = payload.get("dataValues")
    # A data value set may name the period, org unit and combo once for all its values.
    period0, org_unit0 = payload.get("period"), payload.get("orgUnit")
    rows: list[Row] = []
    for i, dv in enumerate(values):  # type: ignore[arg-type]
        where = f"dataValues[{i}]"
        if not isinstance(dv, dict):
            early.append(Early([i], FieldError(where, "not_an_object", "每个数据值须为 JSON 对象",
                                               "a data value is a JSON object"), dv))
            continue
        if dv.get("deleted") is True:
            early.append(Early([i], FieldError(
                f"{where}.deleted", "not_deletable", "报告的每一版都会保留:数值只能更正,不能删除",
                "every revision of a report is kept: a value is corrected, never deleted"),
                dv, obj=str(dv.get("dataElement"))))
            continue
        element, period = _text(dv.get("dataElement")), _text(dv.get("period", period0))
        org_unit = _text(dv.get("orgUnit", org_unit0))
        missing = [(name, code) for name, found, code in (
            ("dataElement", element, dhis2.E_ELEMENT_MISSING), ("period", period, dhis2.E_PERIOD),
            ("orgUnit", org_unit, dhis2.E_ORG_UNIT_MISSING)) if found is None]
        if missing:
            name, code = missing[0]
            early.append(Early([i], FieldError(f"{where}.{name}", "missing", f"缺少 {name}",
                                               f"{name} is missing"), dv, code,
                               value=f"Value #{i} {_WHAT[name]} not defined in group or value"))
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


def _groups(rows: list[Row], payload: dict, early: list[Early]) -> list[Group]:
    """One group per unit and day; values that repeat a unit, day and metric are conflicts
    (DHIS2's E8128: which of them would win is not for the importer to guess)."""
    by_key: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        by_key[(row.unit, row.day, row.metric)].append(row)
    groups: dict[tuple[str, str], Group] = {}
    for (unit, day, metric), same in by_key.items():
        if len(same) > 1:
            indexes = [r.index for r in same]
            early.append(Early(indexes, FieldError(
                f"values.{metric}", "same_value", f"多个数据值指向同一项: {unit} {day} {metric}",
                f"several values for the same one: {unit} {day} {metric}"),
                [payload["dataValues"][i] for i in indexes], dhis2.E_SAME_VALUE,
                obj=same[0].element, value=f"Values #{indexes} all affect the same data value"))
            continue
        groups.setdefault((unit, day), Group(unit, day)).rows.append(same[0])
    return list(groups.values())


def _report_of(group: Group, principal: Principal, latest) -> Incoming | None:
    """The submission a group makes: a first report, a correction over `latest`, or None when
    nothing would change."""
    values = {r.metric: r.value for r in group.rows}
    reporter = next((r.stored_by for r in group.rows if r.stored_by), None) or "DHIS2"
    comments = list(dict.fromkeys(r.comment for r in group.rows if r.comment))
    note = " / ".join(comments) or None
    body: dict = {"unit": group.unit, "day": group.day, "reporter": reporter, "values": values}
    if latest is None:
        if note:
            body["note"] = note
        return submissions.read(SubmitReport, body, principal)
    merged = {**latest.values, **values}
    if merged == latest.values and (note is None or note == latest.note):
        return None
    body.update(values=merged, reason=REASON, revision=latest.revision + 1)
    if note or latest.note:
        body["note"] = note or latest.note
    return submissions.read(CorrectionCommand, body, principal)


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
        value = None
        if error.field == "day" and dhis2.day_of(rows[0].period) is None:
            value = (f"Period not valid: `{rows[0].period}`: Rollcall takes daily periods "
                     "(yyyyMMdd)")
        summary.conflict([r.index for r in rows], error, _error_code(error),
                         obj=_object_of(error, rows), value=value,
                         **({"rejection_id": str(outcome.rejection_id)}
                            if outcome.rejection_id else {}))


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
                        mapping: dhis2.IdMapping, fmt: dhis2.Format = "json"
                        ) -> dhis2.Summary:
    """A DHIS2 data value set (parsed JSON, or a CSV read by `dhis2.from_csv`) imported as
    reports through the door, answered with DHIS2's import summary; the import itself is kept
    with its summary (`ingest.dhis2_imports`, the summary's `reference`)."""
    summary = await _import(ctx, payload, principal, mapping)
    import_id = uuid.uuid4()
    summary.reference = str(import_id)
    values = payload.get("dataValues") if isinstance(payload, dict) else None
    async with ctx.sessions() as session, session.begin():
        await ledger.record_import(
            session, import_id=import_id, received_at=ctx.clock(),
            credential_id=principal.credential_id, actor=submissions.actor_of(principal),
            scope=principal.scope, format=fmt,
            data_values=len(values) if isinstance(values, list) else 0,
            status=summary.status, summary=summary.import_summary())
    return summary


async def _import(ctx: IngestContext, payload: object, principal: Principal,
                  mapping: dhis2.IdMapping) -> dhis2.Summary:
    summary = dhis2.Summary()
    if not isinstance(payload, dict) or not isinstance(payload.get("dataValues"), list):
        error = FieldError("dataValues", "not_a_data_value_set", "须为 DHIS2 数据值集",
                           "not a DHIS2 data value set: {\"dataValues\": [...]}")
        [outcome] = await submissions.keep_refused(ctx, [Incoming(
            {"body": payload} if not isinstance(payload, dict) else payload, None, principal,
            [error])], "report")
        summary.conflict([], error, rejection_id=str(outcome.rejection_id))
        return summary
    if len(payload["dataValues"]) > MAX_VALUES:
        error = FieldError("dataValues", "too_many", f"一次最多导入 {MAX_VALUES} 个数据值",
                           f"at most {MAX_VALUES} data values in one import")
        [outcome] = await submissions.keep_refused(ctx, [Incoming(
            {"dataValues": len(payload["dataValues"])}, None, principal, [error])], "report")
        summary.conflict([], error, rejection_id=str(outcome.rejection_id))
        return summary
    # An operator's import from another system is not a unit's device sending too fast: the
    # per-unit rate limit (a burst of 20) would refuse a unit's month of days.
    door = dataclasses.replace(ctx, limiter=UnitRate(0, 0))
    early: list[Early] = []
    pending = _groups(_rows(payload, mapping, early), payload, early)
    if early:
        kept = await submissions.keep_refused(ctx, [
            Incoming({"dhis2": e.payload}, None, principal, [e.error]) for e in early], "report")
        for e, outcome in zip(early, kept, strict=True):
            summary.conflict(e.indexes, e.error, e.code, obj=e.obj, value=e.value,
                             rejection_id=str(outcome.rejection_id))
    while pending:  # again without the values refused: each pass has fewer, so it ends
        pending = await _submit(door, pending, principal, summary)
    summary.description = ("Rollcall: one report per org unit and day, through ingest's "
                           "checks; unchanged values are counted as ignored")
    return summary


def _iso_day(day: str) -> date | None:
    """The day a group is for, when its period was a day (else the door refuses it)."""
    try:
        return date.fromisoformat(day) if len(day) == 10 and day[4] == "-" else None
    except ValueError:
        return None


async def _submit(ctx: IngestContext, groups: list[Group], principal: Principal,
                  summary: dhis2.Summary) -> list[Group]:
    """Sends the groups through the door and counts the outcome; answers the groups to send
    again without the values the door refused."""
    days = {id(g): _iso_day(g.day) for g in groups}
    keys = [(g.unit, day) for g in groups if (day := days[id(g)]) is not None]
    async with ctx.sessions() as session:
        stored = await ledger.latest_of(session, keys)
    firsts: list[tuple[Group, Incoming]] = []
    corrections: list[tuple[Group, Incoming]] = []
    latest_of: dict[tuple[str, str], object] = {}
    for g in groups:
        latest = stored.get((g.unit, days[id(g)]))
        latest_of[(g.unit, g.day)] = latest
        item = _report_of(g, principal, latest)
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
                _count(summary, group, outcome, latest_of[(group.unit, group.day)])
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

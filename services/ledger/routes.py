"""The ledger's HTTP edge for operators, within their subtree: register people (one, or a CSV
batch), record tests, releases and sign-offs, and read the register, the day's work, the missing
sign-offs and the headcounts. Names and contacts answer only to village and town operators; a
sector operator's token (行业部门) is refused (`territorial_only`): people under control are the
territorial line's (docs/architecture.md, "The sector line")."""

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import ValidationError

from services.ledger.schemas import (
    Correction,
    Registration,
    Release,
    SignOff,
    TeamMember,
    TestResult,
)
from services.ledger.service import LedgerContext
from shared.errors import FieldError
from shared.http_auth import Operator, Territorial, area
from shared.problems import from_pydantic
from shared.refusals import Refused
from shared.registry.importer import Kind, read_csv

router = APIRouter(prefix="/v1/control", tags=["ledger"], responses={
    code: {"description": text} for code, text in (
        (401, "missing, unknown or revoked token"),
        (403, "outside the token's area, or names asked for above the town"),
        (404, "no such person in the token's area"),
        (409, "the file is closed, or a correction contradicts what it holds"),
        (413, "the file is too large"), (422, "a field or a row at fault, each named"))})
# `day=0` is not a day: a day is written YYYY-MM-DD, nothing else is read as one.
DayQuery = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$",
                                       description="YYYY-MM-DD (default today)")]


def _day(ctx: LedgerContext, value: str | None) -> date:
    if value is None:
        return ctx.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Refused(422, [FieldError("day", "bad_date", "日期格式应为 YYYY-MM-DD",
                                       "a date is YYYY-MM-DD")]) from None
MAX_FILE_BYTES = 5_000_000
CSV = Kind("people", ("village", "name", "category", "regime", "start_day"),
           ("contact", "site", "team"))


def context(request: Request) -> LedgerContext:
    return request.app.state.ledger


Ctx = Annotated[LedgerContext, Depends(context)]


@router.get("/regimes")
async def regimes(ctx: Ctx, who: Operator) -> dict:
    """The configuration: categories, phase kinds, regimes with their phases and test days,
    outcomes and team roles."""
    r = ctx.regimes
    return {
        "categories": {c: {"name_zh": n.name_zh, "name_en": n.name_en}
                       for c, n in r.categories.items()},
        "phases": {k: {"name_zh": p.name_zh, "name_en": p.name_en, "place": p.place,
                       "metric": p.metric} for k, p in r.phase_kinds.items()},
        "regimes": {k: {"name_zh": g.name_zh, "name_en": g.name_en, "days": g.days,
                        "phases": [{"kind": p.kind, "days": p.days} for p in g.phases],
                        "test_days": list(g.test_days),
                        "tests_after_release": list(g.tests_after_release)}
                    for k, g in r.regimes.items()},
        "outcomes": {c: {"name_zh": n.name_zh, "name_en": n.name_en}
                     for c, n in r.outcomes.items()},
        "team": {"max_members": r.team_max, "roles": r.team_roles},
    }


@router.post("/people", status_code=201)
async def register(body: Registration, ctx: Ctx, who: Territorial) -> dict:
    """Take a person under control. Village and town operators only (they hold the name)."""
    [person_id] = await ctx.register(who, [body])
    return await ctx.person(who, person_id)


def _team(cell: str) -> list[dict]:
    """`village_cadre:李主任;doctor:王医生` → the team's members, in seat order."""
    out = []
    for part in filter(None, (p.strip() for p in cell.replace("；", ";").split(";"))):
        role, _, staff = part.partition(":")
        out.append({"role": role.strip(), "staff": staff.strip()})
    return out


@router.post("/people/import", status_code=201,
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {
                 "type": "string"}}}, "required": True}})
async def import_people(request: Request, ctx: Ctx, who: Territorial) -> dict:
    """A batch of people as CSV (UTF-8 or GB 18030), all or nothing: columns `village, name,
    contact, category, regime, site, start_day, team` (`team`: `role:staff;role:staff`). Any
    problem refuses the whole file, each named by line and column (`[3].regime`)."""
    data = await request.body()
    if len(data) > MAX_FILE_BYTES:
        raise Refused(413, [FieldError("file", "too_large", "文件太大", "the file is too large")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    records, problems = read_csv(text, CSV, "people.csv")
    errors = [FieldError(f"[{p.line}].{p.field}" if p.line else p.field or "file", p.code,
                         p.message_zh, p.message_en) for p in problems]
    items, lines = [], []
    for rec in records:
        fields = {k: v.strip() for k, v in rec.fields.items()}
        raw = {k: fields.get(k) or None for k in ("village", "name", "contact", "category",
                                                  "regime", "site", "start_day")}
        raw["team"] = _team(fields.get("team") or "")
        try:
            items.append(Registration(**{k: v for k, v in raw.items() if v is not None}))
            lines.append(rec.line)
        except ValidationError as exc:
            errors += [FieldError(f"[{rec.line}].{e.field}", e.code, e.message_zh,
                                  e.message_en) for e in from_pydantic(exc.errors())]
    if not records and not errors:
        errors.append(FieldError("file", "empty_file", "文件没有数据行", "the file has no rows"))
    if errors:
        raise Refused(422, errors)
    ids = await ctx.register(who, items, where=lambda i: f"[{lines[i]}]")
    return {"imported": len(ids), "person_ids": [str(i) for i in ids]}


@router.get("/people")
async def list_people(ctx: Ctx, who: Territorial, node: str | None = None,
                      status: Literal["active", "closed", "all"] = "active",
                      limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                      offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[dict]:
    """The register (一人一案) of a subtree: pseudonym, category, regime, phase and place
    today, dates, team; `name` and `contact` for village and town operators only."""
    return await ctx.people(who, area(who, node), status, limit, offset)


@router.get("/people/{person_id}")
async def get_person(person_id: uuid.UUID, ctx: Ctx, who: Territorial) -> dict:
    return await ctx.person(who, person_id)


@router.patch("/people/{person_id}")
async def correct(person_id: uuid.UUID, body: Correction, ctx: Ctx, who: Territorial) -> dict:
    """Correct a registration: the fields given (name, contact, category, regime, site,
    start_day) and why. Village and town operators only. A regime or start day is corrected
    only before any release (409 `released`) and not past a test or sign-off already recorded
    (409 `recorded_before_start`); it re-plans what is due. The village is not corrected
    (422 `not_correctable`). Kept: `GET …/corrections`."""
    changed = await ctx.correct(who, person_id, body)
    return {"changed": changed, "person": await ctx.person(who, person_id)}


@router.get("/people/{person_id}/corrections")
async def corrections(person_id: uuid.UUID, ctx: Ctx, who: Territorial) -> list[dict]:
    """The corrections of a file, oldest first: who, when, why, each field before and after
    (above the town a name or contact shows as changed, its values and reason withheld)."""
    return await ctx.corrections(who, person_id)


@router.post("/people/{person_id}/tests", status_code=201)
async def record_test(person_id: uuid.UUID, body: TestResult, ctx: Ctx, who: Territorial) -> dict:
    """A nucleic-acid test taken on `day` (its result, or `pending`)."""
    await ctx.record_test(who, person_id, body)
    return await ctx.person(who, person_id)


@router.post("/people/{person_id}/release")
async def release(person_id: uuid.UUID, body: Release, ctx: Ctx, who: Territorial) -> dict:
    """解除: the current phase ends on `day` and the next begins; the last closes the file
    (销账) with its outcome (`completed` by default)."""
    done = await ctx.release(who, person_id, body)
    return {**done, "person": await ctx.person(who, person_id)}


@router.post("/people/{person_id}/signoffs", status_code=201)
async def sign(person_id: uuid.UUID, body: SignOff, ctx: Ctx, who: Territorial) -> dict:
    """A 包保 team member's sign-off of a day, with its time (the first one counts)."""
    fresh = await ctx.sign(who, person_id, body)
    return {"recorded": fresh}


@router.post("/people/{person_id}/team")
async def set_team(person_id: uuid.UUID, body: Annotated[list[TeamMember], Body(max_length=5)],
                   ctx: Ctx, who: Territorial) -> dict:
    """The 包保 team anew (up to five named staff, in seat order): its members sign from
    today; sign-offs already given are kept."""
    await ctx.set_team(who, person_id, body)
    return await ctx.person(who, person_id)


@router.get("/due")
async def due(ctx: Ctx, who: Territorial, node: str | None = None, day: DayQuery = None
              ) -> dict:
    """A day's work (today by default): tests due, releases due or overdue, sign-offs."""
    return await ctx.due(who, area(who, node), _day(ctx, day))


@router.get("/signoffs/missing")
async def missing_signoffs(ctx: Ctx, who: Territorial, node: str | None = None,
                           day: DayQuery = None) -> dict:
    """包保 sign-offs missing on a day, listed per village and counted at every level."""
    return await ctx.missing_signoffs(who, area(who, node), _day(ctx, day))


@router.get("/stock")
async def stock(ctx: Ctx, who: Territorial, node: str | None = None, day: DayQuery = None
                ) -> dict:
    """The day's headcounts from the ledger at every level of the subtree."""
    return await ctx.stock(area(who, node), _day(ctx, day))

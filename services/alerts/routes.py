"""Alerts' HTTP edge for operators on duty: the open alerts of a node's subtree with the time
left on each clock, acknowledge, close with an outcome, and an alert's history. An operator's
bearer token is scoped to a node; they see and act only inside its subtree."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.alerts import lifecycle, queries
from services.alerts.schemas import Acknowledge, AlertView, Change, Close, Problem
from services.alerts.service import AlertsContext
from shared.auth import Principal, authenticate
from shared.errors import FieldError
from shared.hierarchy import level_of

router = APIRouter(prefix="/v1", tags=["alerts"])
PROBLEMS = {401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
            409: {"model": Problem}, 422: {"model": Problem}}


class Refused(Exception):
    def __init__(self, status: int, error: FieldError, headers: dict | None = None) -> None:
        self.status, self.error, self.headers = status, error, headers


async def on_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    problem = Problem(detail=exc.error.message_en, errors=[exc.error.as_dict()])
    return JSONResponse(problem.model_dump(), status_code=exc.status, headers=exc.headers)


def context(request: Request) -> AlertsContext:
    return request.app.state.alerts


Ctx = Annotated[AlertsContext, Depends(context)]
_bearer = HTTPBearer(auto_error=False)


async def operator(ctx: Ctx, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The operator behind `Authorization: Bearer <token>`. Kept small so that a shared
    dependency can replace it."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise Refused(401, FieldError("authorization", "missing_token", "缺少访问令牌",
                                      "a bearer token is required"), challenge)
    async with ctx.sessions() as session:
        principal = await authenticate(session, credentials.credentials)
    if principal is None:
        raise Refused(401, FieldError("authorization", "invalid_token", "访问令牌无效或已撤销",
                                      "the token is unknown or revoked"), challenge)
    if principal.kind != "operator":
        raise Refused(403, FieldError("authorization", "not_operator", "仅值班操作员可处理预警",
                                      "only operators handle alerts"))
    return principal


Operator = Annotated[Principal, Depends(operator)]


def _outside(node: str) -> Refused:
    return Refused(403, FieldError("node", "outside_subtree", f"无权访问 {node} 的预警",
                                   f"{node} is outside your area"))


def _not_found(alert_id: uuid.UUID) -> Refused:
    return Refused(404, FieldError("alert_id", "unknown_alert", "预警不存在",
                                   f"no alert {alert_id}"))


@router.get("/alerts", response_model=list[AlertView], responses=PROBLEMS)
async def list_alerts(ctx: Ctx, who: Operator, node: str | None = None,
                      status: Literal["active", "open", "acknowledged", "closed"] = "active",
                      kind: Literal["case", "outbreak", "missing_report"] | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertView]:
    """The alerts of a node's subtree (the operator's own node by default): by default those
    not closed, open ones first, nearest deadline first, each with the seconds left."""
    node = node or who.scope
    try:
        level_of(node)
    except ValueError as exc:
        raise Refused(422, FieldError("node", "bad_node", f"区划代码无效: {node}",
                                      str(exc))) from None
    if not who.may_see(node):
        raise _outside(node)
    async with ctx.sessions() as session:
        rows = await queries.subtree(session, node, status, kind, limit)
        return await queries.views(session, rows, ctx.clock())


@router.get("/alerts/{alert_id}", response_model=AlertView, responses=PROBLEMS)
async def get_alert(alert_id: uuid.UUID, ctx: Ctx, who: Operator) -> AlertView:
    async with ctx.sessions() as session:
        row = await queries.one(session, alert_id)
        if row is None:
            raise _not_found(alert_id)
        if not who.may_see(row.node):
            raise _outside(row.node)
        return (await queries.views(session, [row], ctx.clock()))[0]


@router.get("/alerts/{alert_id}/history", response_model=list[Change], responses=PROBLEMS)
async def alert_history(alert_id: uuid.UUID, ctx: Ctx, who: Operator) -> list[Change]:
    """Every change of the alert: opened, warned, escalated, acknowledged, closed; who, when,
    why."""
    async with ctx.sessions() as session:
        row = await queries.one(session, alert_id)
        if row is None:
            raise _not_found(alert_id)
        if not who.may_see(row.node):
            raise _outside(row.node)
        return [Change(seq=t.seq, change=t.change, at=t.at, actor=t.actor, reason=t.reason,
                       details=t.details) for t in await lifecycle.history(session, alert_id)]


async def _act(ctx: AlertsContext, alert_id: uuid.UUID, action) -> AlertView:
    now = ctx.clock()
    try:
        async with ctx.sessions() as session, session.begin():
            row = await action(session, now)
            view = (await queries.views(session, [row], now))[0]
    except lifecycle.AlertNotFound:
        raise _not_found(alert_id) from None
    except lifecycle.OutsideSubtree as exc:
        raise _outside(str(exc)) from None
    except lifecycle.WrongState as exc:
        raise Refused(409, FieldError("status", f"already_{exc.status}",
                                      f"预警当前状态为 {exc.status},不能执行此操作",
                                      f"the alert is {exc.status}")) from None
    ctx.relay.wake()
    return view


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertView, responses=PROBLEMS)
async def acknowledge(alert_id: uuid.UUID, ctx: Ctx, who: Operator,
                      body: Acknowledge | None = None) -> AlertView:
    """Take the alert: its clock stops, and nothing escalates further."""
    reason = body.reason if body else None
    return await _act(ctx, alert_id, lambda session, now: lifecycle.acknowledge(
        session, alert_id, who, reason, now, ctx.rules))


@router.post("/alerts/{alert_id}/close", response_model=AlertView, responses=PROBLEMS)
async def close(alert_id: uuid.UUID, body: Close, ctx: Ctx, who: Operator) -> AlertView:
    """Record what was done and close the alert (an open one may be closed directly)."""
    return await _act(ctx, alert_id, lambda session, now: lifecycle.close(
        session, alert_id, who, body.outcome, body.note, now, ctx.rules))

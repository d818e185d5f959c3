"""Aggregate's HTTP edge: rollups with drill-down."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request

from services.aggregate import queries
from services.aggregate.service import AggregateContext
from shared.hierarchy import level_of

router = APIRouter(prefix="/v1", tags=["rollups"])


def context(request: Request) -> AggregateContext:
    return request.app.state.aggregate


Ctx = Annotated[AggregateContext, Depends(context)]


def _node(node: str) -> str:
    try:
        level_of(node)
    except ValueError as exc:
        raise HTTPException(422, {"field": "node", "code": "bad_node", "message_en": str(exc),
                                  "message_zh": f"区划代码无效: {node}"}) from None
    return node


@router.get("/rollups/{node}")
async def rollup(node: str, ctx: Ctx, day: date | None = None) -> dict:
    """A node's totals, ratios and completeness for a day (today by default)."""
    day = day or ctx.today()
    async with ctx.sessions() as session:
        return await queries.node_view(session, _node(node), day, ctx.catalogue)


@router.get("/rollups/{node}/children")
async def rollup_children(node: str, ctx: Ctx, day: date | None = None) -> list[dict]:
    """Drill-down: each child node's totals and completeness for a day."""
    day = day or ctx.today()
    async with ctx.sessions() as session:
        return [await queries.node_view(session, code, day, ctx.catalogue, with_lists=False)
                for code, _ in await queries.children(session, _node(node))]

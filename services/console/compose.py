"""The summary document composed from the services that hold its parts: the figures from
aggregate, the alerts from alerts, the units' notes from ingest, each asked with a bearer token
so that every service applies its own checks. The pages, the files and the scheduled editions
all read it from here."""

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from services.console import reference, summary
from services.console.service import ConsoleContext
from services.console.upstream import Answer


def must(answer: Answer) -> Any:
    if not answer.ok:
        raise Passed(answer)
    return answer.body


class Passed(Exception):
    """Another service refused: its answer goes back to the page as it is."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer


async def _day_alerts(ctx: ConsoleContext, token: str, node: str, day: date) -> list[dict]:
    """Every alert of the day below `node`, page after page: a county may hold more than a
    page of them (one missing-report alert per village and cutoff)."""
    alerts: list[dict] = []
    for status in ("active", "closed"):
        cursor = None
        while True:
            answer = await ctx.upstream.get("alerts", "/v1/alerts", token, node=node,
                                            status=status, day=day, limit=1000, cursor=cursor)
            alerts += must(answer)
            if (cursor := answer.next_cursor) is None:
                break
    return alerts


MAX_LISTED_DAYS = 31  # a longer range lists no alerts or notes: each day's summary has them


@dataclass(frozen=True, slots=True)
class Span:
    """What a summary covers, as asked: one day, the week or month of a day, or a range."""

    day: date | None = None
    start: date | None = None
    end: date | None = None
    period: Literal["day", "week", "month"] | None = None

    def params(self) -> dict:
        if self.period is not None:
            return {"period": self.period, "day": self.day}
        if self.start is not None or self.end is not None:
            return {"start": self.start, "end": self.end}
        return {"day": self.day}


async def summary_of(ctx: ConsoleContext, token: str, node: str, span: Span) -> dict:
    """The summary document of a node (inside the token's area: the services check it) over
    a span, as the page, the files and the editions show it."""
    if span.period is None and span.start is None and span.end is None:
        span = Span(day=span.day or ctx.today())
    view = must(await ctx.upstream.get("aggregate", f"/v1/rollups/{node}", token,
                                        limit=100_000, **span.params()))
    first = date.fromisoformat(view.get("start") or view["day"])
    last = date.fromisoformat(view.get("end") or view["day"])
    listed = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if len(listed) > MAX_LISTED_DAYS:
        listed = []
    children, alerts_by_day, notes_by_day = await asyncio.gather(
        ctx.upstream.get("aggregate", f"/v1/rollups/{node}/children", token,
                         **span.params()),
        asyncio.gather(*(_day_alerts(ctx, token, node, d) for d in listed)),
        asyncio.gather(*(ctx.upstream.get("ingest", "/v1/notes", token, node=node, day=d)
                         for d in listed)))
    day_alerts = [a for found in alerts_by_day for a in found]
    day_alerts.sort(key=lambda a: a.get("started_at") or "")
    notes = [n for answer in notes_by_day for n in must(answer)]
    async with ctx.sessions() as session:
        await reference.name_alerts(session, day_alerts)
        await reference.name_alerts(session, notes)  # names units and nodes alike
    generated = ctx.clock().astimezone(ctx.settings.zone).strftime("%Y-%m-%d %H:%M")
    return summary.build(view, must(children), day_alerts, ctx.catalogue, generated,
                         notes, span.period)



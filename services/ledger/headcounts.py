"""Headcounts from the ledger: each village's figures of a day (people in each kind of phase,
and, once the day is over, those whose 包保 team did not all sign) are submitted to ingest as
the daily report of the village's ledger unit (`<village>-GK`, type `control_ledger`), first
as a report and then as corrections whenever a file changes them. From there they take the path
of every report: stored as revisions, rolled up at every level by aggregate, checked by
`rollcall reconcile` (docs/architecture.md, "Headcounts from the ledger").

A change marks its village's days from that day on (`stock_dirty`); the publisher recomputes
those days, submits what differs from what it last sent (`stock_sent`) and forgets the mark once
all went through. A refusal (ingest has not yet loaded a new ledger unit) leaves the mark for
the next round: nothing is lost, nothing is sent twice under two ids."""

import asyncio
import contextlib
import logging
import uuid
from datetime import date, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.ledger.models import stock_dirty, stock_sent
from services.ledger.service import LedgerContext
from services.ledger.store import unit_of
from shared import auth

log = logging.getLogger(__name__)
REPORTER = "管控台账(一人一案)"
HOLDER = "ledger service (一人一案)"
IDS = uuid.UUID("6f1f8a52-6c2e-4b7e-9a51-2a8f3c1d0e77")  # the namespace of its report ids


class HeadcountPublisher:
    def __init__(self, ctx: LedgerContext, client: httpx.AsyncClient, interval_s: float,
                 token: str | None = None) -> None:
        self._ctx, self._client, self._interval_s = ctx, client, interval_s
        self._fixed_token = token
        self._tokens: dict[str, tuple[str, uuid.UUID]] = {}  # province → own credential
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def _token(self, village: str) -> str:
        if self._fixed_token:
            return self._fixed_token
        province = village[:2]
        if province not in self._tokens:
            async with self._ctx.sessions() as session, session.begin():
                self._tokens[province] = await auth.issue(session, "operator", province, HOLDER,
                                                          self._ctx.clock())
        return self._tokens[province][0]

    async def revoke(self) -> None:
        """The credentials this process issued itself end with it."""
        if not self._tokens:
            return
        async with self._ctx.sessions() as session, session.begin():
            for _, credential in self._tokens.values():
                await auth.revoke(session, credential, self._ctx.clock())
        self._tokens.clear()

    async def figures(self, village: str, day: date) -> dict[str, int]:
        # A day's missing sign-offs are final once it is over; until then, none is missing.
        stock = await self._ctx.stock(village, day)
        return {m: stock["figures"].get(village, {}).get(m, 0) for m in stock["metrics"]}

    async def publish_once(self) -> int:
        """Submit what changed; returns how many reports went through."""
        ctx, today, sent = self._ctx, self._ctx.today(), 0
        async with ctx.sessions() as session:
            dirty = (await session.execute(select(stock_dirty))).all()
        for village, since in dirty:
            complete = True
            async with ctx.sessions() as session:
                before = {d: (f, n) for d, f, n in (await session.execute(
                    select(stock_sent.c.day, stock_sent.c.figures, stock_sent.c.revision)
                    .where(stock_sent.c.village == village, stock_sent.c.day >= since))).all()}
            day = since
            while day <= today:
                values = await self.figures(village, day)
                last, n = before.get(day, (None, 0))
                if last != values:
                    if not await self._submit(village, day, values, n + 1):
                        complete = False
                        break
                    await self._record(village, day, values, n + 1, ctx.clock())
                    sent += 1
                day += timedelta(days=1)
            if complete:
                async with ctx.sessions() as session, session.begin():
                    await session.execute(stock_dirty.delete().where(
                        stock_dirty.c.village == village, stock_dirty.c.since == since))
        return sent

    async def _record(self, village: str, day: date, values: dict, n: int,
                      now: datetime) -> None:
        async with self._ctx.sessions() as session, session.begin():
            stmt = pg_insert(stock_sent).values(village=village, day=day, figures=values,
                                                revision=n, sent_at=now)
            await session.execute(stmt.on_conflict_do_update(
                index_elements=["village", "day"],
                set_={"figures": values, "revision": n, "sent_at": now}))

    async def _submit(self, village: str, day: date, values: dict, n: int) -> bool:
        unit = unit_of(village)
        headers = {"Authorization": f"Bearer {await self._token(village)}"}
        report_id = str(uuid.uuid5(IDS, f"{unit}:{day.isoformat()}:{n}"))
        try:
            if n == 1:
                answer = await self._client.post("/v1/reports", headers=headers, json={
                    "unit": unit, "day": day.isoformat(), "reporter": REPORTER,
                    "values": values, "report_id": report_id})
                if answer.status_code in (200, 201):
                    return True
                if answer.status_code != 409:
                    return self._refused(unit, day, answer)
            answer = await self._client.post(
                f"/v1/reports/{unit}/{day.isoformat()}/corrections", headers=headers,
                json={"values": values, "reporter": REPORTER, "report_id": report_id,
                      "reason": "台账变更 the ledger's files changed"})
        except httpx.HTTPError as exc:
            log.warning("ledger headcounts: ingest does not answer (%r); retrying", exc)
            return False
        return answer.status_code in (200, 201) or self._refused(unit, day, answer)

    @staticmethod
    def _refused(unit: str, day: date, answer: httpx.Response) -> bool:
        # Figures only: nothing of a person is in a report, nor in this line.
        log.warning("ledger headcounts: %s %s refused (%s): %s; retrying", unit, day,
                    answer.status_code, answer.text[:300])
        return False

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.publish_once()
            except Exception:
                log.exception("ledger headcounts: a round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
        with contextlib.suppress(Exception):
            await self.revoke()

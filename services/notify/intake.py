"""Taking alert events in: who must be told of each change, recorded as deliveries to make in
the same transaction that records the event as applied. Nothing is sent here: the worker sends
after commit (the outbox pattern), so a redelivered event, a restart or a second replica records
each delivery once (see docs/architecture.md, notify)."""

import logging
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import deliveries, messages, store
from services.notify.metrics import DELIVERIES
from services.notify.policy import Policy
from shared.contracts import AlertEvent

log = logging.getLogger(__name__)


async def take_alert_events(session: AsyncSession, events: Sequence[AlertEvent], policy: Policy,
                            channels: tuple[str, ...], zone: ZoneInfo, now: datetime) -> int:
    """Records the deliveries each new alert change makes; the number recorded. The people are
    those of the roster of the node responsible now, for the local day and hour of the change
    (a roster edited since takes effect for the next change)."""
    fresh = await store.fresh(session, [(e.msg_id, e.alert_id, e.node) for e in events], now)
    added = 0
    for event in events:
        if event.msg_id not in fresh:
            continue
        fresh.discard(event.msg_id)  # the same event twice in one batch: once
        if not policy.roles_for(event.kind, event.change):
            continue
        day = event.at.astimezone(zone).date()
        directory = await store.directory(session, event.responsible, event.unit, day)
        planned = deliveries.plan(event, directory, policy, channels, now, zone)
        codes = [event.node, event.responsible, *([event.unit] if event.unit else [])]
        title, body = messages.render(event, await store.names(session, codes), zone)
        added += await store.add_deliveries(session, event.msg_id, event.alert_id, event.change,
                                            title, body, planned, now)
        unreached = [p for p in planned if p.failed]
        for failed in unreached:
            DELIVERIES.labels(failed.channel, "failed").inc()
        if unreached:  # codes and reasons only: staff details stay out of the logs
            log.warning("alert change without a reachable recipient",
                        extra={"alert_id": str(event.alert_id), "change": event.change,
                               "reasons": sorted({p.failed for p in unreached})})
    return added

"""Taking alert events in: who must be told of each change, recorded as deliveries to make in
the same transaction that records the event as applied; and scheduled editions: who must hear
that one is out. Nothing is sent here: the worker sends
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
from shared.contracts import AlertEvent, EditionPublished
from shared.hierarchy import CODE_LENGTHS

log = logging.getLogger(__name__)


async def take_alert_events(session: AsyncSession, events: Sequence[AlertEvent], policy: Policy,
                            channels: tuple[str, ...], zone: ZoneInfo, now: datetime) -> int:
    """Records the deliveries each new alert change makes; the number recorded (a digest's
    entries count as one each). The people are those of the roster of the node responsible
    now, for the local day and hour of the change (a roster edited since takes effect for the
    next change)."""
    fresh = await store.fresh(session, [(e.msg_id, e.alert_id, e.node) for e in events], now)
    added = 0
    for event in events:
        if event.msg_id not in fresh:
            continue
        fresh.discard(event.msg_id)  # the same event twice in one batch: once
        if event.change in policy.cancel_when:
            await store.cancel_pending(session, event.alert_id, f"not sent: alert {event.change}")
        if (event.kind, event.change) == ("missing_report", "opened") and policy.digest_levels:
            added += await _add_to_digests(session, event, policy, channels, zone, now)
            continue
        roles = policy.roles_for(event.kind, event.change)
        if not roles:
            continue
        local = event.at.astimezone(zone)
        directory = await store.directory(session, event.responsible, event.unit, local.date())
        planned = deliveries.plan(roles, directory, policy, channels,
                                  local.time().replace(tzinfo=None), now, zone)
        codes = [event.node, event.responsible, *([event.unit] if event.unit else [])]
        title, body = messages.render(event, await store.names(session, codes), zone)
        added += await store.add_deliveries(session, event.msg_id, event.change, event.alert_id,
                                            title, body, planned, now)
        _alert_unreached(event, planned)
    return added


async def _add_to_digests(session: AsyncSession, event: AlertEvent, policy: Policy,
                          channels: tuple[str, ...], zone: ZoneInfo, now: datetime) -> int:
    """漏报: a missing-report alert joins the digest of its cutoff for each level the policy
    names (the village's own, its town's...), told to that node's person on duty once the
    digest has collected the cutoff's alerts."""
    details = getattr(event, "details", {})
    day, cutoff = str(details.get("day", "")), str(details.get("cutoff", ""))
    local = event.at.astimezone(zone)
    nodes = [event.node[:CODE_LENGTHS[level]] for level in policy.digest_levels
             if len(event.node) >= CODE_LENGTHS[level]]
    named = await store.names(session, [event.node, *nodes])
    item = {"alert_id": str(event.alert_id), "node": event.node,
            "node_name": named.get(event.node, event.node),
            "units": [str(u.get("name") or u.get("unit")) for u in details.get("units", [])]}
    added = 0
    for node in nodes:
        directory = await store.directory(session, node, None, local.date())
        planned = deliveries.plan((policy.digest_role,), directory, policy, channels,
                                  local.time().replace(tzinfo=None), now, zone,
                                  hold=policy.digest_wait)
        digests = await store.add_to_digest(session, f"digest:missing:{node}:{day}:{cutoff}",
                                            event.alert_id, item, planned, now)
        for delivery_id, items in digests:
            title, body = messages.render_digest(named.get(node, node), day, cutoff, items)
            await store.set_text(session, delivery_id, title, body)
        added += len(digests)
        _alert_unreached(event, planned)
    return added


async def take_editions(session: AsyncSession, events: Sequence[EditionPublished],
                        policy: Policy, channels: tuple[str, ...], zone: ZoneInfo,
                        now: datetime, console_url: str | None) -> int:
    """Records the deliveries that tell each edition's node it is out; the number recorded.
    The people are those of the node's roster at the local day and hour the edition was made.
    An edition with deliveries recorded already is not taken again: a redelivery tells nobody,
    even after the roster changed. Its message id is the deliveries' key, unique with the
    person and channel whatever comes at once."""
    if not policy.edition_roles:
        return 0
    added = 0
    taken = await store.keys_recorded(session, [e.msg_id for e in events])
    for event in {e.msg_id: e for e in events if e.msg_id not in taken}.values():
        local = event.produced_at.astimezone(zone)
        directory = await store.directory(session, event.node, None, local.date())
        planned = deliveries.plan(policy.edition_roles, directory, policy, channels,
                                  local.time().replace(tzinfo=None), now, zone)
        name = event.name or (await store.names(session, [event.node])).get(event.node,
                                                                            event.node)
        title, body = messages.render_edition(event, name, console_url)
        made = await store.add_deliveries(session, event.msg_id, "edition", None, title, body,
                                          planned, now)
        if made:  # nothing made: taken at the same time elsewhere, and counted there
            _unreached(planned, "edition without a reachable recipient",
                       {"edition": event.msg_id})
        added += made
    return added


def _unreached(planned: list[deliveries.Planned], what: str, about: dict[str, str]) -> None:
    unreached = [p for p in planned if p.failed]
    for failed in unreached:
        DELIVERIES.labels(failed.channel, "failed").inc()
    if unreached:  # codes and reasons only: staff details stay out of the logs
        log.info(what, extra={**about, "reasons": sorted({p.failed or "" for p in unreached})})


def _alert_unreached(event: AlertEvent, planned: list[deliveries.Planned]) -> None:
    _unreached(planned, "alert change without a reachable recipient",
               {"alert_id": str(event.alert_id), "change": event.change})

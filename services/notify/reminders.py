"""Reminders before a cutoff: a unit that has not reported (neither a report nor a zero report)
is reminded, through its reporting officer, a while before its cutoff (30 minutes by default:
a village committee reporting by 14:00 hears at 13:30). Notify learns which units reported from
the accepted reports it consumes; which units are expected and their cutoffs come from the
registry, and a unit exempt that day by a calendar (免报) is not expected, so not reminded: the
same rule that keeps it off the missing-report alerts (docs/architecture.md, "Cutoffs,
completeness, timeliness")."""

import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import deliveries, messages, store
from services.notify.policy import Policy
from services.notify.staff import Directory
from shared.contracts import ReportAccepted
from shared.deadlines import DayState, cutoff_instant, day_state
from shared.registry.calendar import Exemption, exempt_by, in_force
from shared.registry.reference import Reference

log = logging.getLogger(__name__)


def due_cutoffs(cutoffs: Iterable[time], now: datetime, before: timedelta, zone: ZoneInfo
                ) -> list[tuple[date, time]]:
    """The (day, cutoff) whose reminder time has come and whose cutoff has not passed: a
    reminder after the cutoff would come too late to help, so a service down at reminder time
    skips it."""
    day = now.astimezone(zone).date()
    return [(day, cutoff) for cutoff in sorted(set(cutoffs))
            if cutoff_instant(day, cutoff, zone) - before <= now
            < cutoff_instant(day, cutoff, zone)]


def expected(reference: Reference, day: date, cutoff: time) -> dict[str, str]:
    """The units that must report by `cutoff` on `day`, and the node each is placed at."""
    return {u.code: node for u in reference.units.values()
            if u.cutoff == cutoff and u.active_on(day) and (node := u.node_on(day))}


def pending(reference: Reference, exemptions: Iterable[Exemption], reported: set[str],
            units: dict[str, str], day: date, cutoff: time, now: datetime, zone: ZoneInfo
            ) -> list[str]:
    """Of the units expected by `cutoff` (`units`, each with its node), those still pending at
    `now`: not reported and not exempt that day."""
    exemptions = list(exemptions)
    return sorted(unit for unit, node in units.items() if day_state(
        day, cutoff, reported=unit in reported, now=now, zone=zone,
        exempt=exempt_by(exemptions, unit, node, reference.units[unit].unit_type, day)
        is not None) is DayState.PENDING)


async def record_reports(session: AsyncSession, events: Iterable[ReportAccepted]) -> None:
    """A unit-day holding a report (any revision, a zero report too) is not reminded."""
    await store.record_reported(session, {(e.unit, e.day) for e in events})


def cutoffs_of(reference: Reference) -> frozenset[time]:
    return frozenset(u.cutoff for u in reference.units.values())


async def remind(session: AsyncSession, reference: Reference, policy: Policy,
                 channels: tuple[str, ...], zone: ZoneInfo, now: datetime,
                 due: Iterable[tuple[date, time]] | None = None) -> int:
    """Make the reminders whose time has come (`due`, or all of them), each cutoff of a day
    once (whichever replica claims it); the number of deliveries recorded."""
    if policy.reminder_before is None:
        return 0
    if due is None:
        due = due_cutoffs(cutoffs_of(reference), now, policy.reminder_before, zone)
    added = 0
    exemptions = None
    for day, cutoff in due:
        if not await store.claim_reminder_run(session, day, cutoff, now):
            continue
        units = expected(reference, day, cutoff)
        if exemptions is None:
            exemptions = await in_force(session)
        waiting = pending(reference, exemptions, await store.reported_on(session, day, units),
                          units, day, cutoff, now, zone)
        contacts = await store.contacts_of(session, waiting)
        people = await store.people(session, {p for c in contacts.values() for p in c.values()})
        at = now.astimezone(zone).time().replace(tzinfo=None)
        made = 0
        for unit in waiting:
            directory = Directory((), {}, contacts.get(unit, {}), people)
            planned = [p for p in deliveries.plan(policy.reminder_roles, directory, policy,
                                                  channels, at, now, zone)
                       if not p.failed]  # a unit with no officer on record is not a failure
            title, body = messages.render_reminder(reference.units[unit].name, day, cutoff)
            made += await store.add_deliveries(
                session, f"reminder:{unit}:{day.isoformat()}:{cutoff:%H%M}", "reminder", None,
                title, body, planned, now)
        await store.finish_reminder_run(session, day, cutoff, made)
        log.info("reminders made", extra={"day": day.isoformat(), "cutoff": f"{cutoff:%H:%M}",
                                          "pending": len(waiting), "deliveries": made})
        added += made
    return added

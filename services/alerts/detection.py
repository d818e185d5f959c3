"""What opens and resolves alerts: fever and flu-like cases, outbreaks counted from cases and
daily reports, units missing at their cutoff, and supplies below a stock level. Each function
works in the caller's transaction, which also records what was applied, so redelivery and
replays change nothing."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import clock, flags, machine, repository
from services.alerts.machine import AlertState, NewAlert
from services.alerts.models import AlertRow, CountdownRow, CutoffRunRow, MissingUnitRow
from services.alerts.queries import is_past_sql
from shared import deadlines
from shared.catalogue import Catalogue
from shared.contracts import (
    CalendarChanged,
    CaseReported,
    CountdownChanged,
    CountdownDue,
    ReportAccepted,
    SignoffChanged,
)
from shared.hierarchy import CODE_LENGTHS, Level, level_of
from shared.registry import calendar
from shared.registry.reference import Reference
from shared.rules import Rules
from shared.signoff_rules import SignoffRules

# The events of a batch not applied before; the record commits with their effect.
RECORD_FRESH = text("""
    INSERT INTO alerts.applied_events (msg_id, applied_at)
    SELECT m, :now FROM unnest(CAST(:ids AS text[])) AS t(m)
    ON CONFLICT DO NOTHING RETURNING msg_id
""")
# A unit's flu-like counts are read and the threshold checked under one lock per unit, so that
# two replicas adding cases of the same unit cannot both miss the crossing. Sorted: no deadlock.
LOCK_UNITS = text("""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended('alerts-outbreak:' || u, 0) AS k
        FROM unnest(CAST(:units AS text[])) AS t(u)) keys
    ORDER BY k
""")
ADD_CASE_ILI = text("""
    INSERT INTO alerts.unit_days AS ud (unit, day, case_ili)
    SELECT u, d, n FROM unnest(CAST(:units AS text[]), CAST(:days AS date[]),
                               CAST(:counts AS int[])) AS t(u, d, n)
    ON CONFLICT (unit, day) DO UPDATE SET case_ili = ud.case_ili + excluded.case_ili
""")
# Newer revisions only: an older revision arriving after a newer one changes nothing.
UPSERT_REPORTS = text("""
    INSERT INTO alerts.unit_days AS ud (unit, day, report_revision, report_ili, case_ili,
                                        report_zero, report_values)
    SELECT u, d, r, i, 0, z, CAST(v AS jsonb)
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[]), CAST(:revisions AS int[]),
                CAST(:ili AS float8[]), CAST(:zero AS boolean[]), CAST(:values AS text[]))
         AS t(u, d, r, i, z, v)
    ON CONFLICT (unit, day) DO UPDATE
        SET report_revision = excluded.report_revision, report_ili = excluded.report_ili,
            report_zero = excluded.report_zero, report_values = excluded.report_values
        WHERE ud.report_revision IS NULL OR ud.report_revision < excluded.report_revision
    RETURNING unit, day, report_ili, cases
""")
WINDOWS = text("""
    SELECT unit, day, case_ili, report_ili FROM alerts.unit_days
    WHERE unit = ANY(CAST(:units AS text[])) AND day BETWEEN :first AND :last
""")
# Per unit: when its last outbreak alert was closed, and the latest day of one still open.
OUTBREAKS_OF = text("""
    SELECT unit, max(closed_at) AS last_closed,
           max(day) FILTER (WHERE status <> 'closed') AS open_day
    FROM alerts.alerts WHERE kind = 'outbreak' AND unit = ANY(CAST(:units AS text[]))
    GROUP BY unit
""")
# Probed unit by unit (a lateral subquery that OFFSET 0 keeps apart): joined from outside,
# PostgreSQL hashes every open missing unit of the province for a batch of thousands of keys,
# five times slower, and more so the more units are missing.
MISSING_OF = text("""
    SELECT DISTINCT m.alert_id
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
    CROSS JOIN LATERAL (
        SELECT mu.alert_id FROM alerts.missing_units mu
        WHERE mu.unit = t.u AND mu.day = t.d AND mu.reported_at IS NULL
          AND mu.exempted_by IS NULL OFFSET 0) AS m
""")
MARK_REPORTED = text("""
    UPDATE alerts.missing_units mu SET reported_at = :now
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
    WHERE mu.unit = t.u AND mu.day = t.d AND mu.reported_at IS NULL AND mu.exempted_by IS NULL
      AND mu.alert_id = ANY(CAST(:alerts AS uuid[]))
""")
STILL_MISSING = text("""
    SELECT DISTINCT alert_id FROM alerts.missing_units
    WHERE alert_id = ANY(CAST(:alerts AS uuid[])) AND reported_at IS NULL
      AND exempted_by IS NULL
""")
# The units still missing on open missing-report alerts of a span of days, where they sit (the
# alert's node: the unit's placement that day) and their type, for the calendars to judge.
STILL_MISSING_ON = text("""
    SELECT mu.alert_id, mu.unit, mu.day, a.node, u.unit_type
    FROM alerts.alerts a
    JOIN alerts.missing_units mu ON mu.alert_id = a.alert_id
    JOIN registry.units u ON u.code = mu.unit
    WHERE a.kind = 'missing_report' AND a.status <> 'closed'
      AND a.day >= :first AND (CAST(:last AS date) IS NULL OR a.day <= :last)
      AND mu.reported_at IS NULL AND mu.exempted_by IS NULL
""")
MARK_EXEMPTED = text("""
    UPDATE alerts.missing_units mu SET exempted_by = t.x, exempted_at = :now
    FROM unnest(CAST(:alerts AS uuid[]), CAST(:units AS text[]), CAST(:exemptions AS bigint[]))
         AS t(a, u, x)
    WHERE mu.alert_id = t.a AND mu.unit = t.u AND mu.reported_at IS NULL
      AND mu.exempted_by IS NULL
    RETURNING mu.alert_id, mu.unit, mu.exempted_by
""")
# A unit's figure on a supply alert: a newer revision replaces it; a unit that is not below is
# only recorded on an alert that already lists it.
UPSERT_STOCK_UNITS = text("""
    INSERT INTO alerts.stock_units AS su (alert_id, unit, revision, value, below)
    SELECT a, u, r, v, b FROM unnest(CAST(:alerts AS uuid[]), CAST(:units AS text[]),
                                     CAST(:revisions AS int[]), CAST(:values AS float8[]),
                                     CAST(:below AS boolean[])) AS t(a, u, r, v, b)
    WHERE b OR EXISTS (SELECT 1 FROM alerts.stock_units s WHERE s.alert_id = a AND s.unit = u)
    ON CONFLICT (alert_id, unit) DO UPDATE
        SET revision = excluded.revision, value = excluded.value, below = excluded.below
        WHERE su.revision < excluded.revision
""")
STILL_LOW = text("""
    SELECT DISTINCT alert_id FROM alerts.stock_units
    WHERE alert_id = ANY(CAST(:alerts AS uuid[])) AND below
""")
REPORTED_ON = text("""
    SELECT unit FROM alerts.unit_days
    WHERE day = :day AND report_revision IS NOT NULL AND unit = ANY(CAST(:units AS text[]))
""")
# A node-day's confirmation as signoff last said it: a newer audit entry wins, so a redelivered
# or late "confirmed" cannot undo a reopening that came after it.
UPSERT_CONFIRMATIONS = text("""
    INSERT INTO alerts.confirmations AS c (node, day, confirmed, entry)
    SELECT n, d, c, e FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]),
                                  CAST(:confirmed AS boolean[]), CAST(:entries AS bigint[]))
                       AS t(n, d, c, e)
    ON CONFLICT (node, day) DO UPDATE SET confirmed = excluded.confirmed, entry = excluded.entry
        WHERE c.entry < excluded.entry
""")
CONFIRMED_NOW = text("""
    SELECT node, day FROM alerts.confirmations
    WHERE confirmed AND (node, day) IN (SELECT * FROM unnest(CAST(:nodes AS text[]),
                                                             CAST(:days AS date[])))
""")
CONFIRMED_ON = text("""
    SELECT node FROM alerts.confirmations
    WHERE day = :day AND confirmed AND node = ANY(CAST(:nodes AS text[]))
""")
# Node-days (of a reopened confirmation) whose level's time has already been checked.
CHECKED_ALREADY = text("""
    SELECT t.n, t.d FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]),
                                CAST(:levels AS smallint[])) AS t(n, d, l)
    JOIN alerts.confirmation_runs r ON r.day = t.d AND r.level = t.l
""")
CLAIM_CONFIRMATION_RUN = text("""
    INSERT INTO alerts.confirmation_runs (day, level, ran_at, alerts_opened)
    VALUES (:day, :level, :now, 0) ON CONFLICT DO NOTHING RETURNING day
""")


@dataclass(frozen=True, slots=True)
class Trigger:
    """A flu-like count that changed: the unit, the day, and when the clock would start."""

    unit: str
    node: str
    unit_type: str
    day: date
    started_at: datetime
    received_at: datetime
    source: str  # the msg id of the event that changed the count


async def _fresh(session: AsyncSession, msg_ids: list[str], now: datetime) -> set[str]:
    rows = await session.execute(RECORD_FRESH, {"ids": sorted(set(msg_ids)), "now": now})
    return set(rows.scalars())


async def apply_cases(session: AsyncSession, events: list[CaseReported], rules: Rules,
                      zone: ZoneInfo, now: datetime) -> list[AlertState]:
    """Each new case opens its alert (deadline: found-time + the rule's minutes); flu-like cases
    count toward the unit's outbreak. Returns the alerts opened."""
    fresh = await _fresh(session, [e.msg_id for e in events], now)
    new = list({e.msg_id: e for e in events if e.msg_id in fresh}.values())
    if not new:
        return []
    flu = [e for e in new if e.kind == rules.outbreak_metric]
    if flu:
        await session.execute(LOCK_UNITS, {"units": sorted({e.unit for e in flu})})
    # Every case's unit-day first, in key order (the flu-like count below takes the same rows):
    # a zero report of that day is flagged 疑似瞒报 (services/alerts/flags.py).
    await flags.on_cases(session, new, zone, now)
    opened = await repository.open_alerts(session, [NewAlert(
        key=f"case:{e.case_id}", kind="case", topic=e.kind, node=e.node,
        day=e.found_at.astimezone(zone).date(), started_at=e.found_at,
        received_at=e.received_at, recipients=rules.recipients_for(e.unit_type),
        unit=e.unit, unit_type=e.unit_type, case_id=e.case_id, case_kind=e.kind,
        late=e.late, details={"sector": e.sector, "temperature": e.temperature,
                              "symptoms": list(e.symptoms), "person_ref": e.person_ref,
                              "found_at": e.found_at.isoformat(),
                              "received_at": e.received_at.isoformat()})
        for e in sorted(new, key=lambda e: e.found_at)], rules, now)
    if flu:
        per_day: defaultdict[tuple[str, date], int] = defaultdict(int)
        for e in flu:
            per_day[(e.unit, e.found_at.astimezone(zone).date())] += 1
        keys = sorted(per_day)
        await session.execute(ADD_CASE_ILI, {"units": [u for u, _ in keys],
                                             "days": [d for _, d in keys],
                                             "counts": [per_day[k] for k in keys]})
        opened += await check_outbreaks(session, [
            Trigger(e.unit, e.node, e.unit_type, e.found_at.astimezone(zone).date(), e.found_at,
                    e.received_at, e.msg_id) for e in flu], rules, zone, now)
    return opened


async def apply_reports(session: AsyncSession, events: list[ReportAccepted], rules: Rules,
                        zone: ZoneInfo, now: datetime, *, catalogue: Catalogue) -> int:
    """Accepted reports: their flu-like counts toward outbreaks, their supplies against the
    catalogue's stock levels (`check_stocks`), and a report that arrives resolves the unit in
    missing-report alerts (one whose units have all reported closes). Returns how many alerts
    were opened or closed. Replays change nothing without a record of message ids: a unit-day
    keeps the revision it holds, and only a newer one counts."""
    newest: dict[tuple[str, date], ReportAccepted] = {}
    for e in events:
        if (e.unit, e.day) not in newest or e.revision > newest[(e.unit, e.day)].revision:
            newest[(e.unit, e.day)] = e
    if not newest:
        return 0
    metric = rules.outbreak_metric
    flu_units = sorted({e.unit for e in newest.values() if e.values.get(metric, 0) > 0})
    if flu_units:
        await session.execute(LOCK_UNITS, {"units": flu_units})
    keys = sorted(newest)  # one order for every replica: row locks without deadlock
    ordered = [newest[k] for k in keys]
    changed = await session.execute(UPSERT_REPORTS, {
        "units": [e.unit for e in ordered], "days": [e.day for e in ordered],
        "revisions": [e.revision for e in ordered],
        "ili": [e.values.get(metric) for e in ordered],
        "zero": [e.zero for e in ordered],
        "values": [orjson.dumps(e.values, option=orjson.OPT_SORT_KEYS).decode()
                   for e in ordered]})
    newer = changed.all()
    triggers = [Trigger(u, newest[(u, d)].node, newest[(u, d)].unit_type, d,
                        newest[(u, d)].submitted_at, newest[(u, d)].submitted_at,
                        newest[(u, d)].msg_id)
                for u, d, ili, _ in newer if ili and ili > 0]
    # 疑似瞒报: flags beside the figures, never changing them (services/alerts/flags.py).
    await flags.on_reports(session, [(newest[(u, d)], cases) for u, d, _, cases in newer],
                           rules, now)
    opened = await check_outbreaks(session, triggers, rules, zone, now) if triggers else []
    stocks = await check_stocks(session, [newest[(u, d)] for u, d, _, _ in newer], catalogue,
                                rules, now)
    return len(opened) + stocks + await resolve_missing(session, keys, rules, now)


async def check_outbreaks(session: AsyncSession, triggers: list[Trigger], rules: Rules,
                          zone: ZoneInfo, now: datetime) -> list[AlertState]:
    """流感样病例暴发: `threshold` flu-like cases or more in one unit within `window_days` open
    one outbreak alert for the unit; further cases add to it rather than open another (while
    it is not closed and its day lies within the window). After it is closed, only cases of the
    days after the closing day count toward a new one. The caller holds the units' locks.

    What decides is read for all the batch's units at once (three statements whatever the
    batch): a report batch may carry flu-like counts for thousands of units."""
    by_unit: defaultdict[str, list[Trigger]] = defaultdict(list)
    for t in triggers:
        by_unit[t.unit].append(t)
    if not by_unit:
        return []
    span = timedelta(days=rules.outbreak_window_days - 1)
    units = sorted(by_unit)
    first, last = min(t.day for t in triggers) - span, max(t.day for t in triggers)
    outbreaks = (await session.execute(OUTBREAKS_OF, {"units": units})).all()
    last_closed = {u: closed for u, closed, _ in outbreaks if closed is not None}
    open_since = {u: latest for u, _, latest in outbreaks if latest is not None}
    counts: defaultdict[str, dict[date, int]] = defaultdict(dict)
    for unit, day, cases, report in (await session.execute(
            WINDOWS, {"units": units, "first": first, "last": last})).all():
        counts[unit][day] = clock.unit_day_count(cases, report)
    opened = []
    for unit in units:
        closed = last_closed.get(unit)
        after = closed.astimezone(zone).date() if closed else None
        for t in sorted(by_unit[unit], key=lambda t: (t.day, t.started_at)):
            start = t.day - span
            if unit in open_since and open_since[unit] >= start:
                break  # an open outbreak within the window takes these cases
            total = clock.window_total(counts[unit], t.day, rules, after)
            if not clock.is_outbreak(total, rules):
                continue
            row = await repository.open_alert(session, NewAlert(
                key=f"outbreak:{unit}:{t.source}", kind="outbreak", topic="outbreak",
                node=t.node, day=t.day, started_at=t.started_at, received_at=t.received_at,
                recipients=rules.recipients_for(t.unit_type), unit=unit, unit_type=t.unit_type,
                details={"cases": total, "threshold": rules.outbreak_threshold,
                         "window_days": rules.outbreak_window_days,
                         "from": (max(start, after + timedelta(days=1)) if after
                                  else start).isoformat(),
                         "to": t.day.isoformat(),
                         "by_day": {d.isoformat(): n for d, n in sorted(counts[unit].items())
                                    if n and start <= d <= t.day}}),
                rules, now)
            if row is not None:
                opened.append(row)
                break
    return opened


async def check_stocks(session: AsyncSession, events: list[ReportAccepted],
                       catalogue: Catalogue, rules: Rules, now: datetime) -> int:
    """物资储备不足: a report with a figure under a stock level's minimum opens one alert for the
    node of that level above the unit (its town, its county), per metric and day, naming the
    units below; it escalates like any other (deadline and recipients: rules' `supply_low`).
    Whether a node is below is decided from the reports alone (`clock.stock_readings`). A later
    revision at or above the minimum takes its unit off; once no unit is below, the alert closes
    by itself (`replenished`). `events` are the newest revision of each unit-day, each seen for
    the first time: an older revision arriving late changes nothing. Returns how many alerts
    were opened or closed."""
    # A first report without the figure bears on no alert (its unit was never below that day):
    # left out, so that reports without supplies do not lock the day's supply alerts.
    stocked = {s.metric for s in catalogue.stock_levels}
    readings = [r for e in events if e.revision > 1 or not stocked.isdisjoint(e.values)
                for r in clock.stock_readings(catalogue, e.unit, e.node, e.day, e.revision,
                                              e.values)
                if r.value is not None or r.revision > 1]
    if not readings:
        return 0
    of = {(e.unit, e.day): e for e in events}
    low: defaultdict[str, list[clock.StockReading]] = defaultdict(list)
    for r in readings:
        if r.below:
            low[r.key].append(r)
    news = []
    for key, below in sorted(low.items()):
        first = below[0]
        started = min(of[(r.unit, r.day)].submitted_at for r in below)
        news.append(NewAlert(
            key=key, kind="supply_low", topic="supply_low", node=first.node, day=first.day,
            started_at=started, received_at=started,
            recipients=rules.recipients_for(None, kind="supply_low"),
            details={"metric": first.metric, "stock_level": first.stock_level,
                     "minimum": first.minimum, "day": first.day.isoformat(),
                     "units": [{"unit": r.unit, "unit_type": of[(r.unit, r.day)].unit_type,
                                "value": r.value} for r in sorted(below, key=lambda r: r.unit)]}))
    opened = await repository.open_alerts(session, news, rules, now)
    # Locked in one order: two replicas with units of one town take turns, so the last unit
    # back above the minimum cannot miss another that has just gone below.
    rows = list(await session.scalars(
        select(AlertRow).where(AlertRow.key.in_(sorted({r.key for r in readings})))
        .order_by(AlertRow.alert_id).with_for_update()))
    if not rows:
        return len(opened)
    alert_of = {row.key: row.alert_id for row in rows}
    per_unit: dict[tuple[str, str], clock.StockReading] = {}
    for r in readings:  # two levels of one metric at one level: below if under either
        if r.key in alert_of and (r.below or (r.key, r.unit) not in per_unit):
            per_unit[(r.key, r.unit)] = r
    held = sorted(per_unit.values(), key=lambda r: (r.key, r.unit))
    await session.execute(UPSERT_STOCK_UNITS, {
        "alerts": [alert_of[r.key] for r in held], "units": [r.unit for r in held],
        "revisions": [r.revision for r in held], "values": [r.value for r in held],
        "below": [r.below for r in held]})
    still = set((await session.execute(
        STILL_LOW, {"alerts": [row.alert_id for row in rows]})).scalars())
    closed = await repository.close_resolved(
        session, [row for row in rows if row.alert_id not in still], now, rules,
        "replenished", "every unit is back at the stock level")
    return len(opened) + closed


async def resolve_missing(session: AsyncSession, keys: list[tuple[str, date]], rules: Rules,
                          now: datetime) -> int:
    """Mark reported units in missing-report alerts; close those with no unit left missing.
    The alerts are locked first, so two replicas resolving the last two units of one alert
    cannot each see the other's unit still missing."""
    pairs = {"units": [u for u, _ in keys], "days": [d for _, d in keys]}
    ids = sorted((await session.execute(MISSING_OF, pairs)).scalars())
    if not ids:
        return 0
    rows = list(await session.scalars(select(AlertRow).where(AlertRow.alert_id.in_(ids))
                                      .order_by(AlertRow.alert_id).with_for_update()))
    await session.execute(MARK_REPORTED, {**pairs, "now": now, "alerts": ids})
    still = set((await session.execute(STILL_MISSING, {"alerts": ids})).scalars())
    return await repository.close_resolved(
        session, [row for row in rows if row.alert_id not in still], now, rules)


async def apply_calendars(session: AsyncSession, events: list[CalendarChanged], rules: Rules,
                          now: datetime) -> int:
    """Calendars (免报) declared after a cutoff: each unit a missing-report alert still lists as
    missing that one of them now exempts on that day is taken off the alert (a history entry
    and an event, the calendar its reason), and an alert left with no unit missing closes
    (outcome `withdrawn`). Judged by the calendars as they stand now (one ended since exempts
    no more than its days left); an ending changes nothing, and nothing is ever put back on an
    alert. A redelivery finds the units off already and changes nothing. Returns how many
    alerts changed."""
    exemptions = await calendar.in_force_of(
        session, [e.exemption_id for e in events if e.change == "declared"])
    if not exemptions:
        return 0
    # A cutoff being checked now (its claim holds the table) commits before this look, so the
    # alert it opens is seen here; one checked later reads this calendar itself.
    await session.execute(text("LOCK TABLE alerts.cutoff_runs IN SHARE MODE"))
    ends = [x.valid_to for x in exemptions]
    listed = (await session.execute(STILL_MISSING_ON, {
        "first": min(x.valid_from for x in exemptions),
        "last": None if None in ends else max(e for e in ends if e is not None)})).all()
    hits = sorted((alert_id, unit, x.exemption_id)
                  for alert_id, unit, day, node, unit_type in listed
                  if (x := calendar.exempt_by(exemptions, unit, node, unit_type, day)))
    if not hits:
        return 0
    # Locked in one order, as resolve_missing does: the last units of an alert, one exempted
    # here and one reported on another replica, cannot each see the other still missing.
    ids = sorted({a for a, _, _ in hits})
    rows = [row for row in await session.scalars(
        select(AlertRow).where(AlertRow.alert_id.in_(ids)).order_by(AlertRow.alert_id)
        .with_for_update()) if row.status != "closed"]  # closed meanwhile: left as it is
    open_ids = {row.alert_id for row in rows}
    hits = [h for h in hits if h[0] in open_ids]
    if not hits:
        return 0
    taken = (await session.execute(MARK_EXEMPTED, {
        "alerts": [a for a, _, _ in hits], "units": [u for _, u, _ in hits],
        "exemptions": [x for _, _, x in hits], "now": now})).all()
    if not taken:
        return 0
    by_alert: defaultdict[UUID, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for alert_id, unit, exemption_id in sorted(taken):
        by_alert[alert_id][exemption_id].append(unit)
    rows = [row for row in rows if row.alert_id in by_alert]
    await repository.exempt_units(session, rows, {
        a: sorted(per.items()) for a, per in by_alert.items()}, now, rules)
    still = set((await session.execute(
        STILL_MISSING, {"alerts": [row.alert_id for row in rows]})).scalars())
    for row in rows:
        if row.alert_id not in still:
            last = max(by_alert[row.alert_id])
            await repository.close_resolved(session, [row], now, rules, "withdrawn",
                                            machine.exempted_reason(last))
    return len(rows)


async def run_cutoff(session: AsyncSession, reference: Reference, day: date, cutoff: time,
                     rules: Rules, zone: ZoneInfo, now: datetime) -> int | None:
    """漏报: at a cutoff, the units with that cutoff that are missing (`shared/deadlines.py`
    `day_state`: expected, not exempt by a calendar, no report, cutoff passed) raise one alert
    per node (village, or the town or county that runs them) listing them. None if this cutoff
    was already checked (by this replica before a restart, or by another)."""
    claimed = await session.execute(
        pg_insert(CutoffRunRow).values(day=day, cutoff=cutoff, ran_at=now, alerts_opened=0)
        .on_conflict_do_nothing().returning(CutoffRunRow.day))
    if claimed.scalar_one_or_none() is None:
        return None
    # Reports committing now either finish before this look (and count) or wait for it and
    # then resolve the alerts it opens: no report slips between the two.
    await session.execute(text("LOCK TABLE alerts.unit_days IN SHARE MODE"))
    placed = {u.code: node for u in reference.units.values()
              if u.cutoff == cutoff and u.active_on(day) and (node := u.node_on(day)) is not None}
    if not placed:
        return 0
    reported = set((await session.execute(
        REPORTED_ON, {"day": day, "units": sorted(placed)})).scalars())
    exemptions = await calendar.in_force(session)
    by_node: defaultdict[str, list[str]] = defaultdict(list)
    for unit, node in sorted(placed.items()):
        exempt = calendar.exempt_by(exemptions, unit, node, reference.units[unit].unit_type,
                                    day) is not None
        if deadlines.day_state(day, cutoff, reported=unit in reported, exempt=exempt, now=now,
                               zone=zone) is deadlines.DayState.MISSING:
            by_node[node].append(unit)
    started = deadlines.cutoff_instant(day, cutoff, zone)
    news = [NewAlert(
        key=f"missing:{node}:{day.isoformat()}:{cutoff:%H%M}", kind="missing_report",
        topic="missing_report", node=node, day=day, started_at=started, received_at=started,
        recipients=rules.recipients_for(None, missing_report=True),
        details={"day": day.isoformat(), "cutoff": cutoff.strftime("%H:%M"),
                 "units": [{"unit": u, "name": reference.units[u].name,
                            "unit_type": reference.units[u].unit_type} for u in units]})
        for node, units in sorted(by_node.items())]
    rows = await repository.open_alerts(session, news, rules, now)
    listed = [{"alert_id": row.alert_id, "unit": u, "day": day}
              for row in rows for u in by_node[row.node]]
    if listed:
        await session.execute(MissingUnitRow.__table__.insert(), listed)
    opened = len(rows)
    await session.execute(
        CutoffRunRow.__table__.update().where(CutoffRunRow.day == day,
                                              CutoffRunRow.cutoff == cutoff)
        .values(alerts_opened=opened))
    return opened


async def apply_countdowns(session: AsyncSession, events: list[CountdownChanged], rules: Rules,
                           now: datetime) -> int:
    """一人一案: the ledger's countdowns, kept until their deadline (`run_countdowns` opens the
    alert once it has passed). A settlement (the test, release or sign-off recorded, even late,
    or the countdown withdrawn) ends the wait, or, once its group's alert is open and nothing in
    the group still waits, closes that alert. Only a newer announcement of a key (`seq`)
    changes it: replays and old messages change nothing. Returns how many alerts were closed."""
    fresh = await _fresh(session, [e.msg_id for e in events], now)
    newest: dict[str, CountdownChanged] = {}
    for e in events:
        if e.msg_id in fresh and (e.key not in newest or e.seq > newest[e.key].seq):
            newest[e.key] = e
    if not newest:
        return 0
    rows = {row.key: row for row in await session.scalars(
        select(CountdownRow).where(CountdownRow.key.in_(sorted(newest)))
        .order_by(CountdownRow.key).with_for_update())}
    settled_groups: set[str] = set()
    for key in sorted(newest):
        e, row = newest[key], rows.get(key)
        if row is not None and row.seq >= e.seq:
            continue
        if row is None:
            row = CountdownRow(key=key, kind=e.kind, grp=e.group, node=e.node,
                               pseudonym=e.pseudonym, category=e.category, day=e.day,
                               due_at=None, seq=e.seq, state="pending", details={})
            session.add(row)
        was = row.state
        row.seq = e.seq
        if isinstance(e, CountdownDue):
            row.due_at, row.details = e.due_at, dict(e.details)
            if was != "alerted":
                row.state = "pending"
        else:
            row.state = e.outcome
            if was == "alerted":
                settled_groups.add(row.grp)
    await session.flush()
    if not settled_groups:
        return 0
    waiting = set((await session.execute(
        select(CountdownRow.grp).where(CountdownRow.grp.in_(sorted(settled_groups)),
                                       CountdownRow.state == "alerted"))).scalars())
    done = sorted(settled_groups - waiting)
    if not done:
        return 0
    alerts = list(await session.scalars(select(AlertRow).where(AlertRow.key.in_(done))
                                        .order_by(AlertRow.alert_id).with_for_update()))
    return await repository.close_resolved(session, alerts, now, rules, "done",
                                           "recorded in the ledger of people under control")


async def run_countdowns(session: AsyncSession, rules: Rules, now: datetime,
                         limit: int = 500) -> tuple[int, int]:
    """The countdowns whose deadline has passed unsettled (`deadlines.is_past`: at the end of
    the day is still in time) open one alert per group: a test or a release its own, a
    village's missing sign-offs of a day one, listing each person by pseudonym. Taken FOR
    UPDATE SKIP LOCKED: one replica opens each. Returns (countdowns taken, alerts opened)."""
    rows = list(await session.scalars(
        select(CountdownRow).where(CountdownRow.state == "pending",
                                   is_past_sql(CountdownRow.due_at, now))
        .order_by(CountdownRow.due_at, CountdownRow.key).limit(limit)
        .with_for_update(skip_locked=True)))
    if not rows:
        return 0, 0
    groups: defaultdict[str, list[CountdownRow]] = defaultdict(list)
    for row in rows:
        groups[row.grp].append(row)
        row.state = "alerted"
    news = []
    for grp, members in sorted(groups.items()):
        first = members[0]
        news.append(NewAlert(
            key=grp, kind=first.kind, topic=first.kind, node=first.node, day=first.day,
            started_at=min(m.due_at for m in members if m.due_at is not None),
            received_at=now, recipients=rules.recipients_for(None, kind=first.kind),
            details={"day": first.day.isoformat(), "due_at": first.due_at.isoformat()
                     if first.due_at else None,
                     "people": [{"pseudonym": m.pseudonym, "category": m.category,
                                 **m.details} for m in sorted(members, key=lambda m: m.key)]}))
    opened = await repository.open_alerts(session, news, rules, now)
    return len(rows), len(opened)


def confirmation_key(node: str, day: date) -> str:
    return f"missing_confirmation:{node}:{day.isoformat()}"


async def apply_confirmations(session: AsyncSession, events: list[SignoffChanged],
                              rules: Rules, now: datetime,
                              reference: Reference | None = None) -> int:
    """Confirmations and reopenings from the signoff service: the latest of each node-day is
    kept; a node that has now confirmed closes its missing-confirmation alerts (outcome
    `confirmed`), and a confirmation reopened after its level's time was checked opens one at
    once (the node must confirm again). Returns how many alerts were opened or closed."""
    latest: dict[tuple[str, date], SignoffChanged] = {}
    for e in events:
        if e.action in ("confirmed", "reopened") and (
                (e.node, e.day) not in latest or e.entry > latest[(e.node, e.day)].entry):
            latest[(e.node, e.day)] = e
    if not latest:
        return 0
    keys = sorted(latest)
    await session.execute(UPSERT_CONFIRMATIONS, {
        "nodes": [n for n, _ in keys], "days": [d for _, d in keys],
        "confirmed": [latest[k].action == "confirmed" for k in keys],
        "entries": [latest[k].entry for k in keys]})
    done = {(n, d) for n, d in (await session.execute(CONFIRMED_NOW, {
        "nodes": [n for n, _ in keys], "days": [d for _, d in keys]})).all()}
    reopened = [k for k in keys if k not in done and latest[k].action == "reopened"]
    opened = 0
    if reopened:
        late = (await session.execute(CHECKED_ALREADY, {
            "nodes": [n for n, _ in reopened], "days": [d for _, d in reopened],
            "levels": [int(level_of(n)) for n, _ in reopened]})).all()
        opened = len(await repository.open_alerts(session, [NewAlert(
            key=f"{confirmation_key(n, d)}:{latest[(n, d)].entry}", kind="missing_confirmation",
            topic="missing_confirmation", node=n, day=d, started_at=latest[(n, d)].at,
            received_at=latest[(n, d)].at,
            recipients=rules.recipients_for(None, kind="missing_confirmation"),
            details={"day": d.isoformat(), "level": level_of(n).name.lower(), "reopened": True,
                     "unit": latest[(n, d)].unit, "reason": latest[(n, d)].reason,
                     "name": reference.nodes.get(n, n) if reference else n})
            for n, d in sorted(late)], rules, now))
    if not done:
        return opened
    rows = list(await session.scalars(
        select(AlertRow).where(
            AlertRow.kind == "missing_confirmation", AlertRow.status != "closed",
            tuple_(AlertRow.node, AlertRow.day).in_(sorted(done)))
        .order_by(AlertRow.alert_id).with_for_update()))
    return opened + await repository.close_resolved(session, rows, now, rules, "confirmed",
                                                    "the node has confirmed its day")


async def run_confirmations(session: AsyncSession, reference: Reference, day: date,
                            level: Level, signoff: SignoffRules, rules: Rules, zone: ZoneInfo,
                            now: datetime) -> int | None:
    """确认上报 not done in time: at a level's confirmation time (shared/data/signoff.toml),
    each node of that level with units placed below it that has not confirmed its day raises
    one `missing_confirmation` alert (its clock: `missing_confirmation` in rules.toml), which
    closes by itself once the node confirms. None if this day's time was already checked."""
    claimed = await session.execute(CLAIM_CONFIRMATION_RUN,
                                    {"day": day, "level": int(level), "now": now})
    if claimed.scalar_one_or_none() is None:
        return None
    # A confirmation committing now either is seen here or closes the alert opened here.
    await session.execute(text("LOCK TABLE alerts.confirmations IN SHARE MODE"))
    length = CODE_LENGTHS[level]
    nodes = sorted({node[:length] for u in reference.units.values()
                    if u.active_on(day) and (node := u.node_on(day)) and len(node) >= length})
    if not nodes:
        return 0
    confirmed = set((await session.execute(
        CONFIRMED_ON, {"day": day, "nodes": nodes})).scalars())
    due = signoff.due_at(nodes[0], day, zone)
    assert due is not None  # the level confirms: it came from the same rules
    news = [NewAlert(
        key=confirmation_key(node, day), kind="missing_confirmation",
        topic="missing_confirmation", node=node, day=day, started_at=due, received_at=due,
        recipients=rules.recipients_for(None, kind="missing_confirmation"),
        details={"day": day.isoformat(), "by": due.astimezone(zone).strftime("%H:%M"),
                 "level": level.name.lower(), "name": reference.nodes.get(node, node)})
        for node in nodes if node not in confirmed]
    opened = len(await repository.open_alerts(session, news, rules, now))
    await session.execute(text(
        "UPDATE alerts.confirmation_runs SET alerts_opened = :n "
        "WHERE day = :day AND level = :level"), {"n": opened, "day": day, "level": int(level)})
    return opened

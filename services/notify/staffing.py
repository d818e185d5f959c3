"""Use cases of the staff records: import a file, put a day's roster. Each is one transaction
and all or nothing: a problem anywhere writes nothing."""

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import staff_import, store
from services.notify.hosts import AllowedHosts
from shared.refusals import refuse
from shared.registry.importer import Problem, Record


async def _known(session: AsyncSession, records: list[Record], day: date,
                 hosts: AllowedHosts | None = None) -> staff_import.Known:
    values = lambda *columns: {r.fields.get(c, "") for r in records for c in columns}  # noqa: E731
    codes = values("node", "scope")
    return staff_import.Known(
        nodes=await store.known_nodes(session, codes),
        units=await store.unit_nodes(session, values("scope"), day),
        people={code: person.node for code, person in
                (await store.people(session, values("person", "code"))).items()},
        hosts=hosts)


async def import_staff(session: AsyncSession, kind: str, data: bytes, file: str,
                       json_format: bool, area: str, now: datetime, today: date, *,
                       hosts: AllowedHosts) -> tuple[int, list[Problem]]:
    """Import one file of `kind` (people, contacts or rosters) for an operator of `area`
    (an administrator: ""), robots' webhooks on `hosts` only: the rows written, or every
    problem and nothing written. The HTTP API and `rollcall notify import` both come here."""
    records, problems = staff_import.read(kind, data, file, json_format)
    known = await _known(session, records, today, hosts)
    staff, problems = staff_import.check(kind, records, problems, known, area)
    if staff is None:
        return 0, problems
    await store.upsert_people(session, staff.people, now)
    await store.upsert_contacts(session, staff.contacts)
    await store.replace_rosters(session, staff.rosters)
    return len(staff.people) + len(staff.contacts) + sum(map(len, staff.rosters.values())), []


async def put_roster_day(session: AsyncSession, node: str, day: date, rows: list[dict],
                         area: str, today: date) -> tuple[list, list[Problem]]:
    """A node's roster for one day, replaced by `rows` (person, role, starts, ends), checked
    like an imported roster: the day's shifts, or the problems (row numbers from 1)."""
    records = [Record("body", i, {"node": node, "day": day.isoformat(),
                                  **{k: str(v) for k, v in row.items() if v is not None}})
               for i, row in enumerate(rows, 1)]
    known = await _known(session, records, today)
    if node not in await store.known_nodes(session, [node]):
        raise refuse("unknown_node", "node", node=node)
    staff, problems = staff_import.check("rosters", records, [], known, area)
    if staff is None:
        return [], problems
    shifts = staff.rosters.get((node, day), [])
    await store.replace_rosters(session, {(node, day): shifts})
    return shifts, []

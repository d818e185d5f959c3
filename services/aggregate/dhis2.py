"""A node's figures as DHIS2 data values (the format and the mapping: shared/dhis2.py): the
node's rollup for each day of a range and each metric it has, and optionally each child node's,
exactly the figures `GET /v1/rollups/{node}/series` answers. Stored by "rollcall"; created and
last updated: the earliest and the latest arrival of the reports (their revisions applied) rolled
up into the node-day."""


from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import queries, views
from services.aggregate.views import Span
from shared import dhis2
from shared.catalogue import Catalogue
from shared.deadlines import Moment

STORED_BY = "rollcall"


async def node_figures(session: AsyncSession, node: str, span: Span, catalogue: Catalogue,
                       moment: Moment, children: bool = False) -> list[dhis2.Figure]:
    """The node's (or its children's) figures day by day, metric by metric."""
    glen = views.child_length(node) if children else len(node)
    assert glen is not None, "a village's children are units: ingest exports their reports"
    codes = (await queries.child_codes(session, node, glen, span.start, span.end)
             if children else [node])
    figures = await views.stored_figures(session, codes, node, glen, span, catalogue, moment)
    arrived = await queries.arrivals(session, node, glen, span.start, span.end)
    out: list[dhis2.Figure] = []
    for day in queries.days(span.start, span.end):
        for code in codes:
            found = figures.get((code, day))
            if found is None:
                continue
            first, last = arrived.get((code, day), (None, None))
            for metric, value in sorted(catalogue.typed(found.values).items()):
                out.append(dhis2.Figure(code, day, metric, value, STORED_BY, first, last))
    return out



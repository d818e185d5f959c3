"""What the HTTP API answers: a node's figures for a day or a range of days, its children (child
nodes and the units placed at the node itself), its time series, its pending, missing, exempt
and late units. Ratios and rates are computed from summed parts at each level, never averaged.
Every answer is the figures at the instant of the read (`Moment`): a cutoff that has passed
turns the pending units it concerns into missing ones (docs/architecture.md, "Cutoffs,
completeness, timeliness")."""

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected, queries
from services.aggregate.queries import Filter
from services.aggregate.rollup import Figures
from shared.aggregation import running_totals
from shared.catalogue import Catalogue
from shared.deadlines import Moment, cutoff_instant
from shared.hierarchy import CODE_LENGTHS, Level, level_of

DEFAULT_LIST_LIMIT = 1000


@dataclass(frozen=True)
class Span:
    start: date
    end: date

    @property
    def single(self) -> bool:
        return self.start == self.end

    def describe(self) -> dict:
        if self.single:
            return {"day": self.start}
        return {"start": self.start, "end": self.end,
                "days": (self.end - self.start).days + 1}


def child_length(node: str) -> int | None:
    level = level_of(node)
    return None if level == Level.VILLAGE else CODE_LENGTHS[Level(level + 1)]


def _fold(figures: queries.NodeDayFigures, code: str, span: Span,
          catalogue: Catalogue) -> Figures:
    """A node's figures over the span, each metric by its aggregation over days."""
    return Figures.over_days((figures[(code, day)] for day in queries.days(span.start, span.end)
                              if (code, day) in figures), catalogue)


def _shape(figures: Figures, catalogue: Catalogue) -> dict:
    """The answer's figures: values typed as the catalogue declares them (a count is an
    integer), ratios from the summed parts."""
    c = figures.counts
    return {
        "values": catalogue.typed(figures.values), "ratios": catalogue.ratios_of(figures.values),
        "completeness": {"expected": c.expected, "reported": c.reported, "zero": c.zero,
                         "late": c.late, "on_time": c.on_time, "pending": c.pending,
                         "missing": c.missing, "exempt": c.exempt, "due": c.due,
                         **c.rates()},
    }


def _below_minimum(node: str, values: dict, catalogue: Catalogue) -> list[dict]:
    """The catalogue's stock levels the node falls below (its minimum reserves)."""
    return catalogue.below_minimum(level_of(node).name.lower(), values)


def _head(node: str, name: str | None, span: Span, where: Filter) -> dict:
    head = {"kind": "node", "node": node, "name": name, "level": level_of(node).name.lower(),
            **span.describe()}
    if where:
        head["filter"] = {k: v for k, v in where.params().items() if v is not None}
    return head


async def _figures(session: AsyncSession, node: str, span: Span, where: Filter,
                   catalogue: Catalogue, moment: Moment) -> queries.NodeDayFigures:
    if where:
        return await queries.counted(session, node, len(node), span.start, span.end, where,
                                     catalogue, moment)
    return await _stored(session, [node], node, len(node), span, catalogue, moment)


async def _stored(session: AsyncSession, codes: list[str], node: str, glen: int, span: Span,
                  catalogue: Catalogue, moment: Moment) -> queries.NodeDayFigures:
    """The kept figures of `codes` (`node` itself or its children, grouped by `glen` digits).
    A day never built has had no report (the projector builds a day before its first report):
    its expected units are counted from the registry on the spot rather than kept."""
    every = queries.days(span.start, span.end)
    # Which days are built is read first: a day built in between has its rows by then.
    unbuilt = set(every) - await expected.built(session, every)
    figures = await queries.stored(session, codes, span.start, span.end, moment)
    if unbuilt:
        counted = await queries.counted(session, node, glen, min(unbuilt), max(unbuilt),
                                        Filter(), catalogue, moment)
        figures.update({k: f for k, f in counted.items() if k[1] in unbuilt and k[0] in codes})
    return figures


async def stored_figures(session: AsyncSession, codes: list[str], node: str, glen: int,
                         span: Span, catalogue: Catalogue, moment: Moment
                         ) -> queries.NodeDayFigures:
    """The figures of `codes` (the node itself, or its children) day by day, as views read
    them (for the DHIS2 export)."""
    return await _stored(session, codes, node, glen, span, catalogue, moment)


async def _lists(session: AsyncSession, node: str, day: date, where: Filter, moment: Moment,
                 limit: int | None, offset: int = 0) -> dict[str, list[dict]]:
    return {
        "pending_units": await queries.unreported_units(session, node, day, where, moment,
                                                        False, limit, offset),
        "missing_units": await queries.unreported_units(session, node, day, where, moment,
                                                        True, limit, offset),
        "exempt_units": await queries.exempt_units(session, node, day, where, limit, offset),
        "late_units": await queries.late_units(session, node, day, where, limit, offset)}


async def node_view(session: AsyncSession, node: str, span: Span, catalogue: Catalogue,
                    moment: Moment, where: Filter = Filter(),
                    list_limit: int | None = DEFAULT_LIST_LIMIT) -> dict:
    """A node's totals, ratios and completeness at `moment`; for a single day, with the pending,
    missing, exempt and late units (at most `list_limit` of each; the counts say how many)."""
    figures = await _figures(session, node, span, where, catalogue, moment)
    name = (await queries.names(session, [node])).get(node)
    view = {**_head(node, name, span, where),
            **_shape(_fold(figures, node, span, catalogue), catalogue)}
    view["below_minimum"] = _below_minimum(node, view["values"], catalogue)
    if span.single:
        view["completeness"]["next_cutoff"] = await _next_cutoff(session, node, span.start,
                                                                 moment)
    if span.single and list_limit != 0:
        view["completeness"].update(
            await _lists(session, node, span.start, where, moment, list_limit))
    return view


async def _next_cutoff(session: AsyncSession, node: str, day: date, moment: Moment
                       ) -> datetime | None:
    """When the next of the node's pending units becomes missing (the earliest cutoff not
    passed among its units not reported yet), as an instant; None when none is pending."""
    coming = [c for c in map(time.fromisoformat,
                             await queries.unreported_cutoffs(session, node, day))
              if not moment.cutoff_passed(day, c)]
    return cutoff_instant(day, min(coming), moment.zone) if coming else None


async def children_view(session: AsyncSession, node: str, span: Span, catalogue: Catalogue,
                        moment: Moment, where: Filter = Filter()) -> list[dict]:
    """Drill-down: each child node's figures, then (for a single day) each unit placed at the
    node itself with its report's status. A village's children are its units."""
    glen = child_length(node)
    rows: list[dict] = []
    if glen is not None:
        codes = await queries.child_codes(session, node, glen, span.start, span.end)
        if where:
            figures = await queries.counted(session, node, glen, span.start, span.end, where,
                                            catalogue, moment)
            codes = sorted(set(codes) | {code for code, _ in figures})
        else:
            figures = await _stored(session, codes, node, glen, span, catalogue, moment)
        named = await queries.names(session, codes)
        rows = [{**_head(code, named.get(code), span, where),
                 **_shape(_fold(figures, code, span, catalogue), catalogue)} for code in codes]
        for row in rows:
            row["below_minimum"] = _below_minimum(row["node"], row["values"], catalogue)
    if span.single:
        rows += [{**unit, "values": catalogue.typed(unit["values"])}
                 for unit in await queries.own_units(session, node, span.start, where, moment)]
    return rows


async def series_view(session: AsyncSession, node: str, span: Span, catalogue: Catalogue,
                      moment: Moment, where: Filter = Filter(), since: date | None = None
                      ) -> dict:
    """A node's figures day by day over the span (days with nothing yet show zeros); a past
    day has no pending units, a future day's expected units are all pending. Each day carries
    the running totals of the flows from `since` (at most the span's start) to that day, and
    the answer the span's totals, folded as a range read folds them."""
    since = min(since or span.start, span.start)
    figures = await _figures(session, node, Span(since, span.end), where, catalogue, moment)
    name = (await queries.names(session, [node])).get(node)
    every = queries.days(since, span.end)
    running = dict(zip(every, running_totals(
        (figures.get((node, day), Figures()).values for day in every), catalogue), strict=True))
    series = [{"day": day, **_shape(figures.get((node, day), Figures()), catalogue),
               "running": catalogue.typed(running[day])}
              for day in queries.days(span.start, span.end)]
    totals = _shape(_fold(figures, node, span, catalogue), catalogue)
    head = _head(node, name, span, where)
    head.pop("day", None)
    head.update(start=span.start, end=span.end, since=since)
    return {**head, "series": series, "totals": totals}


async def completeness_view(session: AsyncSession, node: str, day: date, catalogue: Catalogue,
                            moment: Moment, where: Filter, limit: int | None,
                            offset: int) -> dict:
    """The completeness figures with the lists of pending, missing, exempt and late units,
    page by page."""
    view = await node_view(session, node, Span(day, day), catalogue, moment, where,
                           list_limit=0)
    view["completeness"].update(await _lists(session, node, day, where, moment, limit, offset))
    return {k: view[k] for k in view if k not in ("values", "ratios")}

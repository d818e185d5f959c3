"""The benchmark's cutoff phase: what the passing of a cutoff costs at province scale.

On a day of its own with no report, every unit of the registry is expected; the phase times
counting the day (what a calendar change costs: the day's expected units recounted), reading
the province's figures, and the passing of the schools' 10:00 cutoff: claiming it, finding the
node-days whose pending units it turns missing and announcing each of them on NATS. Nothing is
rewritten at a cutoff (docs/architecture.md, "Cutoffs, completeness, timeliness"), so the
passing costs one indexed read and one message per node-day concerned.

`python -m rollcall.bench.cutoff [--within 43]` runs this phase alone on embedded servers.
"""

import argparse
import asyncio
import json
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import nats

from services.aggregate import expected, views
from services.aggregate.live import Announcer
from services.aggregate.service import AggregateContext
from services.aggregate.views import Span
from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings

CUTOFF = clock_time(10)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def measure(database_url: str, nats_url: str, root: str, day: date,
                  settings: Settings | None = None) -> dict:
    """Times the day's count, a read of `root`'s figures and the passing of 10:00 on `day`."""
    settings = settings or Settings()
    zone = settings.zone
    clock = Clock(datetime.combine(day, CUTOFF, zone))
    engine = make_engine(database_url, pool_size=2)
    connection = await nats.connect(nats_url)
    catalogue = default_catalogue()
    try:
        ctx = AggregateContext(settings, clock, make_sessionmaker(engine), catalogue)

        async def publish(subject: str, data: bytes) -> None:
            await connection.publish(subject, data)

        ctx.announcer = Announcer(publish, clock, interval=0)
        start = time.perf_counter()
        async with ctx.sessions() as session, session.begin():
            await expected.rebuild(session, {day}, clock())
        build_s = time.perf_counter() - start

        async def read() -> tuple[dict, float]:
            began = time.perf_counter()
            async with ctx.sessions() as session:
                view = await views.node_view(session, root, Span(day, day), catalogue,
                                             ctx.moment(), list_limit=0)
            return view["completeness"], time.perf_counter() - began

        before, read_s = await read()  # 10:00:00: on time still
        clock.now += timedelta(microseconds=1)
        start = time.perf_counter()
        node_days = await ctx.pass_cutoffs()
        claim_s = time.perf_counter() - start
        start = time.perf_counter()
        await ctx.announcer.flush()
        await connection.flush()
        announce_s = time.perf_counter() - start
        after, _ = await read()
        return {"day": day.isoformat(), "units_expected": before["expected"],
                "pending_before": before["pending"], "missing_after": after["missing"],
                "count_day_seconds": round(build_s, 3), "read_root_seconds": round(read_s, 3),
                "cutoff_claim_seconds": round(claim_s, 3),
                "cutoff_announce_seconds": round(announce_s, 3),
                "cutoff_node_days_announced": node_days,
                "cutoff_rows_rewritten": 0}
    finally:
        await connection.close()
        await engine.dispose()


def main() -> None:
    from rollcall.bench.run import DIVISIONS
    from rollcall.bench.system import System, load_registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--within", default="43")
    parser.add_argument("--divisions", type=Path, default=DIVISIONS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rollcall-cutoff-") as tmp:
        system = System(Path(tmp))
        try:
            system.start_servers(None, None)
            started = time.perf_counter()
            registry = asyncio.run(load_registry(system.database_url, args.divisions,
                                                 args.within, system.root / "registry"))
            registry["import_seconds"] = round(time.perf_counter() - started, 1)
            day = datetime.now(Settings().zone).date() - timedelta(days=60)
            figures = asyncio.run(measure(system.database_url, system.nats_url, args.within,
                                          day))
            print(json.dumps({"registry": registry, "cutoff": figures}, indent=2))
        finally:
            system.close()


if __name__ == "__main__":
    main()

"""`rollcall alerts bench`: case → open alert latency under a background load of accepted
reports, measured against a running alerts service.

Reports (ReportAccepted) are published to JetStream at a steady rate, as ingest's relay would;
fever cases (CaseReported) are published among them, and the time from publishing a case to
receiving its `alert.opened` event is recorded. The alerts service publishes that event from
its outbox after the commit that opened the alert, so the figure is an upper bound of
case → open alert committed.
"""

import asyncio
import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import nats
import typer
from rich.console import Console

from shared.contracts import CaseReported, ReportAccepted
from shared.registry import demo
from shared.settings import Settings

app = typer.Typer(help="Alerts: measurements.", no_args_is_help=True)
console = Console()


@dataclass
class Result:
    cases: int
    opened: int
    reports: int
    seconds: float
    latencies_s: list[float]
    picked_s: list[float]

    def quantile(self, q: float, of: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_s if of is None else of)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def reports_per_s(self) -> float:
        return self.reports / self.seconds


async def measure(nats_url: str, rate: int = 1000, seconds: float = 10.0,
                  cases_per_s: float = 10.0, wait_s: float = 10.0) -> Result:
    units = demo.units()
    clinics = [u for u in units if u["unit_type"] == "village_clinic"]
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sent: dict[str, tuple[float, datetime]] = {}
    latencies: list[float] = []
    picked: list[float] = []  # publish → the service took the case (the event's `at`)
    publishing_done, all_in = False, asyncio.Event()

    async def on_opened(msg) -> None:
        data = json.loads(msg.data)
        if data.get("case_id") in sent:
            t0, wall = sent.pop(data["case_id"])
            latencies.append(time.perf_counter() - t0)
            picked.append((datetime.fromisoformat(data["at"]) - wall).total_seconds())
            if publishing_done and not sent:
                all_in.set()

    sub = await nc.subscribe("alert.opened.>", cb=on_opened)
    # Old, random days: reports that do not collide with real ones or with an earlier run.
    base = date(1990, 1, 1) + timedelta(days=random.randrange(0, 5000))
    tick_s, reports, cases = 0.01, 0, 0
    per_tick = rate * tick_s
    start = time.perf_counter()
    next_case = start
    owed = 0.0
    while (now := time.perf_counter()) - start < seconds:
        owed += per_tick
        batch = []
        while owed >= 1:
            u = units[reports % len(units)]
            batch.append(ReportAccepted(
                report_id=uuid.uuid4(), unit=u["code"], node=u["node"], unit_type=u["unit_type"],
                sector=u["sector"], day=base + timedelta(days=reports // len(units)), revision=1,
                values={"fever": 0, "nat_tests": 3}, zero=False, late=False,
                submitted_at=datetime.now(UTC), reporter="bench"))
            reports += 1
            owed -= 1
        publishes = [js.publish(e.subject, e.model_dump_json().encode(),
                                headers={"Nats-Msg-Id": e.msg_id}) for e in batch]
        if now >= next_case:
            clinic = random.choice(clinics)
            found = datetime.now(UTC)
            event = CaseReported(case_id=uuid.uuid4(), unit=clinic["code"], node=clinic["node"],
                                 unit_type="village_clinic", sector="health", kind="fever",
                                 found_at=found, received_at=found, temperature=38.5,
                                 person_ref="bench", late=False)
            sent[str(event.case_id)] = (time.perf_counter(), datetime.now(UTC))
            publishes.append(js.publish(event.subject, event.model_dump_json().encode(),
                                        headers={"Nats-Msg-Id": event.msg_id}))
            cases += 1
            next_case += 1 / cases_per_s
        await asyncio.gather(*publishes)
        await asyncio.sleep(max(0.0, start + (reports / rate) - time.perf_counter()))
    elapsed = time.perf_counter() - start
    publishing_done = True
    if sent:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await all_in.wait()
    await sub.unsubscribe()
    await nc.close()
    return Result(cases, len(latencies), reports, elapsed, latencies, picked)


@app.command()
def bench(rate: int = typer.Option(1000, help="background accepted reports per second"),
          seconds: float = typer.Option(30.0, help="how long to publish"),
          cases_per_s: float = typer.Option(10.0, help="fever cases per second")) -> None:
    """Case → open alert latency at a background load of reports (needs a running alerts
    service, e.g. under `rollcall dev`)."""
    nats_url, _ = Settings().require_servers()
    result = asyncio.run(measure(nats_url, rate, seconds, cases_per_s))
    console.print(
        f"{result.reports} reports in {result.seconds:.1f}s ({result.reports_per_s:.0f}/s), "
        f"{result.opened}/{result.cases} cases opened an alert; case → alert.opened "
        f"p50 {result.quantile(0.5) * 1000:.0f} ms, p99 {result.quantile(0.99) * 1000:.0f} ms, "
        f"max {max(result.latencies_s, default=float('nan')) * 1000:.0f} ms "
        "(target p99 ≤ 500 ms); of which publish → taken by the service "
        f"p50 {result.quantile(0.5, result.picked_s) * 1000:.0f} ms, "
        f"p99 {result.quantile(0.99, result.picked_s) * 1000:.0f} ms")

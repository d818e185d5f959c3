"""`rollcall simulate`: a day of reporting against running services, so that the console has
something to show. It takes the units that have not reported yet from aggregate, and sends for a
realistic share of them, through ingest's API with an operator's token: most send a zero report,
some send figures, a few arrive after their cutoff (they are late by the clock, as in life), some
never report (漏报); and now and then a clinic or school finds a fever or flu-like case."""

import asyncio
import contextlib
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import typer
from rich.console import Console

from shared.catalogue import default_catalogue
from shared.settings import Settings

app = typer.Typer(help="Simulate a day of reporting against running services.")
console = Console()

REPORTERS = ["王医生", "李主任", "张老师", "刘会计", "陈站长", "杨书记", "赵园长", "黄药师",
             "周干事", "吴护士", "徐校长", "孙经理", "马主任", "朱医生", "胡老师", "郭院长"]
CLINICS = {"village_clinic", "private_clinic", "township_health_centre", "hospital"}
SCHOOLS = {"primary_school", "middle_school", "kindergarten"}
CASE_FINDERS = CLINICS | SCHOOLS | {"pharmacy"}
# The first example (the README's, and the one `rollcall dev` prints) reports for this unit
# today: the simulator never does, so that the example answers 201 on a fresh `make run` (and
# 200, a retry, when sent again).
EXAMPLE_UNIT = "430621108001-CL"


@dataclass(frozen=True)
class Plan:
    share: float = 0.9  # of the units not yet reported, this many report today
    zero_share: float = 0.7  # of those, this many send a zero report
    burst: float = 0.5  # of those, this many are sent at once (the morning already passed)
    rate: float = 2.0  # then this many reports a second
    case_every_s: float = 60.0  # a case about this often
    seed: int | None = None


def values_for(unit_type: str, rng: random.Random) -> dict[str, int]:
    """Plausible figures for a unit that has something to report."""
    if unit_type in CLINICS:
        fever = rng.choice([0, 0, 0, 1, 1, 2])
        tests = rng.randint(0, 40)
        return {"fever": fever, "ili": rng.randint(0, 2), "nat_tests": tests,
                "nat_positive": 1 if tests and rng.random() < 0.03 else 0}
    if unit_type in SCHOOLS:
        enrolled, absent = rng.randint(80, 600), rng.randint(1, 6)
        return {"enrolled": enrolled, "morning_checks": enrolled - absent,
                "noon_checks": enrolled - absent, "sick_absence": absent,
                "ili": rng.choice([0, 0, 1]), "fever": rng.choice([0, 0, 0, 1])}
    if unit_type == "village_committee":
        return {"home_observation": rng.randint(0, 4), "returnees_risk": rng.randint(0, 2)}
    if unit_type == "pharmacy":
        return {"fever_medicine_sales": rng.randint(0, 5), "fever": rng.choice([0, 1])}
    # Any other type: one small figure for all its form asks (equal figures pass every
    # "no more than" rule of the catalogue).
    form = default_catalogue().form_for(unit_type)
    figure = rng.randint(0, 2)
    return {code: figure for code in (form.required if form else ("fever",))}


def report_for(unit: dict, day: date, rng: random.Random, plan: Plan) -> dict:
    body = {"unit": unit["unit"], "day": day.isoformat(), "reporter": rng.choice(REPORTERS),
            "report_id": str(uuid.uuid4())}
    if rng.random() >= plan.zero_share:
        body["values"] = values_for(unit.get("unit_type") or "", rng)
    return body


def todays_reports(pending: list[dict], day: date, rng: random.Random, plan: Plan
                   ) -> list[dict]:
    """The reports to send today: a share of the units that have not reported yet, in random
    order, never the first example's unit."""
    units = [u for u in pending if u["unit"] != EXAMPLE_UNIT]
    rng.shuffle(units)
    units = units[: round(len(units) * plan.share)]
    return [report_for(u, day, rng, plan) for u in units]


def case_for(unit: dict, now: datetime, zone: ZoneInfo, rng: random.Random,
             minutes_ago: float | None = None) -> dict:
    found = now - timedelta(minutes=minutes_ago if minutes_ago is not None
                            else rng.uniform(1, 25))
    kind = "ili" if unit.get("unit_type") in SCHOOLS and rng.random() < 0.5 else "fever"
    body = {"unit": unit["unit"], "kind": kind, "case_id": str(uuid.uuid4()),
            "found_at": found.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds"),
            "person_ref": f"P-{rng.randrange(16**6):06x}",
            "symptoms": rng.sample(["cough", "sore_throat", "headache", "fatigue"], 2)}
    if kind == "fever":
        body["temperature"] = round(rng.uniform(37.5, 39.4), 1)
    return body


class Simulator:
    def __init__(self, ingest_url: str, aggregate_url: str, token: str, county: str,
                 zone: ZoneInfo, plan: Plan) -> None:
        self.ingest, self.aggregate = ingest_url.rstrip("/"), aggregate_url.rstrip("/")
        self.county, self.zone, self.plan = county, zone, plan
        self.rng = random.Random(plan.seed)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.sent = {"reports": 0, "zero": 0, "cases": 0, "refused": 0}

    def today(self) -> date:
        return datetime.now(self.zone).date()

    async def pending(self, client: httpx.AsyncClient, day: date) -> list[dict]:
        """The units expected today that have not reported yet: pending (before their cutoff)
        or missing (after it)."""
        r = await client.get(f"{self.aggregate}/v1/rollups/{self.county}/completeness",
                             params={"day": day.isoformat()}, headers=self.headers)
        r.raise_for_status()
        completeness = r.json()["completeness"]
        return completeness["pending_units"] + completeness["missing_units"]

    async def post(self, client: httpx.AsyncClient, path: str, body) -> httpx.Response:
        r = await client.post(f"{self.ingest}{path}", json=body, headers=self.headers)
        if r.status_code >= 400:
            self.sent["refused"] += 1
            console.print(f"[yellow]refused[/] {path}: {r.text[:200]}")
        return r

    async def send_report(self, client: httpx.AsyncClient, body: dict) -> None:
        r = await self.post(client, "/v1/reports", body)
        if r.status_code < 400:
            self.sent["reports"] += 1
            self.sent["zero"] += "values" not in body

    async def send_case(self, client: httpx.AsyncClient, units: list[dict],
                        minutes_ago: float | None = None) -> None:
        finders = [u for u in units if u.get("unit_type") in CASE_FINDERS] or units
        if not finders:
            return
        body = case_for(self.rng.choice(finders), datetime.now(UTC), self.zone, self.rng,
                        minutes_ago)
        if (await self.post(client, "/v1/cases", body)).status_code < 400:
            self.sent["cases"] += 1

    async def run(self, duration_s: float | None = None) -> dict:
        async with httpx.AsyncClient(timeout=30) as client:
            day = self.today()
            everyone = await self.pending(client, day)
            bodies = todays_reports(everyone, day, self.rng, self.plan)
            first = round(len(bodies) * self.plan.burst)
            for i in range(0, first, 500):
                chunk = bodies[i:i + 500]
                r = await self.post(client, "/v1/reports/bulk", chunk)
                if r.status_code < 400:
                    self.sent["reports"] += r.json().get("accepted", 0)
                    self.sent["zero"] += sum("values" not in b for b in chunk)
            # Two cases from the morning: one found 100 minutes ago, close to its deadline.
            await self.send_case(client, everyone, minutes_ago=100)
            await self.send_case(client, everyone)
            console.print(f"simulator: {first} reports sent at once, {len(bodies) - first} to "
                          f"come at {self.plan.rate}/s, a case about every "
                          f"{self.plan.case_every_s:.0f} s")
            loop = asyncio.get_running_loop()
            started = next_case = loop.time()
            next_case += self.plan.case_every_s
            for body in bodies[first:]:
                if duration_s is not None and loop.time() - started > duration_s:
                    break
                await self.send_report(client, body)
                if loop.time() >= next_case:
                    await self.send_case(client, everyone)
                    next_case = loop.time() + self.rng.uniform(0.5, 1.5) * self.plan.case_every_s
                await asyncio.sleep(1 / self.plan.rate)
            # The day goes on: only cases now, until stopped.
            while duration_s is None or loop.time() - started < duration_s:
                if day != self.today():
                    break
                await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.plan.case_every_s)
                await self.send_case(client, everyone)
        return self.sent


@app.callback(invoke_without_command=True)
def simulate(
    token: str = typer.Option(..., envvar="ROLLCALL_SIMULATE_TOKEN",
                              help="an operator's token for the county"),
    county: str = typer.Option("430621", help="the county to report for"),
    share: float = typer.Option(0.9, min=0, max=1, help="share of units that report today"),
    zero_share: float = typer.Option(0.7, min=0, max=1, help="share of zero reports"),
    burst: float = typer.Option(0.5, min=0, max=1, help="share sent at once at the start"),
    rate: float = typer.Option(2.0, min=0.01, help="reports a second after the burst"),
    case_every: float = typer.Option(60.0, min=1, help="seconds between cases, about"),
    duration: float | None = typer.Option(None, help="stop after this many seconds"),
    seed: int | None = typer.Option(None, help="random seed, for a repeatable day"),
    ingest_url: str | None = typer.Option(None, help="default: the local ingest port"),
    aggregate_url: str | None = typer.Option(None, help="default: the local aggregate port"),
) -> None:
    """Send a day's reports and a few cases at a gentle rate (Ctrl-C stops)."""
    settings = Settings()
    base = f"http://{settings.http_host}"
    simulator = Simulator(ingest_url or f"{base}:{settings.ingest_port}",
                          aggregate_url or f"{base}:{settings.aggregate_port}", token, county,
                          settings.zone, Plan(share, zero_share, burst, rate, case_every, seed))
    with contextlib.suppress(KeyboardInterrupt):
        sent = asyncio.run(simulator.run(duration))
        console.print(f"simulator: {sent}")


def start_beside_dev(env: dict[str, str], token: str, log_path: Path) -> subprocess.Popen:
    """The simulator as its own process beside `rollcall dev`'s services (its output goes to a
    log file, so that the terminal keeps the addresses readable)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # the child process writes to it
    return subprocess.Popen([sys.executable, "-m", "rollcall", "simulate"],
                            env={**env, "ROLLCALL_SIMULATE_TOKEN": token}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)

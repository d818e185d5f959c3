"""What the notify tests run against besides NATS and PostgreSQL: a real SMTP server (aiosmtpd)
and a local HTTP server standing in for the SMS gateway and the WeCom / DingTalk robots, both
on 127.0.0.1; notify's use cases wired to them with a clock the test moves; staff to tell."""

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rollcall.embedded import free_port
from rollcall.migrate import upgrade
from services.notify import intake, staffing
from services.notify.channels import DingTalkRobot, EmailSender, SmsGateway, WeComRobot
from services.notify.hosts import AllowedHosts
from services.notify.policy import Policy
from services.notify.worker import DeliveryWorker
from shared.contracts import AlertEvent, AlertOpened
from tests.conftest import Servers, _fresh_database
from tests.integration.alerts_harness import FakeClock, local

ZONE = local(date(2031, 1, 1), 0).tzinfo
# Days far from today and from other runs on a shared server.
BASE_DAY = date(2031, 1, 1) + timedelta(days=random.randrange(0, 20_000, 40))
TOWN = "430621108"  # 公田镇
VILLAGE = "430621108001"  # 长源社区
UNIT = f"{VILLAGE}-CL"
SMS_BODY = '{"mobile": "{phone}", "content": "{text}", "ref": "{key}"}'
# The stand-ins listen on 127.0.0.1: the tests' allow-list (ROLLCALL_NOTIFY_ALLOWED_HOSTS).
ALLOWED = "127.0.0.1"
HOSTS = AllowedHosts.parse(ALLOWED)


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict
    message_id: str | None = None  # what the SMS gateway answered with, for its receipt


class Gateway:
    """A local HTTP server that records every POST and answers as an SMS gateway (`/sms`,
    with a `message_id` of its own that its delivery receipts name) or a group robot
    (`/robot/...`) does; `failing[path]` makes it answer 500 that many times
    (-1: always), and `hold(path, key, event)` makes it wait for the event before it answers
    a request whose Idempotency-Key contains `key`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failing: dict[str, int] = {}
        self.holding: list[tuple[str, str, threading.Event]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                robot = parts.path.startswith("/robot/")
                message_id = None if robot else f"gw-{uuid.uuid4().hex[:12]}"
                gateway.requests.append(Request(
                    parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                    dict(self.headers), body, message_id))
                key = self.headers.get("Idempotency-Key", "")
                for path, part, hold in list(gateway.holding):
                    if path == parts.path and part in key:
                        hold.wait(60)
                left = gateway.failing.get(parts.path, 0)
                if left:
                    gateway.failing[parts.path] = left - 1 if left > 0 else left
                    self._answer(500, {"error": "gateway down"})
                elif robot:
                    self._answer(200, {"errcode": 0, "errmsg": "ok"})
                else:
                    self._answer(200, {"status": "queued", "message_id": message_id})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the sender is gone (a killed service): nobody to answer
                    pass

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, path: str, key: str, until: threading.Event) -> None:
        self.holding.append((path, key, until))

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        for _, _, hold in self.holding:
            hold.set()
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd's handler: keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m.rcpt_tos]


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Notify:
    """Notify's use cases on the test's servers: take events as the consumer does, and run
    delivery workers as the service does."""

    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    policy: Policy
    gateway: Gateway
    smtp: SmtpServer
    client: httpx.AsyncClient
    channels: tuple[str, ...] = ("sms", "email", "wecom", "dingtalk")
    workers: list[DeliveryWorker] = field(default_factory=list)

    def reset(self, day: date) -> None:
        """A test of its own: the clock at 10:00 on its own day, nothing received yet."""
        self.clock.set(local(day, 10))
        self.gateway.requests.clear()
        self.gateway.failing.clear()
        self.gateway.holding.clear()
        self.smtp.mailbox.messages.clear()

    def worker(self, batch: int = 8) -> DeliveryWorker:
        senders = {"wecom": WeComRobot(self.client, HOSTS),
                   "dingtalk": DingTalkRobot(self.client, HOSTS),
                   "email": EmailSender("127.0.0.1", self.smtp.port, "rollcall@test.local"),
                   "sms": SmsGateway(self.client, f"{self.gateway.url}/sms", SMS_BODY, HOSTS,
                                     token="sms-token")}
        return DeliveryWorker(self.sessions, senders, self.policy, self.clock, batch=batch,
                              send_timeout_s=5)

    async def take(self, *events: AlertEvent) -> int:
        """One batch, as the consumer takes it: one transaction, committed."""
        async with self.sessions() as session, session.begin():
            return await intake.take_alert_events(session, list(events), self.policy,
                                                  self.channels, ZONE, self.clock())

    async def import_staff(self, kind: str, content: str, area: str = "430621") -> None:
        async with self.sessions() as session, session.begin():
            _, problems = await staffing.import_staff(
                session, kind, content.encode(), kind, False, area, self.clock(),
                self.clock().astimezone(ZONE).date(), hosts=HOSTS)
        assert not problems, [str(p) for p in problems]

    async def roster(self, day: date, *shifts: tuple[str, str], node: str = VILLAGE) -> None:
        """The node's roster for the day: (person, role) for the whole day each."""
        async with self.sessions() as session, session.begin():
            _, problems = await staffing.put_roster_day(
                session, node, day, [{"person": p, "role": r} for p, r in shifts], node,
                day)
        assert not problems, [str(p) for p in problems]

    async def deliveries(self, alert_id: uuid.UUID) -> list:
        async with self.sessions() as session:
            return list((await session.execute(text(
                "SELECT person, channel, status, attempts, last_error, role FROM "
                "notify.deliveries WHERE :a = ANY(alert_ids) ORDER BY person, channel"),
                {"a": alert_id})).all())

    async def drain(self, worker: DeliveryWorker | None = None) -> int:
        worker = worker or self.worker()
        total = 0
        while (n := await worker.run_once()) > 0:
            total += n
        return total


def people_csv(gateway: Gateway) -> str:
    """Staff of the demo village: 张三 and 李四 take turns on duty, 赵书记 leads and is in
    charge of the village, 钱医生 is in charge of its clinic."""
    return (
        "code,name,node,phone,email,chat_kind,chat_webhook,chat_secret\n"
        f"zhang,张三,{VILLAGE},139-1234-5678,zhang@example.cn,wecom,"
        f"{gateway.url}/robot/wecom/zhang,\n"
        f"li,李四,{VILLAGE},13987654321,li@example.cn,dingtalk,"
        f"{gateway.url}/robot/dingtalk/li,SEC-li-secret\n"
        f"zhao,赵书记,{VILLAGE},13711112222,zhao@example.cn,,,\n"
        f"qian,钱医生,{VILLAGE},13600001111,,,,\n")


CONTACTS_CSV = (f"scope,role,person\n{VILLAGE},in_charge,zhao\n{UNIT},in_charge,qian\n")
PHONES = ("13912345678", "139-1234-5678", "13987654321", "13711112222", "13600001111")


def opened(day: date, hh: int = 10, node: str = VILLAGE) -> AlertOpened:
    at = local(day, hh)
    return AlertOpened(alert_id=uuid.uuid4(), seq=1, kind="case", node=node, unit=UNIT,
                       unit_type="village_clinic", recipients=["village_committee"],
                       level="village", responsible=node, status="open",
                       deadline=(at + timedelta(hours=2)).astimezone(UTC), late=False,
                       at=at.astimezone(UTC), actor="system", case_id=uuid.uuid4(),
                       case_kind="fever", started_at=at.astimezone(UTC))


def notify_database(servers: Servers) -> str:
    """A fresh database of notify's tests' own, migrated (the demo county is loaded after)."""
    url = _fresh_database(servers.database_url)
    upgrade(url)
    return url


def missing(day: date, node: str, units: list[str], cutoff: str = "14:00") -> AlertOpened:
    """The missing-report alert the alerts service opens for a node at a cutoff."""
    at = local(day, int(cutoff[:2]), int(cutoff[3:])) + timedelta(minutes=1)
    return AlertOpened(alert_id=uuid.uuid4(), seq=1, kind="missing_report", node=node,
                       recipients=["village_committee"], level="village", responsible=node,
                       status="open", deadline=(at + timedelta(hours=2)).astimezone(UTC),
                       late=False, at=at.astimezone(UTC), actor="system",
                       started_at=at.astimezone(UTC),
                       details={"day": day.isoformat(), "cutoff": cutoff, "units": [
                           {"unit": f"{node}-{i}", "name": name, "unit_type": "pharmacy"}
                           for i, name in enumerate(units)]})

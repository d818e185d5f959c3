"""The notify service's composition root: settings → policy → engine and broker → channels →
worker (with the reminders) → consumers → routes. Nothing connects at import."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from fastapi import FastAPI

from services.notify import handlers, routes, store
from services.notify.channels import DingTalkRobot, EmailSender, Sender, SmsGateway, WeComRobot
from services.notify.hosts import AllowedHosts
from services.notify.metrics import PENDING
from services.notify.models import NotifyOutboxRow
from services.notify.policy import load_policy
from services.notify.service import NotifyContext
from services.notify.sight import AlertsSight
from services.notify.worker import DeliveryWorker
from shared import unavailable
from shared.bus import make_broker
from shared.clock import utc_now
from shared.health import health_router
from shared.http_problems import install_problems
from shared.observability import metrics_router
from shared.runtime import Background, connected, running
from shared.settings import Settings


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def allowed_hosts(settings: Settings) -> AllowedHosts:
    """The hosts notify may send to; an SMS gateway elsewhere stops the start."""
    hosts = AllowedHosts.parse(settings.notify_allowed_hosts)
    if settings.notify_sms_url and (reason := hosts.refusal(settings.notify_sms_url)):
        raise ValueError(f"ROLLCALL_NOTIFY_SMS_URL refused: {reason}")
    return hosts


def senders(settings: Settings, client: httpx.AsyncClient) -> dict[str, Sender]:
    """The channels this deployment can send by: the robots always (their addresses are the
    people's), e-mail and SMS when their server is configured."""
    hosts = allowed_hosts(settings)
    out: dict[str, Sender] = {"wecom": WeComRobot(client, hosts),
                              "dingtalk": DingTalkRobot(client, hosts)}
    if settings.notify_smtp_host:
        out["email"] = EmailSender(
            settings.notify_smtp_host, settings.notify_smtp_port, settings.notify_smtp_sender,
            settings.notify_smtp_user, _secret(settings.notify_smtp_password),
            settings.notify_smtp_starttls, settings.notify_send_timeout_s)
    if settings.notify_sms_url:
        out["sms"] = SmsGateway(client, settings.notify_sms_url, settings.notify_sms_body, hosts,
                                _secret(settings.notify_sms_token), settings.notify_sms_user,
                                _secret(settings.notify_sms_password),
                                settings.notify_sms_id_field)
    return out


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    policy = load_policy(settings.notify_config)  # a bad policy stops the start
    hosts = allowed_hosts(settings)  # and so does an SMS gateway on a host not allowed
    broker = make_broker(nats_url, "notify")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Parameters hidden from database errors: they may be a phone number or e-mail address.
        # Delivery outcomes go to the alerts service through notify's outbox.
        base = await connected(app, broker, settings, database_url, NotifyOutboxRow,
                               hide_parameters=True)
        client = httpx.AsyncClient(timeout=settings.notify_send_timeout_s)
        channels = senders(settings, client)
        worker = DeliveryWorker(base.sessions, channels, policy, clock,
                                send_timeout_s=settings.notify_send_timeout_s,
                                published=base.relay.wake)
        sight = AlertsSight(settings.notify_alerts_url or
                            f"http://127.0.0.1:{settings.http_port or settings.alerts_port}")
        ctx = NotifyContext(settings, clock, base.sessions, policy, tuple(channels), worker,
                            base.reference, hosts, base.relay, alerts=sight)
        worker.chores.append(ctx.remind)
        app.state.notify = ctx
        # The delivery worker stops after the consumers (no new deliveries recorded) and
        # finishes the round in hand.
        deliveries = ([Background("notify-deliveries", lambda: worker.run(settings.notify_poll_s),
                                  stop=worker.stop)] if settings.notify_poll_s > 0 else [])
        try:
            async with running(app, broker, base.engine, consumers=handlers.consumers(base.nc, ctx),
                               relay=base.relay, background=deliveries,
                               registry_changed=ctx.reload_reference):
                yield
        finally:
            await client.aclose()
            await sight.close()

    app = FastAPI(title="Rollcall notify", version="0.1.0", lifespan=lifespan,
                  description="Staff contacts and duty rosters; alerts delivered to the people "
                              "on duty by e-mail, SMS and group robots.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router(_refresh_pending))
    install_problems(app)
    unavailable.install(app)
    return app


async def _refresh_pending(app: FastAPI) -> None:
    async with app.state.notify.sessions() as session:
        pending = await store.pending_by_channel(session)
    PENDING.clear()
    for channel, count in pending.items():
        PENDING.labels(channel).set(count)

"""Typed settings, read once from the environment (prefix ROLLCALL_)."""

from datetime import time
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EditionSchedule(BaseModel):
    """A node's summary produced every day at a time of day (the deployment's zone)."""

    node: str = Field(pattern=r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$",
                      description="a division code: 2, 4, 6, 9 or 12 digits")
    at: time


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROLLCALL_", env_file=".env", extra="ignore")

    # Unset means "start the embedded server" (dev and tests); services require them.
    nats_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ROLLCALL_NATS_URL", "NATS_URL")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ROLLCALL_DATABASE_URL", "DATABASE_URL")
    )
    timezone: str = "Asia/Shanghai"
    http_host: str = "127.0.0.1"
    ingest_port: int = 8101
    aggregate_port: int = 8102
    alerts_port: int = 8103
    data_dir: Path = Path(".rollcall")
    # Consumers of a deployment may take only some counties: "report.accepted.430621.>".
    aggregate_filter: str = "report.accepted.>"
    aggregate_batch: int = 1000
    # Batches one aggregate replica applies at once (the next is fetched while one commits).
    aggregate_concurrency: int = 2
    # Seconds a batch taken by an aggregate replica stays its own before another may take it
    # (when the replica died before acknowledging). Set when the durable consumer is created.
    aggregate_ack_wait: float = 60.0
    # RollupUpdated for a node and day at most once per this many seconds (live views).
    rollup_updated_interval: float = 1.0
    stream_replicas: int = 1  # 3 on a NATS cluster
    lock_days: int = 7  # reports older than this many days are locked (only operators correct)
    # Ingest.
    auth_cache_s: float = 5.0  # a verified token is trusted this long (revocation delay); 0: never
    bulk_max_items: int = 10_000  # reports in one bulk request
    fever_threshold_c: float = 37.3  # a fever case reports at least this temperature
    clock_skew_s: int = 300  # how far in the future a case's found time may be (device clocks)
    # Submissions per unit (HTTP and bus alike): a burst of this many, then one every
    # `submit_rate_interval_s` seconds; a 429 beyond. Per ingest replica. 0 turns it off.
    submit_rate_burst: int = 20
    submit_rate_interval_s: float = 10.0
    # Ingest's statements, connections and pool waits end after this many seconds: a hung
    # PostgreSQL is answered with 503, not a request that never returns. Generous: a bulk of
    # 10,000 reports is one statement.
    ingest_db_timeout_s: float = 30.0
    submit_batch: int = 1000  # bus submissions taken per batch
    submit_ack_wait_s: int = 30  # a batch taken by an ingest that died is redelivered after this
    # Ingest's durable consumer of signoff's send-backs (SIGNOFF stream), shown to the units.
    ingest_signoff_durable: str = "ingest-signoff"
    # Test hooks, off by default: hold committed events in the outbox; die like `kill -9` after
    # publishing a batch and before deleting it from the outbox.
    # Events the outbox relay publishes per round: a bulk request's worth, so that the relay
    # keeps pace with intake while bulk requests hold the event loop.
    relay_batch: int = 10_000
    relay_paused: bool = False
    relay_crash_after_publish: bool = False
    # Deployment: in a container every service listens on one port (the image sets 8080),
    # overriding the per-service ports above; logs are JSON lines for a log collector.
    http_port: int | None = None
    log_level: str = "WARNING"
    log_format: Literal["json", "text"] = "json"
    # The rules of every clock (default shared/data/rules.toml): deadlines by case kind and unit
    # type, escalation, outbreaks, missing reports, recipients. Ingest and alerts read the same.
    rules: Path | None = Field(
        default=None, validation_alias=AliasChoices("ROLLCALL_RULES", "ROLLCALL_ALERTS_RULES"))
    # Alerts: how often the clock looks for due deadlines (0: only when asked, as tests do), and
    # the durable consumers' base name.
    alerts_tick_s: float = 2.0
    alerts_durable: str = "alerts"
    # DHIS2 data value sets: the mapping of metric and node/unit codes to the instance's UIDs
    # (default: the shipped example, shared/data/dhis2/mapping.example.toml). Ingest (import,
    # units' export) and aggregate (nodes' export) read the same file.
    dhis2_mapping: Path | None = None
    # Console: its port, and where it finds the other services (default: their local ports).
    console_port: int = 8100
    console_ingest_url: str | None = None
    console_aggregate_url: str | None = None
    console_alerts_url: str | None = None
    console_notify_url: str | None = None
    console_signoff_url: str | None = None
    console_secure_cookie: bool = False  # True behind HTTPS: the sign-in cookie is Secure
    # Scheduled editions of the summary (console): JSON, e.g.
    # [{"node": "430621108", "at": "14:30"}, {"node": "430621", "at": "15:00"}]; each is made
    # once a day with an operator token whose area holds every node (`rollcall token issue
    # --operator 430621 --holder 定时日报`); how often the console looks for one due.
    editions: list[EditionSchedule] = []
    editions_token: SecretStr | None = None
    editions_poll_s: float = 10.0
    # Notify: its port and durable consumer; what is sent when (default
    # services/notify/data/notify.toml); how often the worker looks for due deliveries (0: only
    # when woken, as tests do). Channels are on when configured: e-mail with an SMTP host, SMS
    # with a gateway URL (its JSON body template fills {phone}, {text}, {title} and {key}).
    notify_port: int = 8104
    notify_durable: str = "notify"
    notify_config: Path | None = None
    notify_poll_s: float = 1.0
    notify_send_timeout_s: float = 15.0
    notify_smtp_host: str | None = None
    notify_smtp_port: int = 25
    notify_smtp_sender: str = "rollcall@localhost"
    notify_smtp_user: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_starttls: bool = False
    notify_sms_url: str | None = None
    notify_sms_body: str = '{"to": "{phone}", "text": "{text}"}'
    notify_sms_token: SecretStr | None = None
    notify_sms_user: str | None = None
    notify_sms_password: SecretStr | None = None
    # Where in the gateway's JSON answer its message id is (dotted: `data.msgid`); its delivery
    # receipts, posted to POST /v1/receipts/sms with this secret, name that id.
    notify_sms_id_field: str = "message_id"
    notify_sms_receipt_secret: SecretStr | None = None
    # The hosts notify may send to: robot webhooks and the SMS gateway (comma-separated; an
    # entry `*.example.cn` allows its subdomains). Default: WeCom's and DingTalk's robots.
    notify_allowed_hosts: str = "qyapi.weixin.qq.com,oapi.dingtalk.com"
    # Where notify asks which alerts a sector operator sees (alerts; default its local port).
    notify_alerts_url: str | None = None
    # The console's address as people reach it (https://rollcall.example.cn): notify's message
    # that an edition is out links to its workbook there; unset, it gives the console's path.
    console_url: str | None = None

    # Signoff (逐级审核上报): its port and durable consumers; which levels confirm and by when
    # (default shared/data/signoff.toml, read by shared/signoff_rules.py; alerts reads it too).
    signoff_port: int = 8105
    signoff_durable: str = "signoff"
    signoff_config: Path | None = None

    # The ledger of people under control (services/ledger, 一人一案): its port, its regimes
    # (default services/ledger/data/regimes.toml), and how often it looks for a new day
    # (0: only when asked, as tests do).
    ledger_port: int = 8106
    ledger_regimes: Path | None = None
    ledger_tick_s: float = 30.0
    # Where the ledger submits each village's headcounts (ingest; default its local port), and
    # with which operator token (default: one it issues itself at start and revokes at stop).
    ledger_ingest_url: str | None = None
    ledger_ingest_token: SecretStr | None = None
    console_ledger_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str | None) -> str | None:
        """Accept plain postgresql:// URLs and use the asyncpg driver for them."""
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        return url

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        ZoneInfo(zone)
        return zone

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def require_servers(self) -> tuple[str, str]:
        if not self.nats_url or not self.database_url:
            raise RuntimeError(
                "ROLLCALL_NATS_URL and ROLLCALL_DATABASE_URL must be set "
                "(or run `rollcall dev`, which starts embedded servers)"
            )
        return self.nats_url, self.database_url

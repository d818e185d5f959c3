"""The channels a notification goes out by: e-mail over SMTP, the WeCom and DingTalk group
robots (text messages), and a generic HTTP SMS gateway. Each sender raises `DeliveryFailed`
with a reason fit for the record: the reason names what went wrong, never the address.

What "sent" means differs by channel: an SMTP server's 250 (the mail server accepted it, not
that anyone read it), a robot's `errcode` 0 (the message is in the group), the SMS gateway's
2xx (the gateway queued it). Only the SMS gateway says later whether the message reached the
phone, in a delivery receipt (services/notify/receipts.py): that is "delivered". A sender
returns the id the gateway gave the message, if any, for its receipt to find."""

import asyncio
import base64
import hashlib
import hmac
import json
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import httpx

from services.notify.hosts import AllowedHosts
from services.notify.staff import Person


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: str  # the delivery's own key: receivers that deduplicate see one message per delivery
    title: str
    body: str


class DeliveryFailed(Exception):
    """The channel did not take the message; `str()` is the reason recorded."""


class DeliveryRefused(DeliveryFailed):
    """Notify will not send there (a host not allowed): failed for good, not tried again."""


class Sender(Protocol):
    async def send(self, message: Outgoing, person: Person) -> str | None:
        """Sends, or raises DeliveryFailed; the gateway's id of the message, if it gave one."""
        ...


def _allowed(hosts: AllowedHosts, what: str, url: str) -> str:
    if reason := hosts.refusal(url):
        raise DeliveryRefused(f"{what}: {reason}")
    return url


def _address(person: Person, channel: str) -> str:
    address = person.address(channel)
    if not address:
        raise DeliveryFailed(f"no {channel} address on record")
    return address


class EmailSender:
    """Plain-text mail through one SMTP server (stdlib smtplib, in a thread). The Message-ID
    comes from the delivery's key, so a retried message is recognisably the same."""

    def __init__(self, host: str, port: int, sender: str, user: str | None = None,
                 password: str | None = None, starttls: bool = False,
                 timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls = user, password, starttls
        self.timeout_s = timeout_s

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)

    async def send(self, message: Outgoing, person: Person) -> None:
        """Sent once the server answers 250 to the message (the mail is in its hands)."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = _address(person, "email")
        mail["Subject"] = message.title
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{hashlib.sha256(message.key.encode()).hexdigest()[:32]}@rollcall>"
        mail.set_content(message.body)
        try:
            await asyncio.to_thread(self._send, mail)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("SMTP: recipient refused") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}") from None


async def _post(client: httpx.AsyncClient, what: str, url: str, **kwargs) -> httpx.Response:
    try:
        response = await client.post(url, **kwargs)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{what}: {type(exc).__name__}") from None
    if not response.is_success:
        raise DeliveryFailed(f"{what}: HTTP {response.status_code}")
    return response


def _robot_answer(what: str, response: httpx.Response) -> None:
    """Both robots answer 200 with `errcode` 0 when they took the message."""
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryFailed(f"{what}: not a JSON answer") from None
    if not isinstance(answer, dict) or answer.get("errcode") != 0:
        code = answer.get("errcode") if isinstance(answer, dict) else None
        text = str(answer.get("errmsg", ""))[:100] if isinstance(answer, dict) else ""
        raise DeliveryFailed(f"{what}: errcode {code} {text}".rstrip())


class WeComRobot:
    """A WeCom (企业微信) group robot: POST a text message to the group's webhook URL."""

    def __init__(self, client: httpx.AsyncClient, hosts: AllowedHosts) -> None:
        self.client, self.hosts = client, hosts

    async def send(self, message: Outgoing, person: Person) -> None:
        url = _allowed(self.hosts, "wecom", _address(person, "wecom"))
        response = await _post(self.client, "wecom", url,
                               json={"msgtype": "text", "text": {"content": message.body}})
        _robot_answer("wecom", response)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature of a robot call: base64 of HMAC-SHA256, keyed with the robot's
    secret, over "<timestamp in ms>\\n<secret>" (sent URL-encoded as `sign`, beside
    `timestamp`; DingTalk refuses a timestamp more than an hour off)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkRobot:
    """A DingTalk (钉钉) group robot: POST a text message to the webhook URL, signed when the
    robot has a secret."""

    def __init__(self, client: httpx.AsyncClient, hosts: AllowedHosts,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.client, self.hosts, self.clock_ms = client, hosts, clock_ms

    async def send(self, message: Outgoing, person: Person) -> None:
        url = _allowed(self.hosts, "dingtalk", _address(person, "dingtalk"))
        params = {}
        if person.chat_secret:
            timestamp = self.clock_ms()
            params = {"timestamp": str(timestamp),
                      "sign": dingtalk_sign(person.chat_secret, timestamp)}
        response = await _post(self.client, "dingtalk", url, params=params,
                               json={"msgtype": "text", "text": {"content": message.body}})
        _robot_answer("dingtalk", response)


def fill(template: object, values: dict[str, str]) -> object:
    """The SMS gateway's JSON body template with `{phone}`, `{text}`, `{title}` and `{key}`
    filled in its strings (values are never parsed as JSON: a quote in a text stays a quote)."""
    if isinstance(template, str):  # one pass: a filled-in text is never filled again
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    return template


def answer_field(answer: object, path: str) -> str | None:
    """The value at a dotted `path` of a JSON answer (`message_id`, `data.msgid`), as text."""
    for part in path.split(".") if path else ():
        if not isinstance(answer, dict) or part not in answer:
            return None
        answer = answer[part]
    if isinstance(answer, str | int) and not isinstance(answer, bool) and str(answer):
        return str(answer)[:200]
    return None


class SmsGateway:
    """A generic HTTP SMS gateway: POST the body template, filled, as JSON; a 2xx answer means
    it took the message (sent), and the message id it answers with (at `id_field`) is what its
    delivery receipt will name. The delivery's key goes in `Idempotency-Key`."""

    def __init__(self, client: httpx.AsyncClient, url: str, body_template: str,
                 hosts: AllowedHosts, token: str | None = None, user: str | None = None,
                 password: str | None = None, id_field: str = "message_id") -> None:
        self.client, self.url, self.hosts, self.id_field = client, url, hosts, id_field
        self.template = json.loads(body_template)  # checked at start: a bad one stops it
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.auth = httpx.BasicAuth(user, password or "") if user else None

    async def send(self, message: Outgoing, person: Person) -> str | None:
        url = _allowed(self.hosts, "sms", self.url)
        body = fill(self.template, {"phone": _address(person, "sms"), "text": message.body,
                                    "title": message.title, "key": message.key})
        response = await _post(self.client, "sms", url, json=body, auth=self.auth,
                               headers={**self.headers, "Idempotency-Key": message.key})
        try:
            return answer_field(response.json(), self.id_field)
        except ValueError:  # taken without a JSON answer: sent, no receipt to expect
            return None

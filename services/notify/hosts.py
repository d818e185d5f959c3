"""Which hosts notify may send to: a robot's webhook (from the staff records) and the SMS
gateway's URL (from settings) must name a host of the deployment's allow-list
(`ROLLCALL_NOTIFY_ALLOWED_HOSTS`), so that a staff record cannot turn notify into a way of
posting the duty roster's messages anywhere. Checked when a record is imported, when the
service starts (the gateway) and again before each send. Pure: no I/O."""

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """Host names, exact (`oapi.dingtalk.com`) or every subdomain of one (`*.example.cn`)."""

    hosts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "AllowedHosts":
        """A comma- or space-separated list."""
        return cls(tuple(h.strip().lower().rstrip(".")
                         for h in text.replace(",", " ").split() if h.strip()))

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or (h.startswith("*.") and host.endswith(h[1:]))
                   for h in self.hosts)

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be sent to (its host named, never the rest: a webhook's path and
        query hold its key); None when it may."""
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return "not a URL"
        if parts.scheme not in ("http", "https") or not host:
            return "not an http(s) URL"
        if not self.allows(host):
            return f"host {host} is not in ROLLCALL_NOTIFY_ALLOWED_HOSTS"
        return None

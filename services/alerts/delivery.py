"""Where alerts go and how: Apprise URLs (one send per URL, so a retry never repeats a
target that already accepted), the message in words, and the send claims in Redis.

URLs come from ``AEGIS_ALERTS_URLS`` (comma or space separated) and/or the file named by
``AEGIS_ALERTS_URLS_FILE`` (one or more per line, ``#`` comments). They are secrets (bot
tokens, webhook paths): only their scheme is ever logged, and a failure's reason has every
part of the URL blanked out.

Claims: before sending, an alert is claimed with ``SET NX`` under
``aegis:alerts:claim:<alert id>`` (expiring after ``alerts_claim_ttl_s``). The record says
``pending`` (with the owner and the targets that accepted it so far), then ``sent`` or
``dead`` (dead-lettered after ``alerts_send_attempts`` tries). Only the lease holder sends
(services.alerts.main), so a ``pending`` claim it meets was left by a leader that died or
lost its lease mid-send: it takes the claim over and sends to the targets not yet marked.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import orjson
import redis

from services.alerts.evaluate import Alert
from shared.bus import streams
from shared.config import Settings

# Apprise logs through the standard logging module (at DEBUG, URLs and payloads): warnings
# and errors only, kept out of the service's log (a send result carries them, redacted).
_apprise_log = logging.getLogger("apprise")
_apprise_log.setLevel(logging.WARNING)
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())

NOTIFY_TYPE = {"info": "info", "warning": "warning", "critical": "failure"}


@dataclass(frozen=True)
class Target:
    """One Apprise URL; ``id`` (a hash) and ``scheme`` are safe to log or store, ``url`` not."""

    id: str
    scheme: str
    url: str = field(repr=False)

    @classmethod
    def of(cls, url: str) -> Target:
        scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
        return cls(hashlib.sha256(url.encode()).hexdigest()[:12], scheme, url)

    def redact(self, text: str) -> str:
        """``text`` with the URL and each of its parts (host, user, password, path
        segments, query values) blanked out."""
        parts = urlsplit(self.url)
        secrets = {self.url, parts.netloc, parts.query}
        secrets.update(unquote(p) for p in re.split(r"[/@:?&=]", self.url.split("://", 1)[-1]))
        secrets.update(p for p in parts.path.split("/"))
        for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
            text = text.replace(secret, "…")
        return text


def split_urls(text: str) -> list[str]:
    return [u for u in re.split(r"[\s,]+", text) if u and not u.startswith("#")]


def load_targets(settings: Settings) -> list[Target]:
    """The configured targets (environment first, then the secrets file), duplicates once."""
    urls = split_urls(settings.alerts_urls)
    if settings.alerts_urls_file is not None:
        lines = Path(settings.alerts_urls_file).read_text(encoding="utf-8").splitlines()
        urls += [u for line in lines for u in split_urls(line.split("#", 1)[0])]
    seen: dict[str, Target] = {}
    for url in urls:
        target = Target.of(url)
        seen.setdefault(target.id, target)
    return list(seen.values())


def dashboard_link(settings: Settings, as_of: int) -> str:
    base = (settings.public_url or f"http://127.0.0.1:{settings.gateway_port}").rstrip("/")
    return f"{base}/#at={as_of * 1000}"


def message(alert: Alert, link: str) -> tuple[str, str]:
    """(title, body): what happened in words, the value, the rule, the link."""
    title = f"AegisMatrix {alert.severity.upper()}: {alert.text[:80]}"
    body = (
        f"{alert.text}.\n"
        f"Value: {alert.value}\n"
        f"Rule: {alert.rule} ({alert.kind}) on {alert.subject}: "
        f"{alert.transition[0]} -> {alert.transition[1]}\n"
        f"At: {alert.to_json()['as_of_ist']} ({alert.engine} block)\n"
        f"Dashboard: {link}\n"
        f"Alert id: {alert.id}"
    )
    return title, body


class Sender(Protocol):
    def send(self, target: Target, title: str, body: str, severity: str) -> tuple[bool, str]:
        """(accepted, why not)."""
        ...


class AppriseSender:
    """Sends through Apprise, one Apprise object per target (built once)."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}

    def send(self, target: Target, title: str, body: str, severity: str) -> tuple[bool, str]:
        import apprise

        obj = self._objects.get(target.id)
        if obj is None:
            obj = apprise.Apprise()
            if not obj.add(target.url):
                return False, f"{target.scheme}:// URL not understood by Apprise"
            self._objects[target.id] = obj
        result = obj.notify(body=body, title=title, notify_type=NOTIFY_TYPE.get(severity, "info"))
        if result:
            return True, ""
        lines = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        reason = "; ".join(lines) or f"Apprise status {result.status}"
        return False, target.redact(reason)


# Claims ---------------------------------------------------------------------------------------
PENDING, SENT, DEAD = "pending", "sent", "dead"


def claim_key(alert_id: str) -> str:
    return f"{streams.ALERTS_PREFIX}claim:{alert_id}"


class Claims:
    """The send claims of alerts (see the module docstring)."""

    def __init__(self, client: redis.Redis, ttl_s: int, owner: str) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.owner = owner

    def take(self, alert: Alert) -> tuple[dict[str, Any], str | None]:
        """(claim record, previous owner when taken over). A record whose state is not
        ``pending`` is finished: nothing to send."""
        key = claim_key(alert.id)
        record = {
            "key": alert.key,
            "state": PENDING,
            "owner": self.owner,
            "claimed_at": int(time.time() * 1000),
            "sent": [],
            "dead": [],
        }
        if self.client.set(key, orjson.dumps(record), nx=True, ex=self.ttl_s):
            return record, None
        raw = self.client.get(key)
        if raw is None:  # expired between SET NX and GET: claim again
            return self.take(alert)
        existing: dict[str, Any] = orjson.loads(raw)
        if existing.get("state") != PENDING:
            return existing, None
        previous = str(existing.get("owner"))
        existing["owner"] = self.owner
        self.save(alert.id, existing)
        return existing, previous if previous != self.owner else None

    def save(self, alert_id: str, record: dict[str, Any], pipe: Any = None) -> None:
        (pipe or self.client).set(claim_key(alert_id), orjson.dumps(record), ex=self.ttl_s)

"""For the alerts tests: a real local HTTP receiver (Apprise's ``json://`` target posts to it),
alerts service subprocesses, and a scripted block sequence with known alerts."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shared.config import Settings
from shared.contract.schemas import SignalBlock
from tests.block_factory import AS_OF, make_block
from tests.ports import free_port
from tests.processes import start_service
from tests.waiting import wait_for

T = TypeVar("T")

START = AS_OF - 4 * 3600  # 2025-06-30 11:00 IST: outside every quiet span of the tests

RULES = """
[[rule]]
name = "spot_safe_range"
kind = "band"
severity = "critical"
value = "market.spot"
low_path = "seller.safe_range.lower"
high_path = "seller.safe_range.upper"
hysteresis = 15.0
notify_on = ["below", "above", "inside"]
label = "NIFTY spot"
unit = "pts"

[[rule]]
name = "seller_flag"
kind = "label"
path = "seller.seller_flag.label"
detail_path = "seller.seller_flag.reasons"

[[rule]]
name = "fallback"
kind = "fallback"
engines = ["direction"]
"""


@dataclass
class Received:
    path: str
    title: str
    message: str

    @property
    def alert_id(self) -> str:
        found = re.search(r"Alert id: (\w+)", self.message)
        assert found, self.message
        return found.group(1)

    @property
    def rule(self) -> str:
        found = re.search(r"Rule: (\w+)", self.message)
        assert found, self.message
        return found.group(1)


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1. ``fail_first`` requests answer 500; ``hold(path, n)``
    keeps the n-th request to ``path`` unanswered (and unrecorded) until ``release``, then
    answers 500: a sender that dies meanwhile never had it accepted."""

    fail_first: int = 0
    accepted: list[Received] = field(default_factory=list)
    refused: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    hold_at: tuple[str, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answer(self.path, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: bytes) -> int:
        with self.lock:
            self.seen[path] = self.seen.get(path, 0) + 1
            count = self.seen[path]
            failing = sum(self.seen.values()) <= self.fail_first
        if self.hold_at == (path, count):
            self.held.set()
            self.release.wait(60)
            return 500
        if failing:
            with self.lock:
                self.refused += 1
            return 500
        data = json.loads(body)
        with self.lock:
            self.accepted.append(Received(path, data["title"], data["message"]))
        return 200

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(**kwargs: Any) -> Iterator[Receiver]:
    r = Receiver(**kwargs)
    try:
        yield r
    finally:
        r.close()


def alerts_env(settings: Settings, rules: Path, urls: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_CLAIM_IDLE_MS": "500",
        "AEGIS_BLOCK_MS": "100",
        "AEGIS_CLOCK": "event",
        "AEGIS_LOG_JSON": "true",
        "AEGIS_ALERTS_RULES": str(rules),
        "AEGIS_ALERTS_URLS": urls,
        "AEGIS_ALERTS_LEASE_MS": "1500",
        "AEGIS_ALERTS_BACKOFF_INITIAL_S": "0.05",
        "AEGIS_ALERTS_BACKOFF_MAX_S": "0.2",
        "AEGIS_PUBLIC_URL": "http://dash.example:8765",
        **extra,
    }


def start_alerts(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_service("alerts", env, log)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def at(minute: int) -> int:
    return START + 60 * minute


def scenario() -> tuple[list[SignalBlock], list[tuple[str, str, str, int]]]:
    """Blocks (seller's safe range 24,960-26,137.6 from spot 25,600) and the alerts they must
    give with RULES: (rule, from, to, as_of)."""
    risky = {
        "seller_flag": {
            "label": "RISKY",
            "reasons": ["trap risk high"],
            "provenance": {"source": "formula", "formula": "rules"},
        }
    }
    blocks = [
        make_block("seller", as_of=at(0), spot=25_600),
        make_block("market", as_of=at(0), spot=25_600),
        make_block("direction", as_of=at(0), spot=25_600),
        make_block("market", as_of=at(1), spot=26_200),  # above the upper edge
        make_block("market", as_of=at(2), spot=26_130),  # within the hysteresis: still above
        make_block("market", as_of=at(3), spot=26_200),  # no new alert
        make_block("market", as_of=at(4), spot=26_100),  # back inside
        make_block("market", as_of=at(4), spot=26_100),  # a redelivered duplicate
        make_block("seller", as_of=at(5), spot=25_600, extra=risky),  # flag turns RISKY
        make_block("market", as_of=at(3), spot=20_000),  # older than the newest: ignored
        make_block("direction", as_of=at(6), spot=25_600, degraded=("model not loaded",)),
        make_block("market", as_of=at(7), spot=24_900),  # below the lower edge
    ]
    expected = [
        ("spot_safe_range", "inside", "above", at(1)),
        ("spot_safe_range", "above", "inside", at(4)),
        ("seller_flag", "FAVOURABLE", "RISKY", at(5)),
        ("fallback", "models", "today", at(6)),
        ("spot_safe_range", "inside", "below", at(7)),
    ]
    return blocks, expected


def oscillation(count: int) -> tuple[list[SignalBlock], int]:
    """``count`` minutes of a seller block and a market block, spot alternating inside/above
    the safe range: count - 1 alerts."""
    blocks = []
    for i in range(count):
        blocks.append(make_block("seller", as_of=at(i), spot=25_600))
        blocks.append(make_block("market", as_of=at(i), spot=25_600 if i % 2 == 0 else 26_300))
    return blocks, count - 1


def wait_until(condition: Callable[[], T | None], timeout_s: float, message: str) -> T:
    return wait_for(condition, timeout_s, message, interval_s=0.05)

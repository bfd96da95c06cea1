"""Runs a real gateway (uvicorn, loopback, free port) in a background thread for tests."""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

import uvicorn
from prometheus_client import Counter, Gauge

from services.gateway.app import create_app
from shared.bus.publish import Bus, connect
from shared.config import Settings
from shared.contract.schemas import SignalBlock
from tests.ports import free_port
from tests.waiting import wait_for


class RunningGateway:
    def __init__(self, settings: Settings, **app_kwargs: Any) -> None:
        self.settings = settings
        self.app = create_app(settings, **app_kwargs)
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_ping_interval=None,
            timeout_graceful_shutdown=1,
            ws_max_size=64 * 1024,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout_s: float = 10.0) -> RunningGateway:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout_s, "gateway did not start")
        return self

    def stop(self) -> None:
        """Stop the server; a gateway still running after that is a test failure here, with
        where it is stuck, not a stray consumer of the next test's streams."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            self.server.force_exit = True  # skip waiting for connections
            self.thread.join(timeout=10)
        if self.thread.is_alive() and self.thread.ident is not None:
            frame = sys._current_frames().get(self.thread.ident)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
            raise AssertionError(f"the gateway thread did not stop in 20 s:\n{stack}")

    def __enter__(self) -> RunningGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def publish(settings: Settings, *blocks: SignalBlock) -> None:
    client = connect(settings)
    bus = Bus(client, settings)
    for block in blocks:
        bus.publish(block)
    client.close()


def metric_value(metric: Counter | Gauge, *labels: str) -> float:
    """The value a gateway metric holds now (its child of ``labels``, if labelled)."""
    child = metric.labels(*labels) if labels else metric
    return float(child._value.get())

"""The dashboard's alert log tile and toast (services/gateway/static/alerts.js) in a real
headless Chromium, fed by GET /api/v1/alerts under the page's CSP."""

from __future__ import annotations

import orjson
import pytest
import redis
from playwright.async_api import Browser

from shared.bus import streams
from shared.config import Settings
from tests.gateway_harness import RunningGateway

pytestmark = pytest.mark.browser


def add(client: redis.Redis, i: int, severity: str = "warning") -> None:
    record = {
        "id": f"a{i}",
        "rule": "spot_safe_range",
        "severity": severity,
        "text": f"<b>NIFTY</b> spot alert {i}",
        "as_of": 1_751_275_800 + i,
        "as_of_ist": "2025-06-30 15:00 IST",
        "quiet": False,
    }
    client.xadd(streams.ALERTS, {"d": orjson.dumps(record)})


async def test_alert_log_tile_and_toast(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    add(redis_client, 1)
    add(redis_client, 2, "critical")
    with RunningGateway(settings) as gateway:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(gateway.url)
        items = page.get_by_test_id("alert-item")
        await items.nth(1).wait_for(timeout=10_000)
        assert await items.count() == 2
        assert "<b>NIFTY</b> spot alert 2" in await items.first.inner_text()  # text, not markup
        assert await page.get_by_test_id("alert-toast").count() == 0  # old ones: no toast
        add(redis_client, 3, "critical")
        toast = page.get_by_test_id("alert-toast")
        await toast.wait_for(timeout=10_000)
        assert "CRITICAL: <b>NIFTY</b> spot alert 3" in await toast.inner_text()
        assert await items.count() == 3
        assert errors == []

"""The dashboard in real headless Chromium against a real gateway and Redis: tiles fill,
live values change, gaps resync, reconnects, stale and degraded are visible, themes."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import redis
from playwright.async_api import Browser, Page, async_playwright, expect

from shared import streams
from shared.config import PROJECT_ROOT, Settings
from tests.block_factory import all_blocks, make_block
from tests.gateway_harness import RunningGateway, publish

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TABS = {
    "direction": [
        "dir-today",
        "dir-spot",
        "dir-vix",
        "dir-price",
        "dir-history",
        "dir-t1",
        "dir-t3",
        "dir-t5",
        "dir-t10",
        "dir-t20",
        "dir-t40",
        "dir-risk",
        "dir-regime",
        "dir-help",
    ],
    "sellers": [
        "sel-range",
        "sel-maxpain",
        "sel-stress",
        "sel-trap",
        "sel-skew",
        "sel-price",
        "sel-regime",
        "sel-breach",
        "sel-hitrate",
        "sel-flag",
        "sel-spot",
        "sel-vix",
        "sel-help",
    ],
    "buyers": [
        "buy-breakout",
        "buy-spike",
        "buy-theta",
        "buy-next",
        "buy-gamma",
        "buy-price",
        "buy-regime",
        "buy-spikerate",
        "buy-levels",
        "buy-env",
        "buy-spot",
        "buy-vix",
        "buy-help",
    ],
}
PICTURES = {"dir-price", "dir-history", "sel-price", "buy-price"}
WAIT_MS = 10_000


@pytest.fixture()
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def live_health(client: redis.Redis, degraded: str | None = None) -> None:
    now_ms = int(time.time() * 1000)
    for service in ("features", "direction", "seller", "buyer"):
        reasons = [degraded] if degraded and service == "direction" else []
        report = {
            "service": service,
            "consumer": "t1",
            "status": "degraded" if reasons else "ok",
            "degraded_reasons": reasons,
            "lag": 0,
            "last_message_at": now_ms,
        }
        client.set(streams.health(service, "t1"), orjson.dumps(report), ex=120)


async def open_dashboard(browser: Browser, gw: RunningGateway, scheme: str = "dark") -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(gw.url)
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def test_dashboard_live(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    now = int(time.time())
    live_health(redis_client)
    publish(wall, *all_blocks(as_of=now, freshness_limit_s=600))
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:
        page = await open_dashboard(browser, gw)
        await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)
        await expect(page.get_by_test_id("health-status")).to_have_text(
            "health ok", timeout=WAIT_MS
        )

        # every tile of every tab fills, with freshness and (data tiles) provenance
        for tab, tiles in TABS.items():
            await page.get_by_test_id(f"tab-{tab}").click()
            assert await page.locator(f"#panel-{tab} > .tile").count() == len(tiles)
            for tile in tiles:
                locator = page.get_by_test_id(f"tile-{tile}")
                await expect(locator).to_be_visible()
                await expect(locator).not_to_have_class(re.compile(r"\bempty\b"), timeout=WAIT_MS)
                await expect(page.get_by_test_id(f"{tile}-meaning")).not_to_be_empty()
                if tile not in PICTURES:
                    await expect(page.get_by_test_id(f"{tile}-value")).not_to_have_text("—")
                if not tile.endswith("help"):
                    await expect(page.get_by_test_id(f"{tile}-fresh")).to_contain_text("ago")
                    assert await locator.get_attribute("data-provenance")
                    assert await locator.get_attribute("data-stale") == "false"
        await page.get_by_test_id("tab-direction").click()
        today = page.get_by_test_id("tile-dir-today")
        assert (
            await today.get_attribute("data-provenance")
            == "model direction v20250630-ab12cd (out of sample)"
        )
        await today.hover()
        await expect(page.locator("#tooltip")).to_contain_text("model direction v20250630-ab12cd")
        await expect(page.get_by_test_id("disclaimer")).to_contain_text("educational use")

        # screenshots, dark then light; the choice is remembered across a reload
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "dashboard-dark.png", full_page=True)
        await page.get_by_test_id("theme-toggle").click()
        await expect(page.locator("html")).to_have_attribute("data-theme", "light")
        await page.screenshot(path=ARTIFACTS / "dashboard-light.png", full_page=True)
        for tab in ("sellers", "buyers"):
            await page.get_by_test_id(f"tab-{tab}").click()
            await page.screenshot(path=ARTIFACTS / f"dashboard-{tab}-light.png", full_page=True)
        await page.reload()
        await expect(page.locator("html")).to_have_attribute("data-theme", "light")
        await expect(page.get_by_test_id("tab-buyers")).to_have_attribute("aria-selected", "true")
        await page.get_by_test_id("tab-direction").click()
        await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)

        # a new block changes a value live, without reload
        spot = page.get_by_test_id("dir-spot-value")
        await expect(spot).to_have_text("25,637.80", timeout=WAIT_MS)
        publish(wall, make_block("market", as_of=now + 1, spot=25_712.35, freshness_limit_s=600))
        await expect(spot).to_have_text("25,712.35", timeout=WAIT_MS)

        # a gap in sequence numbers makes the page ask for a snapshot
        await page.evaluate("window.aegis.sequence -= 1")
        publish(wall, make_block("market", as_of=now + 2, spot=25_720.0, freshness_limit_s=600))
        await expect(spot).to_have_text("25,720.00", timeout=WAIT_MS)
        assert await page.evaluate("window.aegis.resyncs") == 1

        # a dropped connection reconnects by itself
        await page.evaluate("window.aegis.ws.close()")
        await expect(page.locator("body")).to_have_attribute(
            "data-conn", "reconnecting", timeout=WAIT_MS
        )
        await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)
        assert await page.evaluate("window.aegis.connects") == 2

        # a degraded engine and a heuristic value are visible at a glance
        live_health(redis_client, degraded="direction model failed to load")
        publish(
            wall,
            make_block(
                "direction",
                as_of=now + 3,
                freshness_limit_s=600,
                degraded=("direction model failed to load",),
            ),
        )
        await expect(page.get_by_test_id("banner-degraded")).to_contain_text(
            "direction model failed to load", timeout=WAIT_MS
        )
        badges = page.get_by_test_id("dir-today-badges")
        await expect(badges).to_contain_text("DEGRADED")
        await expect(badges).to_contain_text("HEURISTIC")
        await page.screenshot(path=ARTIFACTS / "dashboard-degraded-light.png", full_page=True)
        assert page.errors == []  # type: ignore[attr-defined]


async def test_stale_badge_appears_when_blocks_stop(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    live_health(redis_client)
    session_minute = 1_751_257_800  # 2025-06-30 10:00 IST: the next minute was due at +60 s
    limit = int(time.time()) - (session_minute + 60) + 2  # so stale in about 2 s from now
    publish(wall, *all_blocks(as_of=session_minute, freshness_limit_s=limit))
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:
        page = await open_dashboard(browser, gw)
        tile = page.get_by_test_id("tile-dir-spot")
        await expect(page.get_by_test_id("dir-spot-value")).to_have_text(
            "25,637.80", timeout=WAIT_MS
        )
        await expect(tile).to_have_attribute("data-stale", "true", timeout=WAIT_MS)
        await expect(page.get_by_test_id("dir-spot-badges")).to_contain_text("STALE")
        await expect(page.get_by_test_id("banner-stale")).to_be_visible()
        await expect(page.get_by_test_id("banner-stale")).to_contain_text("market")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "dashboard-stale-dark.png", full_page=True)
        assert page.errors == []  # type: ignore[attr-defined]

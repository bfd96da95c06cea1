"""The dashboard in real headless Chromium against a real gateway and Redis: tiles fill,
live values change, gaps resync, reconnects, stale and degraded are visible, themes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

import httpx
import msgspec
import orjson
import pytest
import redis
import yfinance.data
from playwright.async_api import Browser, Page, ViewportSize, expect

from services.ingest.sources.feed_status import feed_problem
from services.ingest.sources.yf_fetch import YFinanceFetcher
from services.ingest.sources.yfinance_source import Series, YFinanceSource
from shared.bus import streams
from shared.config import PROJECT_ROOT, Settings
from shared.contract.document.seller import HitRate, SellerFlag, Skew, Trap
from shared.contract.schemas import Provenance
from shared.market.calendar import IST
from shared.signals.labels import seller_flag
from tests.block_factory import (
    AS_OF,
    all_blocks,
    climatology,
    closing_day,
    dump,
    dump_provenance,
    formula,
    fresh_chain,
    make_block,
    seller_data,
)
from tests.fixtures.yfinance.recorded_http import recorded_session
from tests.gateway_harness import RunningGateway, publish
from tests.test_ingest_yfinance import FakeClock, ist

pytestmark = pytest.mark.browser

ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts"
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


async def open_dashboard(
    browser: Browser, gw: RunningGateway, scheme: Literal["dark", "light"] = "dark"
) -> Page:
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
        # a horizon whose probabilities are base rates is no forecast, not a coloured call
        await expect(page.get_by_test_id("dir-t40-value")).to_have_text("no forecast")
        await expect(page.get_by_test_id("tile-dir-t40")).to_contain_text("no edge over base")
        await expect(page.get_by_test_id("dir-t20-value")).not_to_have_text("no forecast")
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


# -- the real stack on the default replay ----------------------------------------------------
STACK_MODELS = PROJECT_ROOT / "var" / "test-models"  # kept between runs: trained once
TIMELINE_WAIT_MS = 60_000  # a few of the day charts' 15 s refetches
STACK_START_S = 900  # first run trains the models (minutes on a busy 2-core box)
PHONE: ViewportSize = {"width": 390, "height": 844}
CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const mix = (f, b, a) => f * a + b * (1 - a);
  const over = (fg, bg) => ({
    r: mix(fg.r, bg.r, fg.a), g: mix(fg.g, bg.g, fg.a), b: mix(fg.b, bg.b, fg.a), a: 1,
  });
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return over(c, parse(getComputedStyle(document.body).backgroundColor));
    }
    return parse(getComputedStyle(document.body).backgroundColor);
  };
  // every tile marked stale, measured in the same task (no render can undo it meanwhile)
  document.querySelectorAll(".tile").forEach((t) => t.classList.add("stale"));
  let worst = { ratio: 99, text: "", tiles: 0 };
  for (const tile of document.querySelectorAll(".tile.stale")) {
    if (!tile.getClientRects().length) continue;
    worst.tiles += 1;
    const walker = document.createTreeWalker(tile, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const el = node.parentElement;
      if (!node.textContent.trim() || !el.getClientRects().length) continue;
      if (el.closest("rect, .heat, title")) continue;
      const cs = getComputedStyle(el);
      const fg = parse(el instanceof SVGElement ? cs.fill : cs.color);
      if (!fg) continue;
      let alpha = fg.a;
      for (let e = el; e; e = e.parentElement) alpha *= parseFloat(getComputedStyle(e).opacity);
      const bg = background(el);
      const c = over({ ...fg, a: alpha }, bg);
      const [hi, lo] = [lum(c), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      const text = node.textContent.trim().slice(0, 60);
      if (ratio < worst.ratio) worst = { ...worst, ratio, text };
    }
  }
  document.querySelectorAll(".tile").forEach((t) => t.classList.remove("stale"));
  return worst;
}
"""


def _in_sample_paths(node: object, path: str = "") -> list[str]:
    """Paths of provenance objects that say in_sample: true anywhere in the document."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("in_sample") is True:
            found.append(path)
        for key, value in node.items():
            found += _in_sample_paths(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _in_sample_paths(value, f"{path}[{i}]")
    return found


class Stack:
    """``python -m services.stack`` as a newcomer's ``make run`` starts it, on free ports."""

    def __init__(self, var_dir: Path, **settings: str) -> None:
        """``settings``: AEGIS_* variables beside the newcomer's defaults."""
        from tests.ports import free_port

        self.port = free_port()
        self.redis_port = free_port()
        self.log_path = var_dir / "stack.log"
        env = {
            **os.environ,
            "AEGIS_VAR_DIR": str(var_dir),
            "AEGIS_OUTPUT_PATH": str(var_dir / "aegismatrix.json"),
            "AEGIS_MODEL_DIR": str(STACK_MODELS),
            "AEGIS_REDIS_PORT": str(self.redis_port),
            "AEGIS_GATEWAY_PORT": str(self.port),
            "AEGIS_LOG_JSON": "true",
        }
        for key in ("AEGIS_REDIS_URL", "AEGIS_CLOCK", "AEGIS_SOURCE", "AEGIS_API_TOKEN"):
            env.pop(key, None)
        env.update(settings)
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.stack"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def document(self) -> dict | None:
        try:
            return httpx.get(self.url + "/api/v1/document", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _replaying_intraday(doc: dict | None) -> bool:
    """The paced replay runs and every engine has caught up with it."""
    clock = (doc or {}).get("clock") or {}
    sections = [(doc or {}).get(e) or {} for e in ("market", "direction", "seller", "buyer")]
    return (
        clock.get("mode") == "replay"
        and clock.get("rate", 0) > 0
        and all(s.get("kind") == "intraday" and s.get("stale") is False for s in sections)
    )


async def test_the_default_replay_is_fresh_honest_and_labelled(
    browser: Browser, tmp_path: Path
) -> None:
    stack = Stack(tmp_path)
    try:
        deadline = time.monotonic() + STACK_START_S
        while not _replaying_intraday(stack.document()):
            assert stack.proc.poll() is None, stack.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the stack did not reach the paced replay"
            await asyncio.sleep(1.0)
        doc = stack.document()
        assert doc is not None
        assert _in_sample_paths(doc) == [], "in-sample model output in the document"
        print(f"\nstack up; artifacts in {ARTIFACTS}")

        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(stack.url)
        run = page.get_by_test_id("run-status")
        await expect(run).to_have_text(
            re.compile(r"^REPLAY 2026-\d\d-\d\d · 60×$"), timeout=WAIT_MS
        )
        await expect(page.get_by_test_id("conn-status")).not_to_have_class(re.compile(r"good"))

        for tab, tiles in TABS.items():
            await page.get_by_test_id(f"tab-{tab}").click()
            for tile in tiles:
                locator = page.get_by_test_id(f"tile-{tile}")
                await expect(locator).not_to_have_class(re.compile(r"\bempty\b"), timeout=WAIT_MS)
                await expect(page.get_by_test_id(f"{tile}-meaning")).not_to_be_empty()
                if not tile.endswith("help"):
                    fresh = page.get_by_test_id(f"{tile}-fresh")
                    await expect(fresh).to_contain_text("2026")  # the stamp has its year
                    await expect(fresh).to_contain_text("(replay time)")
                    await expect(fresh).not_to_contain_text(" d ago")
            assert await page.locator(".tile.in-sample").count() == 0
            assert await page.get_by_text("IN SAMPLE", exact=True).count() == 0
            assert await page.locator(".insample-note").count() == 0

        # no tile goes stale while the replay runs (sampled over several replayed minutes)
        for _ in range(4):
            stale = await page.locator(".tile[data-stale='true']").count()
            assert stale == 0, await page.get_by_test_id("banner-stale").text_content()
            await asyncio.sleep(2.0)

        # the pictures are drawn
        await page.get_by_test_id("tab-direction").click()
        chart = page.locator("#tile-dir-price .price-chart")
        await expect(chart.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
        await expect(chart).to_have_attribute("data-points", re.compile(r"^([2-9]|\d\d+)"))
        strip = page.locator("#tile-dir-history .history-strip")
        await expect(strip.locator("svg rect").first).to_be_visible(timeout=WAIT_MS)
        assert int(await strip.get_attribute("data-sessions") or 0) >= 1

        # provenance opens by keyboard
        source = page.get_by_test_id("dir-today-source")
        await source.locator("summary").focus()
        await page.keyboard.press("Enter")
        await expect(source.locator(".source-body")).to_contain_text("model direction")
        # the model's training window ends before the replay's first inputs (out of sample)
        (model,) = [m for m in doc["direction"]["models"] if m["name"] == "direction"]
        window = model["training_window"]
        assert window.split("..")[1] < "2026-01-21", window
        await expect(source.locator(".source-body")).to_contain_text(window.split("..")[1])

        # the option chain of the fortnight: fresh, drawn, every chain tile naming its expiry
        while ((stack.document() or {}).get("seller") or {}).get("chain", {}).get("status") != (
            "fresh"
        ):
            assert time.monotonic() < deadline, "no fresh option chain in the default replay"
            await asyncio.sleep(1.0)
        await page.get_by_test_id("tab-sellers").click()
        chain = page.get_by_test_id("chain-status")
        await expect(chain).to_have_attribute("data-status", "fresh", timeout=WAIT_MS)
        expiry = (stack.document() or {})["seller"]["chain"]["expiry"]
        await expect(chain).to_contain_text(expiry)
        await expect(page.get_by_test_id("chain-oi-chart")).to_be_visible()
        for tile in ("chain-pcr", "chain-walls", "chain-straddle", "chain-smile"):
            await expect(page.get_by_test_id(f"{tile}-value")).not_to_contain_text("—")
        for tile in ("depth-gex", "depth-buildup", "depth-greeks", "depth-forward"):
            await expect(page.get_by_test_id(f"tile-{tile}")).to_contain_text(expiry)
        await expect(page.get_by_test_id("depth-positioning-status")).to_have_attribute(
            "data-status", "fresh"
        )
        # the day's PCR and max pain, drawn from the history store the default run fills (the
        # charts refetch every 15 s; the history service runs at idle priority, behind)
        for timeline in ("timeline-pcr", "timeline-levels"):
            await expect(page.get_by_test_id(timeline)).to_have_attribute(
                "data-points", re.compile(r"^[1-9]"), timeout=TIMELINE_WAIT_MS
            )

        # screenshots: three tabs, both themes, desktop and phone width
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for theme in ("dark", "light"):
            if await page.locator("html").get_attribute("data-theme") != theme:
                await page.get_by_test_id("theme-toggle").click()
            for tab in TABS:
                await page.get_by_test_id(f"tab-{tab}").click()
                await page.screenshot(path=ARTIFACTS / f"replay-{tab}-{theme}.png", full_page=True)
            # stale tiles stay readable: mark every tile stale, measure in the page
            await page.get_by_test_id("tab-direction").click()
            worst = await page.evaluate(CONTRAST_JS)
            assert worst["tiles"] >= 10 and worst["ratio"] >= 4.5, (theme, worst)
            print(f"stale tiles, {theme}: lowest text contrast {worst['ratio']:.2f}:1")
        phone = await browser.new_page(viewport=PHONE)
        await phone.goto(stack.url)
        await expect(phone.get_by_test_id("run-status")).to_contain_text("REPLAY", timeout=WAIT_MS)
        for tab in TABS:
            await phone.get_by_test_id(f"tab-{tab}").click()
            await expect(phone.locator(f"#panel-{tab} .tile.empty")).to_have_count(
                0, timeout=WAIT_MS
            )
            await phone.screenshot(path=ARTIFACTS / f"replay-{tab}-phone.png", full_page=True)
            width = await phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{tab}: {width} px wide at {PHONE['width']} px"
        print(f"screenshots: {sorted(p.name for p in ARTIFACTS.glob('replay-*.png'))}")
        assert errors == []
    finally:
        stack.stop()


async def test_header_says_replay_with_date_and_speed_then_feed_down(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    minute = 1_654_056_000  # 2022-06-01 09:30 IST
    live_health(redis_client)
    run = {
        "mode": "replay",
        "source": "file",
        "speed": 60.0,
        "paced": True,
        "stream_time_s": minute + 60,
        "stream_at_ms": int(time.time() * 1000),
        "finished": False,
    }
    redis_client.set(streams.RUN, orjson.dumps(run))
    ingest = {"service": "ingest", "consumer": "file", "status": "ok", "finished": False}
    redis_client.set(streams.health("ingest", "file"), orjson.dumps(ingest), ex=600)
    publish(wall, *all_blocks(as_of=minute, freshness_limit_s=3600))  # 60 s wall at 60x
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:
        page = await open_dashboard(browser, gw)
        run_pill = page.get_by_test_id("run-status")
        await expect(run_pill).to_have_text("REPLAY 2022-06-01 · 60×", timeout=WAIT_MS)
        await expect(run_pill).not_to_have_class(re.compile(r"\bgood\b"))
        await expect(page.get_by_test_id("dir-spot-fresh")).to_contain_text(
            "01 Jun 2022", timeout=WAIT_MS
        )
        await expect(page.get_by_test_id("dir-spot-fresh")).to_contain_text("(replay time)")
        await expect(page.get_by_test_id("tile-dir-spot")).to_have_attribute("data-stale", "false")
        # a model output for a date inside the model's training window says so on its face
        direction = make_block("direction", as_of=minute + 60, freshness_limit_s=3600)
        today = {**direction.data["today"]}
        today["provenance"] = {**today["provenance"], "in_sample": True}
        publish(wall, make_block("direction", as_of=minute + 60, extra={"today": today}))
        await expect(page.get_by_test_id("dir-today-badges")).to_contain_text(
            "IN SAMPLE", timeout=WAIT_MS
        )
        await expect(page.get_by_test_id("dir-today-in-sample")).to_be_visible(timeout=WAIT_MS)
        # on expiry day the price chart marks the expiry at the close
        seller = make_block("seller", as_of=minute + 60, freshness_limit_s=3600)
        expiring = {**seller.data["safe_range"], "expiry": seller.session_date}
        publish(wall, make_block("seller", as_of=minute + 60, extra={"safe_range": expiring}))
        chart = page.locator("#tile-dir-price .price-chart")
        await expect(chart).to_have_attribute("data-expiry-today", "true", timeout=WAIT_MS)
        await expect(page.locator("#tile-dir-price")).to_contain_text(
            "(today, 15:30)", timeout=WAIT_MS
        )
        # the feed's report expires without a finished report: the feed died
        redis_client.delete(streams.health("ingest", "file"))
        await expect(run_pill).to_have_text("FEED DOWN · no report", timeout=WAIT_MS)
        await expect(run_pill).to_have_class(re.compile(r"\bbad\b"))
        assert page.errors == []  # type: ignore[attr-defined]


def ist_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=IST).timestamp() * 1000)


def recorded_failing_feed(tmp_path: Path) -> str:
    """What ingest reports when Yahoo answers every request with HTTP 429 in session hours:
    the real yfinance over recorded responses, the source's own status, ingest's wording."""
    yfinance.data.YfData.cache_get.cache_clear()
    session, _ = recorded_session({"^NSEI": [429] * 1000})
    feed = Settings(yfinance_cache_dir=tmp_path / "yf", yfinance_max_retries=2)
    clock = FakeClock(ist("2025-06-30T10:00:00"), stop_at=ist("2025-06-30T10:30:00"))
    source = YFinanceSource(
        feed,
        YFinanceFetcher(feed, session=session),
        series=(Series("^NSEI", "1d"),),
        clock=clock,
        wait=clock.wait,
    )
    assert list(source.events()) == []
    return f"source {source.name}: {feed_problem(source.status)}"


async def test_header_live_only_in_market_hours_then_market_closed_then_feed_down(
    browser: Browser, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The header from facts, live (no replay): LIVE while the session is open and every
    block is fresh; MARKET CLOSED with the next open from the NSE calendar (Monday
    2026-01-26 is Republic Day); FEED DOWN in words when the feed fails, its raw error in
    the tooltip only. The gateway's wall clock is set to each moment."""
    wall = settings.model_copy(update={"clock": "wall"})
    now = {"ms": ist_ms("2026-01-23T10:00:30")}  # a Friday, the session open
    live_health(redis_client)
    publish(wall, *all_blocks(as_of=ist_ms("2026-01-23T10:00:00") // 1000))
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1, wall_ms=lambda: now["ms"]) as gw:
        page = await open_dashboard(browser, gw)
        run_pill = page.get_by_test_id("run-status")
        await expect(run_pill).to_have_text("LIVE", timeout=WAIT_MS)
        await expect(run_pill).to_have_class(re.compile(r"\bgood\b"))
        now["ms"] = ist_ms("2026-01-23T10:30:00")  # no bar for half an hour of the session
        await expect(run_pill).to_have_text("LIVE · STALE DATA", timeout=WAIT_MS)
        # Saturday: the close is not stale (the clock moves first, so the update that brings
        # the close carries Saturday's clock)
        now["ms"] = ist_ms("2026-01-24T12:00:00")
        publish(wall, *all_blocks(as_of=ist_ms("2026-01-23T15:30:00") // 1000))
        await expect(run_pill).to_have_text(
            "MARKET CLOSED · opens Tue 27 Jan 09:15", timeout=WAIT_MS
        )
        await expect(run_pill).not_to_have_class(re.compile(r"\b(good|bad)\b"))
        reason = recorded_failing_feed(tmp_path)
        report = {
            "service": "ingest",
            "consumer": "yfinance",
            "status": "degraded",
            "degraded_reasons": [reason],
        }
        redis_client.set(streams.health("ingest", "yfinance"), orjson.dumps(report), ex=600)
        await expect(run_pill).to_have_text("FEED DOWN · rate limited", timeout=WAIT_MS)
        await expect(run_pill).to_have_attribute("title", re.compile("YFRateLimitError"))
        assert page.errors == []  # type: ignore[attr-defined]


# -- a new user's review: every tile says what its number is -----------------------------
HORIZONS = ("t1", "t3", "t5", "t10", "t20", "t40")


TITLES_JS = "[...document.querySelectorAll('.panel > .tile h3')].map((h) => h.textContent)"


async def open_tab(page: Page, tab: str) -> None:
    await page.get_by_test_id(f"tab-{tab}").click()
    await expect(page.locator(f"#panel-{tab} .tile.empty")).to_have_count(0, timeout=WAIT_MS)


async def test_skew_flag_and_hit_rate_say_what_their_numbers_are(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """IV skew in volatility points with bars inside their tracks; percentiles in % on the
    flag as on the trap tile; the hit rate counts sessions (day-expiry pairs)."""
    label, reasons = seller_flag("LOW", "CALM", 0.77, 0.91)  # the engine's own sentences
    update = {
        "skew": Skew(
            put=0.0378,
            call=0.0366,
            net=0.0012,
            method="chain_iv",
            provenance=Provenance(source="data", window="chain"),
        ),
        "seller_flag": SellerFlag(label=label, reasons=reasons, provenance=formula("rules")),
        "trap": Trap(
            score=0.31,
            label="LOW",
            iv_percentile=0.77,
            rv_percentile=0.91,
            selection=None,
            provenance=formula("trap"),
        ),
        "historical_hit_rate": HitRate(
            value=0.893,
            window="2015-01-01..2025-06-27",
            regime="NORMAL",
            samples=1262,
            provenance=Provenance(source="data"),
        ),
    }
    seller = make_block("seller", data=msgspec.structs.replace(seller_data(25_637.8), **update))
    blocks = all_blocks()
    blocks[2] = seller
    publish(settings, *blocks)
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await open_tab(page, "sellers")
        skew = page.get_by_test_id("tile-sel-skew")
        await expect(page.get_by_test_id("sel-skew-value")).to_have_text("net +0.12 vol pts")
        await expect(skew).to_contain_text("+3.78")
        await expect(skew).to_contain_text("+3.66")
        await expect(skew).to_contain_text("vol points")
        await expect(skew).to_contain_text("option IV skew")
        await expect(skew).not_to_contain_text("unitless")
        outside = await page.evaluate(
            """() => [...document.querySelectorAll('svg.bars')].flatMap((svg) => {
                 const tracks = [...svg.querySelectorAll('rect.bar-track')];
                 return [...svg.querySelectorAll('rect.bar')].filter((bar, i) => {
                   const t = tracks[i], x = +bar.getAttribute('x'), w = +bar.getAttribute('width');
                   return x < +t.getAttribute('x') - 0.05
                     || x + w > +t.getAttribute('x') + +t.getAttribute('width') + 0.05;
                 }).map((bar) => svg.closest('.tile').id);
               })"""
        )
        assert outside == [], f"bars beyond their track: {outside}"

        reasons_list = page.get_by_test_id("sel-flag-reasons")
        await expect(reasons_list).to_contain_text("implied vol percentile 77% vs realized 91%")
        await expect(reasons_list).not_to_contain_text("0.77")
        trap = page.get_by_test_id("tile-sel-trap")
        await expect(trap).to_contain_text("VIX 1-y percentile 77%")
        await expect(trap).to_contain_text("realised vol 1-y percentile 91%")

        hits = page.get_by_test_id("tile-sel-hitrate")
        await expect(page.get_by_test_id("sel-hitrate-samples")).to_contain_text(
            "of 1262 sessions (day–expiry pairs"
        )
        await expect(hits).not_to_contain_text("samples")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_every_direction_tile_prints_its_probabilities_and_marks_no_edge_alike(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """Today like the horizons: the three probabilities in %, "no forecast" with the same
    mark when its probabilities are base rates; its 1σ move over the session time left."""
    direction = make_block("direction")
    today = {**direction.data["today"], "basis": "rest of today's session"}
    blocks = all_blocks()
    blocks[1] = make_block("direction", extra={"today": today})
    publish(settings, *blocks)
    market = blocks[0].data
    minutes_left = 30  # the block's as_of is 15:00 IST
    sigma = market["spot"] * market["vix"] / 100 * ((minutes_left / 375) / 252) ** 0.5
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await open_tab(page, "direction")
        for tile in ("dir-today", *(f"dir-{h}" for h in HORIZONS)):
            line = page.get_by_test_id(f"{tile}-probabilities")
            await expect(line).to_have_text(re.compile(r"up \d+% · neutral \d+% · down \d+%"))
        await expect(page.get_by_test_id("dir-today-probabilities")).to_have_text(
            "up 47% · neutral 30% · down 23%"
        )
        today_tile = page.get_by_test_id("tile-dir-today")
        await expect(today_tile).to_contain_text(
            f"1σ move ±{round(sigma)} pts (VIX, {minutes_left} min of the session left)"
        )
        await expect(today_tile).to_contain_text("covers: rest of today's session")
        await expect(page.get_by_test_id("dir-today-value")).to_have_text("▲ UP")

        # base rates on Today: no forecast, marked as on a horizon without skill
        publish(
            settings,
            make_block(
                "direction",
                as_of=AS_OF + 60,
                extra={"today": {**today, "provenance": dump_provenance(climatology())}},
            ),
        )
        await expect(page.get_by_test_id("dir-today-value")).to_have_text(
            "no forecast", timeout=WAIT_MS
        )
        no_edge = await page.get_by_test_id("dir-today-no-edge").text_content()
        assert no_edge == await page.get_by_test_id("dir-t40-no-edge").text_content()
        await expect(page.get_by_test_id("dir-today-probabilities")).to_have_text(
            "base rates: up 47% · neutral 30% · down 23%"
        )
        await expect(today_tile.locator("svg.gauge")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]


def daily_closes(days: list[str], spot: float) -> list[list[float]]:
    return [[ist_ms(f"{d}T15:30:00") // 1000, spot - 10 * i] for i, d in enumerate(days)]


async def test_charts_say_what_they_draw_and_the_price_chart_fits_the_prices(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """A sparkline of daily closes says so; the intraday chart draws the session's minutes,
    names their count and interval, ticks HH:MM and round index points, and keeps the far
    safe range off its y axis (named in the caption) so the price line is not squashed."""
    days = [
        "2025-06-16",
        "2025-06-17",
        "2025-06-18",
        "2025-06-19",
        "2025-06-20",
        "2025-06-23",
        "2025-06-24",
        "2025-06-25",
        "2025-06-26",
        "2025-06-27",
    ]
    spark = {"sparkline": daily_closes(days, 25_500.0)}
    minutes = [
        make_block("market", as_of=AS_OF - 60 * (9 - i), spot=25_600.0 + 7 * i, extra=spark)
        for i in range(10)
    ]
    publish(settings, *minutes, *all_blocks()[1:])
    prices = [b.data["spot"] for b in minutes]
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await open_tab(page, "direction")
        await expect(page.get_by_test_id("dir-spot-caption")).to_have_text(
            "chart: 10 daily closes, 16 Jun 2025 – 27 Jun 2025"
        )
        caption = page.get_by_test_id("dir-price-caption")
        await expect(caption).to_have_text(
            "line: 10 one-minute closes, 14:51–15:00 IST, 30 Jun 2025", timeout=WAIT_MS
        )
        tile = page.get_by_test_id("tile-dir-price")
        await expect(tile).to_contain_text("(beyond the y axis)")  # the safe range, 2 % away
        await expect(tile).to_contain_text("to expiry 03 Jul 2025")
        chart = page.locator("#tile-dir-price .price-chart")
        await expect(chart).to_have_attribute("data-x-ticks", re.compile(r"."), timeout=WAIT_MS)
        x_ticks = (await chart.get_attribute("data-x-ticks") or "").split("|")
        assert all(re.fullmatch(r"\d\d:\d\d", t) for t in x_ticks), x_ticks
        y_ticks = (await chart.get_attribute("data-y-ticks") or "").split("|")
        assert len(set(y_ticks)) == len(y_ticks) >= 3, y_ticks
        assert all(re.fullmatch(r"\d\d,\d\d\d", t) for t in y_ticks), y_ticks
        low, high = map(float, (await chart.get_attribute("data-y-range") or "").split())
        assert (max(prices) - min(prices)) / (high - low) >= 0.25, (low, high)

        # as the engine sends it after a catch-up: daily closes, then today's minutes
        today = [[AS_OF, 25_663.0], [AS_OF + 60, 25_670.0]]
        mixed = {"sparkline": spark["sparkline"] + today}
        publish(settings, make_block("market", as_of=AS_OF + 60, spot=25_670.0, extra=mixed))
        await expect(page.get_by_test_id("dir-spot-caption")).to_have_text(
            "chart: 10 daily closes, 16 Jun 2025 – 27 Jun 2025, "
            "then 2 one-minute closes, 15:00–15:01 IST, 30 Jun 2025",
            timeout=WAIT_MS,
        )
        assert page.errors == []  # type: ignore[attr-defined]


async def test_history_strip_says_what_its_rows_are_and_why_cells_are_empty(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """The direction rows are the last published call (after a close, the next session's),
    not "today"; a session without a stored value says why; dates as 27 Jun 2025."""
    friday = closing_day("2025-06-27", 25_400.0, 13.0, "2025-07-03")[1]  # seller only
    older = [
        b
        for d in ("2025-06-25", "2025-06-26")
        for b in closing_day(d, 25_300.0, 13.0, "2025-07-03")
    ]
    publish(settings, *older, friday, *all_blocks())
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await open_tab(page, "direction")
        strip = page.get_by_test_id("dir-history-strip")
        await expect(strip).to_have_attribute("data-sessions", "4", timeout=WAIT_MS)
        await expect(strip).to_contain_text("P(up) last call")
        await expect(strip).not_to_contain_text("today")
        await expect(strip).to_contain_text("27 Jun 2025")
        await expect(page.get_by_test_id("dir-history-caption")).to_contain_text(
            "4 sessions, 25 Jun 2025 – 30 Jun 2025"
        )
        empty = page.get_by_test_id("dir-history-empty")
        await expect(empty).to_contain_text(
            "P(up) last call: 3 of 4 empty (3 none in the stored blocks)"
        )
        await expect(empty).to_contain_text(
            "close in range: 1 of 4 empty (1 no NIFTY close in the stored blocks)"
        )
        title = strip.locator("rect.heat-none title").first
        await expect(title).to_contain_text("25 Jun 2025 P(up) last call: none")
        assert page.errors == []  # type: ignore[attr-defined]


async def test_titles_stay_put_and_the_source_is_shown_once(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """No tile changes its title when data arrives; with a tile's source panel open, hovering
    it does not draw the same lines again in the tooltip."""
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await expect(page.locator("body")).to_have_attribute("data-conn", "open", timeout=WAIT_MS)
        before = await page.evaluate(TITLES_JS)
        assert all(before), before
        publish(settings, *all_blocks())
        for tab in TABS:
            await open_tab(page, tab)
        assert await page.evaluate(TITLES_JS) == before

        await open_tab(page, "direction")
        today = page.get_by_test_id("tile-dir-today")
        tooltip = page.locator("#tooltip")
        await today.hover()
        await expect(tooltip).to_be_visible()
        await page.get_by_test_id("dir-today-source").locator("summary").click()
        await expect(
            page.get_by_test_id("dir-today-source").locator(".source-body")
        ).to_be_visible()
        await expect(tooltip).to_be_hidden()
        await page.mouse.move(0, 0)
        await today.hover()
        await expect(tooltip).to_be_hidden()
        assert page.errors == []  # type: ignore[attr-defined]


async def test_nothing_overflows_at_phone_width_on_any_tab(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as gw:
        page = await browser.new_page(viewport=PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(gw.url)
        for tab in TABS:
            await open_tab(page, tab)
            await expect(page.locator(f"#tile-{TABS[tab][0]} .body")).not_to_contain_text("waiting")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{tab}: {width} px wide at {PHONE['width']} px"
        assert errors == []


async def test_the_safe_range_tile_shows_the_straddles_priced_band_of_its_expiry(
    browser: Browser, settings: Settings
) -> None:
    """With a fresh chain of the range's own expiry, the range tile shows the band the ATM
    straddle prices at the same target beside it; a chain of another expiry shows none."""
    seller = make_block("seller")
    target = seller.data["safe_range"]
    band = (25_210.0, 26_065.0)  # at the range's coverage target, 0.9
    chain = dump(fresh_chain(25_637.8, target["expiry"], "2025-06-30T14:55:00+05:30", band=band))
    publish(settings, *all_blocks()[:2], make_block("seller", extra={"chain": chain}))
    with RunningGateway(settings) as gw:
        page = await open_dashboard(browser, gw)
        await page.get_by_test_id("tab-sellers").click()
        priced = page.get_by_test_id("sel-range-straddle")
        await expect(priced).to_contain_text("25,210 – 26,065", timeout=WAIT_MS)
        other = {**chain, "expiry": "2099-01-01"}
        publish(settings, make_block("seller", as_of=AS_OF + 60, extra={"chain": other}))
        await expect(priced).to_have_count(0, timeout=WAIT_MS)
        assert page.errors == []  # type: ignore[attr-defined]

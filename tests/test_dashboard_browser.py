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

import httpx
import orjson
import pytest
import redis
from playwright.async_api import Browser, Page, expect

from services.ingest.sources.feed_status import FeedStatus, feed_problem
from shared import streams
from shared.calendar import IST
from shared.config import PROJECT_ROOT, Settings
from tests.block_factory import all_blocks, make_block
from tests.gateway_harness import RunningGateway, publish

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
STACK_START_S = 900  # first run trains the models (minutes on a busy 2-core box)
PHONE = {"width": 390, "height": 844}
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

    def __init__(self, var_dir: Path) -> None:
        from tests.ports import free_port

        self.port = free_port()
        self.log_path = var_dir / "stack.log"
        env = {
            **os.environ,
            "AEGIS_VAR_DIR": str(var_dir),
            "AEGIS_OUTPUT_PATH": str(var_dir / "aegismatrix.json"),
            "AEGIS_MODEL_DIR": str(STACK_MODELS),
            "AEGIS_REDIS_PORT": str(free_port()),
            "AEGIS_GATEWAY_PORT": str(self.port),
            "AEGIS_LOG_JSON": "true",
        }
        for key in ("AEGIS_REDIS_URL", "AEGIS_CLOCK", "AEGIS_SOURCE", "AEGIS_API_TOKEN"):
            env.pop(key, None)
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
        # the day's PCR and max pain, drawn from the history store the default run fills
        for chart in ("timeline-pcr", "timeline-levels"):
            await expect(page.get_by_test_id(chart)).to_have_attribute(
                "data-points", re.compile(r"^[1-9]"), timeout=WAIT_MS
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


async def test_header_live_only_in_market_hours_then_market_closed_then_feed_down(
    browser: Browser, settings: Settings, redis_client: redis.Redis
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
        publish(wall, *all_blocks(as_of=ist_ms("2026-01-23T15:30:00") // 1000))
        now["ms"] = ist_ms("2026-01-24T12:00:00")  # Saturday: the close is not stale
        await expect(run_pill).to_have_text(
            "MARKET CLOSED · opens Tue 27 Jan 09:15", timeout=WAIT_MS
        )
        await expect(run_pill).not_to_have_class(re.compile(r"\b(good|bad)\b"))
        status = FeedStatus(
            state="failing",
            consecutive_failures=5,
            rate_limited=True,
            last_error="curl: (28) Operation timed out after 30001 milliseconds",
        )
        reason = f"source yfinance: {feed_problem(status.snapshot())}"  # as ingest says it
        report = {
            "service": "ingest",
            "consumer": "yfinance",
            "status": "degraded",
            "degraded_reasons": [reason],
        }
        redis_client.set(streams.health("ingest", "yfinance"), orjson.dumps(report), ex=600)
        await expect(run_pill).to_have_text("FEED DOWN · rate limited", timeout=WAIT_MS)
        await expect(run_pill).to_have_attribute("title", re.compile("curl: \\(28\\)"))
        assert page.errors == []  # type: ignore[attr-defined]

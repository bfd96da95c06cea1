"""The option-chain section in real headless Chromium against a real gateway: the OI chart
and the chain tiles fill from a seller block built on real chains, update live with the next
snapshot, and an unavailable chain shows its reason."""

from __future__ import annotations

import itertools
import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from playwright.async_api import Browser, expect

from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.participant_oi import read_participant_oi_history
from services.seller.compute import chain_group
from services.seller.positioning import positioning_group
from shared.config import Settings
from shared.contract.schemas import OptionChain
from shared.market.chain_view import ChainView
from tests.block_factory import all_blocks, dump, make_block
from tests.gateway_harness import RunningGateway, publish
from tests.test_chain_file import CHAIN_FILE
from tests.test_dashboard_browser import (
    ARTIFACTS,
    WAIT_MS,
    live_health,
    open_dashboard,
)

pytestmark = pytest.mark.browser


def chain_data(chain: OptionChain, previous: OptionChain | None) -> dict[str, Any]:
    ctx = SimpleNamespace(snapshot=SimpleNamespace(vix=13.5, daily={}), settings=Settings())
    view = ChainView(chain, previous, None, 60, 0.11, (0.1, 0.12) * 15, chain.snapshot_time, 1)
    return {"chain": dump(chain_group(ctx, view))}  # type: ignore[arg-type]


async def test_oi_chart_fills_and_updates(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    events = ChainFileSource(CHAIN_FILE).events()
    first, second, third = (e for e in itertools.islice(events, 3) if isinstance(e, OptionChain))
    wall = settings.model_copy(update={"clock": "wall"})
    now = int(time.time())
    live_health(redis_client)
    blocks = all_blocks(as_of=now, freshness_limit_s=600)
    blocks[2] = make_block(
        "seller", as_of=now, freshness_limit_s=600, extra=chain_data(second, first)
    )
    publish(wall, *blocks)
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:
        page = await open_dashboard(browser, gw)
        chart = page.get_by_test_id("chain-oi-chart")
        await expect(chart).to_have_attribute("data-spot", str(second.spot), timeout=WAIT_MS)
        strikes = int(await chart.get_attribute("data-strikes") or 0)
        assert strikes == sum(1 for q in second.quotes if abs(q.strike / second.spot - 1) <= 0.05)
        assert await chart.locator("rect.oi-ce").count() == strikes
        await expect(chart.locator("line.mk-spot")).to_have_count(1)
        for tile in ("chain-pcr", "chain-walls", "chain-straddle", "chain-smile"):
            await expect(page.get_by_test_id(f"{tile}-value")).not_to_contain_text("—")
        await expect(page.get_by_test_id("chain-smile-chart")).to_be_visible()
        await expect(page.get_by_test_id("chain-status")).to_contain_text(second.expiry)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.get_by_test_id("chain-section").screenshot(
            path=ARTIFACTS / "dashboard-chain.png"
        )

        # the next snapshot replaces the chart live
        publish(
            wall,
            make_block(
                "seller", as_of=now + 1, freshness_limit_s=600, extra=chain_data(third, second)
            ),
        )
        await expect(chart).to_have_attribute("data-spot", str(third.spot), timeout=WAIT_MS)

        # no fresh chain: the reason, not old numbers
        reason = "newest chain of 2026-01-27 is 4000 s old (limit AEGIS_CHAIN_MAX_AGE_S=1800)"
        gone = {
            "chain": {
                "status": "unavailable",
                "reason": reason,
                "provenance": {"source": "data", "note": reason},
            }
        }
        publish(wall, make_block("seller", as_of=now + 2, freshness_limit_s=600, extra=gone))
        status = page.get_by_test_id("chain-status")
        await expect(status).to_have_attribute("data-status", "unavailable", timeout=WAIT_MS)
        await expect(status).to_contain_text("4000 s old")
        await expect(page.get_by_test_id("chain-oi-chart")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]


async def test_chain_depth_and_positioning_are_drawn(
    browser: Browser, settings: Settings, redis_client: redis.Redis
) -> None:
    """Greeks, GEX and build-up charts, term structure and the positioning tile from a seller
    block built by the real compute functions on real chains and the real participant-OI
    history; at phone width nothing overflows."""
    events = ChainFileSource(CHAIN_FILE).events()
    first, second = (e for e in itertools.islice(events, 2) if isinstance(e, OptionChain))
    participants = Settings().participant_oi_file
    assert participants is not None  # the bundled history by default
    history = read_participant_oi_history(participants)
    known = [d for d in history if d.day.isoformat() < "2026-01-22"][-6:]
    snapshot = SimpleNamespace(session_date="2026-01-22")
    data = chain_data(second, first) | {
        "positioning": dump(positioning_group(snapshot, known, []))  # type: ignore[arg-type]
    }
    wall = settings.model_copy(update={"clock": "wall"})
    now = int(time.time())
    live_health(redis_client)
    blocks = all_blocks(as_of=now, freshness_limit_s=600)
    blocks[2] = make_block("seller", as_of=now, freshness_limit_s=600, extra=data)
    publish(wall, *blocks)
    gex = data["chain"]["gamma_exposure"]
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:
        page = await open_dashboard(browser, gw)
        chart = page.get_by_test_id("depth-gex-chart")
        valued = sum(r["net_rupees_per_1pct"] is not None for r in gex["by_strike"])
        await expect(chart).to_have_attribute("data-bars", str(valued), timeout=WAIT_MS)
        assert valued >= 20
        await expect(chart.locator("line.mk-spot")).to_have_count(1)
        buildup = page.get_by_test_id("depth-buildup-chart")
        await expect(buildup).to_be_visible()
        assert int(await buildup.get_attribute("data-bars") or 0) > 0
        table = page.get_by_test_id("depth-greeks-table")
        await expect(table).to_have_attribute("data-rows", "11")
        await expect(page.get_by_test_id("depth-term-chart")).to_have_attribute("data-points", "1")
        status = page.get_by_test_id("depth-positioning-status")
        await expect(status).to_have_attribute("data-status", "fresh")
        await expect(status).to_contain_text("2026-01-21")
        value = f"{known[-1].fii.index_future_net:,}".replace(",", "")
        text = (await page.get_by_test_id("depth-positioning-value").inner_text()).replace(",", "")
        assert value.lstrip("-") in text
        for name in ("depth-gex", "depth-buildup", "depth-greeks", "depth-forward"):
            await expect(page.get_by_test_id(f"tile-{name}")).to_contain_text(second.expiry)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.get_by_test_id("depth-section").screenshot(
            path=ARTIFACTS / "dashboard-depth.png"
        )
        await page.set_viewport_size({"width": 390, "height": 900})
        await expect(table).to_be_visible()
        width = await page.evaluate("document.documentElement.scrollWidth")

        await page.get_by_test_id("depth-section").screenshot(
            path=ARTIFACTS / "dashboard-depth-phone.png"
        )
        assert page.errors == []  # type: ignore[attr-defined]
    assert width <= 390, f"the page is {width} px wide at 390 px"

"""The dashboard's "through the day" charts (services/gateway/static/timeline.js) in a real
headless Chromium: the live session's chain signals from the history database, the session
before one click away, under the page's CSP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from playwright.async_api import Browser, expect

from shared.bus import streams
from shared.config import Settings
from shared.contract.schemas import AlertRecord, SignalBlock
from shared.history.store import HistoryStore, migrate, open_engine
from tests.block_factory import AS_OF, all_blocks, chain_minute, closing_day, make_block
from tests.gateway_harness import RunningGateway, publish

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "var" / "test-artifacts"
WAIT_MS = 15_000
FRIDAY = AS_OF - 3 * 86_400  # 2025-06-27 15:00 IST, the session before 2025-06-30


def with_history(settings: Settings, tmp_path: Path) -> tuple[Settings, HistoryStore]:
    """``settings`` pointing at a fresh, migrated SQLite history, and its store."""
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    store = HistoryStore(open_engine(settings.history_url))
    migrate(store.engine)
    return settings, store


def stored_alert(name: str, as_of: int) -> AlertRecord:
    record = {"id": name, "rule": "pcr_band", "severity": "info", "as_of": as_of}
    return AlertRecord(
        id=name,
        as_of=as_of,
        rule="pcr_band",
        severity="info",
        record=record | {"text": f"alert {name}"},
    )


def chain(pcr: float, spot: float) -> dict[str, Any]:
    return {
        "pcr": {"oi": pcr},
        "max_pain": {"strike": 25_200.0},
        "walls": {"calls": [{"strike": 25_500.0}], "puts": [{"strike": 25_000.0}]},
        "atm_iv": {"value": 0.11},
        "straddle": {"move_points": round(spot * 0.01, 2)},
    }


def minutes(start: int, count: int, pcr: float) -> list[SignalBlock]:
    out = []
    for i in range(count):
        as_of, spot = start + 60 * i, 25_300.0 + i
        out += [
            make_block("market", as_of=as_of, spot=spot),
            make_block("seller", as_of=as_of, spot=spot, extra={"chain": chain(pcr, spot)}),
        ]
    return out


async def test_the_chain_through_the_day_and_the_session_before(
    browser: Browser, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings, store = with_history(settings, tmp_path)
    store.write(minutes(FRIDAY, 5, 0.8) + minutes(AS_OF - 540, 10, 1.1))
    store.write_alerts([stored_alert("before", AS_OF - 420), stored_alert("after", AS_OF - 60)])
    redis_client.xadd(streams.ALERTS, {"d": orjson.dumps(stored_alert("live", AS_OF).record)})
    publish(settings, *all_blocks(as_of=AS_OF))
    with RunningGateway(settings) as gw:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(gw.url)
        day, pcr = page.get_by_test_id("timeline-day"), page.get_by_test_id("timeline-pcr")
        await expect(day).to_have_text("2025-06-30 (live session)", timeout=WAIT_MS)
        await expect(pcr).to_have_attribute("data-points", "10", timeout=WAIT_MS)
        # spot, max pain and both walls: four lines of ten minutes
        await expect(page.get_by_test_id("timeline-levels")).to_have_attribute("data-points", "40")
        await expect(page.get_by_test_id("timeline-scorecard")).to_contain_text(
            "no expiry has settled", timeout=WAIT_MS
        )
        drawn = "(id) => window.aegisTimeline.plots[id].plot.data[1].filter((v) => v !== null)"
        assert await page.evaluate(drawn, "pcr") == [1.1] * 10
        tick = (
            "([id, t]) => { const p = window.aegisTimeline.plots[id].plot;"
            " return p.axes[0].values(p, [t]); }"
        )
        assert await page.evaluate(tick, ["pcr", AS_OF]) == ["15:00"]  # IST, 24 h
        assert await page.evaluate(tick, ["weeks", AS_OF]) == ["30 Jun"]
        assert await page.evaluate(drawn, "iv") == [pytest.approx(11.0)] * 10  # percent
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.get_by_test_id("timeline-section").screenshot(path=ARTIFACTS / "timeline.png")

        await page.get_by_test_id("timeline-prev").click()
        await expect(day).to_have_text("2025-06-27", timeout=WAIT_MS)
        await expect(pcr).to_have_attribute("data-points", "5", timeout=WAIT_MS)
        assert await page.evaluate(drawn, "pcr") == [0.8] * 5
        await page.get_by_test_id("timeline-prev").click()  # nothing stored before Friday
        await expect(page.get_by_test_id("timeline-status")).to_contain_text("no earlier session")

        await page.get_by_test_id("timeline-next").click()
        await expect(day).to_have_text("2025-06-30 (live session)", timeout=WAIT_MS)
        await expect(pcr).to_have_attribute("data-points", "10", timeout=WAIT_MS)

        # time travel: scrub to 14:55 and the whole dashboard shows that moment, marked past
        spot = page.get_by_test_id("dir-spot-value")
        live_spot = await spot.inner_text()
        scrub = page.get_by_test_id("timeline-scrub")
        await scrub.evaluate(
            "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input')); }",
            AS_OF - 300,
        )
        await expect(page.get_by_test_id("timeline-moment")).to_have_text("2025-06-30 14:55 IST")
        await page.get_by_test_id("timeline-travel").click()
        await expect(spot).to_have_text("25,304.00", timeout=WAIT_MS)  # minute 4 of the stored ten
        await expect(page.get_by_test_id("banner-past")).to_contain_text("30 Jun 2025 14:55:00")
        await expect(page.get_by_test_id("run-status")).to_contain_text("PAST")
        await expect(page.get_by_test_id("dir-spot-fresh")).to_contain_text("before the moment")
        # the alert log shows the alerts raised up to that moment, from the history database
        alerts = page.get_by_test_id("alert-item")
        await expect(page.get_by_test_id("alerts-tile")).to_contain_text("up to the moment shown")
        await expect(alerts).to_have_count(1, timeout=WAIT_MS)
        await expect(alerts.first).to_contain_text("alert before")
        await page.get_by_test_id("past-back").click()
        await expect(spot).to_have_text(live_spot, timeout=WAIT_MS)
        await expect(alerts).to_have_count(1, timeout=WAIT_MS)
        await expect(alerts.first).to_contain_text("alert live", timeout=WAIT_MS)
        await expect(page.get_by_test_id("banner-past")).to_be_hidden()
        # an alert's link opens the dashboard at its moment
        await page.evaluate(f"() => {{ location.hash = 'at={(AS_OF - 480) * 1000}'; }}")
        await expect(spot).to_have_text("25,301.00", timeout=WAIT_MS)  # 14:52
        assert errors == []


async def test_the_live_scorecard_counts_the_settled_closes(
    browser: Browser, settings: Settings, tmp_path: Path
) -> None:
    settings, store = with_history(settings, tmp_path)
    # two weeks of closes, every range 150 points a side, Thursday expiries; spot climbs 40 a day
    days = ["2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06", "2025-06-09"]
    for i, day in enumerate(days):
        expiry = "2025-06-05" if i < 3 else "2025-06-12"
        priced = 100.0 if i == 0 else None  # the first close's chain prices 100 points a side
        store.write(closing_day(day, 25_000 + 40 * i, 15.0, expiry, straddle_band=priced))
    publish(settings, *all_blocks(as_of=AS_OF))
    with RunningGateway(settings) as gw:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        await page.goto(gw.url)
        # the three closes before 06-05 target it: spot 25,120 there is inside all three ranges
        await expect(page.get_by_test_id("timeline-scorecard")).to_have_text(
            re.compile(r"^Live scorecard: 3 of the last 3 session closes' safe ranges held"),
            timeout=WAIT_MS,
        )
        await expect(page.get_by_test_id("timeline-scorecard")).to_contain_text("NORMAL 100 % of 3")
        await expect(page.get_by_test_id("timeline-scorecard")).to_contain_text("(12 strikes)")
        await expect(page.get_by_test_id("timeline-scorecard")).to_contain_text(
            "the straddle's priced band: 0 of the 1 closes with a chain of that expiry, "
            "where the range held 1"
        )
        # the weeks chart: six closes of spot and of each range bound, the settled expiry marked
        await expect(page.get_by_test_id("timeline-weeks")).to_have_attribute(
            "data-points", "19", timeout=WAIT_MS
        )
        marked = "() => window.aegisTimeline.plots.weeks.plot.data[4].filter((v) => v !== null)"
        assert await page.evaluate(marked) == [25_120.0]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "timeline-scorecard.png"
        await page.get_by_test_id("timeline-section").screenshot(path=shot)


async def test_the_chain_panel_shows_oi_change_since_the_open_and_the_past(
    browser: Browser, settings: Settings, tmp_path: Path
) -> None:
    settings, store = with_history(settings, tmp_path)
    open_s = AS_OF - (5 * 3600 + 45 * 60)  # 09:15 IST
    minutes = [chain_minute(open_s + 60 * i, 100.0 + 10 * i) for i in range(2, 8)]  # 09:17..22
    store.write(minutes)
    others = [b for b in all_blocks(as_of=open_s + 420) if b.engine != "seller"]
    publish(settings, *others, minutes[-1])
    with RunningGateway(settings) as gw:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(gw.url)
        chart = page.get_by_test_id("chain-oi-chart")
        await expect(chart).to_have_attribute("data-since", "previous", timeout=WAIT_MS)
        await page.get_by_test_id("chain-oi-since").click()
        await expect(chart).to_have_attribute("data-since", "open", timeout=WAIT_MS)
        call = chart.locator("rect.oi-ce title").first
        await expect(call).to_have_text("25200 CE OI 422 (+50)")  # 09:22 against 09:17
        await expect(page.get_by_test_id("chain-oi-since")).to_contain_text(
            "first chain, 09:17 IST"
        )
        # time travel takes the chain panel along: the chain as it was at 09:19
        await page.evaluate(f"() => window.aegis.showAt({open_s + 270})")
        await expect(call).to_have_text("25200 CE OI 392 (+20)", timeout=WAIT_MS)
        assert errors == []

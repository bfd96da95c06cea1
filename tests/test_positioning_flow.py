"""Positioning from the files to the seller block through the real bus: ingest publishes the
participant-wise OI and the futures rows (each known from its session's evening), the seller
shows FII index-futures and index-option nets, their change and trend, and the future's
build-up from the records known at the snapshot only: never the same session's report."""

from __future__ import annotations

from datetime import date

import msgspec
import redis

from services.ingest.main import IngestService
from services.ingest.sources.participant_oi import read_participant_oi_history
from services.ingest.sources.positioning_file import PositioningFileSource
from services.seller.main import SellerWorker
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.document.seller import SellerData
from shared.contract.schemas import FeatureSnapshot
from shared.market.calendar import daily_close_time
from shared.signals.positioning import TREND_SESSIONS, positioning
from tests.engines_support import daily_snapshot
from tests.test_engines import running, wait_blocks


def snapshot_on(day: str) -> FeatureSnapshot:
    update = {"as_of": daily_close_time(date.fromisoformat(day)), "session_date": day}
    return daily_snapshot("2025-06-27").model_copy(update=update)


def test_the_seller_shows_the_reports_known_at_each_snapshot(
    settings: Settings, redis_client: redis.Redis
) -> None:
    participants, futures = Settings().participant_oi_file, Settings().futures_file
    assert participants is not None and futures is not None  # the bundled files by default
    source = PositioningFileSource(participants, futures)
    counts = IngestService(settings, source, client=redis_client).run()
    history = read_participant_oi_history(participants)
    assert counts["positioning"] == len(history) * 2  # one futures row per session too

    bus = Bus(redis_client, settings)
    for day in ("2026-01-22", "2022-06-01", "2026-02-11"):
        bus.publish(snapshot_on(day))
    with running(SellerWorker, settings):
        blocks = wait_blocks(redis_client, "seller", 3)
    for block in blocks:  # fresh, unavailable and stale positioning meet the contract
        msgspec.convert(block.data, SellerData)
    fresh, before_any, after_last = (b.data["positioning"] for b in blocks)

    # at 2026-01-22's close its own report (out at 19:00) is not known yet: 01-21's is
    known = [d for d in history if d.day < date(2026, 1, 22)][-(TREND_SESSIONS + 1) :]
    expected = positioning(known, "fii", TREND_SESSIONS)
    assert fresh["status"] == "fresh" and fresh["report_date"] == "2026-01-21"
    assert expected.index_futures is not None and expected.index_options is not None
    assert fresh["index_futures"]["value_contracts"] == expected.index_futures.value
    assert fresh["index_futures"]["change_contracts"] == expected.index_futures.change
    assert fresh["index_futures"]["trend_contracts"] == expected.index_futures.trend
    assert fresh["index_options"]["value_contracts"] == known[-1].fii.index_option_direction
    assert fresh["trend_from"] == known[0].day.isoformat()

    future = fresh["future"]
    assert future["session_date"] == "2026-01-21"
    rows = {line.split(",")[0]: line.split(",") for line in futures.read_text().splitlines()[1:]}
    now, prev = rows["2026-01-21"], rows["2026-01-20"]
    price, oi = float(now[2]) - float(prev[2]), float(now[4]) - float(prev[4])
    kind = ("long" if price > 0 else "short") + ("_buildup" if oi > 0 else "")
    if oi < 0:
        kind = "short_covering" if price > 0 else "long_unwinding"
    assert future["buildup"] == kind and future["oi_change_units"] == oi

    assert (
        before_any["status"] == "unavailable" and "no participant-wise OI" in before_any["reason"]
    )
    assert after_last["status"] == "stale" and after_last["report_date"] == "2026-02-06"
    assert "2026-02-06" in after_last["reason"]

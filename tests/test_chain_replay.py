"""A replay of the bundled real daily bars (the history and its continuation to 2026-02)
together with the real intraday chain file that overlaps them: every chain tile of the seller and
buyer blocks is filled where a fresh chain of the target expiry exists, and says why not
where none does."""

from __future__ import annotations

import msgspec
import pytest
import redis

from services.buyer.main import BuyerWorker
from services.ingest.main import IngestService
from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from services.seller.main import SellerWorker
from shared.config import Settings
from shared.contract.document import BLOCK_DATA
from shared.contract.schemas import OptionChain
from tests.pipeline import feature_payloads, run_features
from tests.test_chain_file import CHAIN_FILE
from tests.test_engines import running, wait_blocks

pytestmark = pytest.mark.slow

WINDOW = ReplayWindow(daily_from="2025-01-01", end="2026-02-05", include_intraday=False)


def test_replayed_bars_and_chain_fill_every_chain_tile(
    settings: Settings, redis_client: redis.Redis
) -> None:
    # daily blocks are stamped at the 15:30 close; the file's last snapshots of a day are
    # mid-afternoon, so a daily replay accepts chains up to three hours old
    settings = settings.model_copy(update={"chain_max_age_s": 3 * 3600})
    assert (
        IngestService(settings, ChainFileSource(CHAIN_FILE), client=redis_client).run()["chains"]
        == 411
    )
    IngestService(settings, FileReplaySource(settings.data_dir, WINDOW), client=redis_client).run()
    run_features(settings)
    count = len(feature_payloads(redis_client))
    assert count > 200
    with running(SellerWorker, settings):
        seller = wait_blocks(redis_client, "seller", count)
    with running(BuyerWorker, settings, consumer="b1"):
        buyer = wait_blocks(redis_client, "buyer", count)

    for block in [*seller, *buyer]:  # fresh and unavailable chains meet the contract
        msgspec.convert(block.data, BLOCK_DATA[block.engine])
    by_day = {b.session_date: b for b in seller}
    fresh = sorted(d for d, b in by_day.items() if b.data["chain"]["status"] == "fresh")
    # expected: the sessions with a chain of the block's target expiry in the 3 h to as_of
    chains = [c for c in ChainFileSource(CHAIN_FILE).events() if isinstance(c, OptionChain)]
    expected = sorted(
        d
        for d, b in by_day.items()
        if any(
            c.expiry == b.data["safe_range"]["expiry"]
            and b.as_of - 3 * 3600 <= c.snapshot_time <= b.as_of
            for c in chains
        )
    )
    assert fresh == expected and len(fresh) >= 4 and "2026-01-29" in fresh
    for day in fresh:
        group = by_day[day].data["chain"]
        assert group["pcr"]["oi"] and group["pcr"]["volume"], day
        assert group["walls"]["calls"] and group["walls"]["puts"], day
        assert group["smile"]["points"] and group["delta_skew"]["risk_reversal"] is not None, day
        assert group["straddle"]["move_points"] and group["atm_iv"]["value"], day
        assert group["oi_by_strike"], day
        assert by_day[day].data["max_pain"]["strike"] is not None, day
    assert by_day["2026-01-29"].data["chain"]["expiry"] == "2026-02-03"
    before = by_day["2026-01-21"].data["chain"]
    assert before["status"] == "unavailable" and "2026-01-27" in before["reason"]

    buyer_by_day = {b.session_date: b for b in buyer}
    for day in fresh:
        edge = buyer_by_day[day].data["theta_edge"]
        assert edge["implied_basis"] == "atm_straddle", day
        assert buyer_by_day[day].data["chain"]["straddle_move_points"], day
    assert buyer_by_day["2026-01-21"].data["theta_edge"]["implied_basis"] == "india_vix"

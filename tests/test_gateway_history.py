"""GET /api/v1/history: recent sessions' main signals and today's intraday prices, read from
the block stream, with in-sample model values left out."""

from __future__ import annotations

from typing import Any

import httpx
import redis

from services.gateway.history import History
from shared.config import Settings
from shared.contract.schemas import SignalBlock
from tests.block_factory import make_block
from tests.gateway_harness import RunningGateway, publish
from tests.waiting import wait_for

DAY = 86_400


def on(session: str, block: SignalBlock, **data: Any) -> SignalBlock:
    return block.model_copy(update={"session_date": session, "data": {**block.data, **data}})


def test_one_row_per_session_with_the_newest_block_winning_and_old_sessions_dropped() -> None:
    history = History(sessions=2)
    for i, session in enumerate(["2022-05-30", "2022-05-31", "2022-06-01"]):
        t = 1_653_900_000 + i * DAY
        history.add(on(session, make_block("market", as_of=t, spot=16_000.0 + i)))
        history.add(on(session, make_block("market", as_of=t + 60, spot=16_100.0 + i)))
        history.add(on(session, make_block("market", as_of=t + 30, spot=1.0)))  # older: ignored
        history.add(on(session, make_block("seller", as_of=t)))
    view = history.view(10)
    assert [r["session_date"] for r in view["sessions"]] == ["2022-05-31", "2022-06-01"]
    assert [r["close"] for r in view["sessions"]] == [16_101.0, 16_102.0]
    assert view["sessions"][-1]["trap"] == 0.31
    intraday = view["intraday"]
    assert intraday["session_date"] == "2022-06-01"
    assert [p for _, p in intraday["points"]] == [16_002.0, 16_102.0]
    assert intraday["range_lower"] is not None and intraday["expiry"] == "2025-07-03"


def test_in_sample_model_values_are_left_out() -> None:
    history = History(sessions=5)
    block = make_block("direction", as_of=1_653_900_000)
    today = {**block.data["today"]}
    today["provenance"] = {**today["provenance"], "in_sample": True}
    history.add(on("2022-05-30", block, today=today))
    [row] = history.view(5)["sessions"]
    assert row["up"] is None and row["down"] is None and row["in_sample_left_out"] == 2


def test_history_endpoint_reads_the_stream_then_follows_it(
    settings: Settings, redis_client: redis.Redis
) -> None:
    t0 = 1_653_900_000
    publish(
        settings,
        *(on(f"2022-05-{25 + i}", make_block("market", as_of=t0 + i * DAY)) for i in range(3)),
    )
    with RunningGateway(settings) as gw:
        got = httpx.get(gw.url + "/api/v1/history", params={"sessions": 2}).json()
        assert [r["session_date"] for r in got["sessions"]] == ["2022-05-26", "2022-05-27"]
        publish(settings, on("2022-05-28", make_block("market", as_of=t0 + 3 * DAY)))

        def newest() -> str:
            rows = httpx.get(gw.url + "/api/v1/history").json()["sessions"]
            return rows[-1]["session_date"]

        wait_for(lambda: newest() == "2022-05-28", 10, "history did not follow the stream")
        assert httpx.get(gw.url + "/api/v1/history", params={"sessions": 0}).status_code == 422

"""Block limits at the producer: an engine whose computation yields a NaN or an oversized
section publishes no block for that snapshot (it is dead-lettered with the reason, counted as
rejected) and goes on with the next ones, on a real Redis."""

from __future__ import annotations

import redis
from msgspec.structs import replace

from services.direction.main import DirectionWorker
from shared.bus import streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.document.direction import DirectionData
from shared.contract.schemas import DeadLetter
from shared.models.context import EngineContext
from tests.bus_reads import messages
from tests.engines_support import daily_snapshot
from tests.test_engines import running, wait_blocks
from tests.waiting import wait_for

SESSIONS = ("2023-08-08", "2023-08-09", "2023-08-10", "2023-08-11")
NAN_SESSION, LARGE_SESSION = SESSIONS[1], SESSIONS[2]
LIMIT_BYTES = 64_000


class FaultyDirection(DirectionWorker):
    """The direction engine, with a NaN in one session's section and a huge one in another."""

    def compute_batch(self, contexts: list[EngineContext]) -> list[DirectionData]:
        sections = list(super().compute_batch(contexts))
        for i, (ctx, data) in enumerate(zip(contexts, sections, strict=True)):
            if ctx.snapshot.session_date == NAN_SESSION:
                risk = replace(data.risk_score, value=float("nan"))
                sections[i] = replace(data, risk_score=risk)
            if ctx.snapshot.session_date == LARGE_SESSION:
                today = replace(data.today, basis="x" * LIMIT_BYTES)
                sections[i] = replace(data, today=today)
        return sections


def test_a_section_beyond_the_limits_is_refused_at_the_producer_alone(
    settings: Settings, redis_client: redis.Redis
) -> None:
    settings = settings.model_copy(update={"block_max_bytes": LIMIT_BYTES})
    bus = Bus(redis_client, settings)
    for session in SESSIONS:
        bus.publish(daily_snapshot(session))
    with running(FaultyDirection, settings) as worker:
        published = wait_blocks(redis_client, "direction", 2)
        letters = wait_for(
            lambda: (lambda d: d if len(d) == 2 else None)(
                messages(redis_client, streams.DEAD_LETTER, DeadLetter)
            ),
            timeout_s=30,
            message="two dead letters",
        )
        assert worker.stats["rejected"] == 2
    assert sorted(b.session_date for b in published) == [SESSIONS[0], SESSIONS[3]]
    reasons = sorted(letter.reason for letter in letters)
    too_large, not_finite = reasons
    assert too_large.startswith("refused at the producer: direction block is ")
    assert too_large.endswith(f" bytes as JSON (limit {LIMIT_BYTES})")
    assert (
        not_finite == "refused at the producer: direction.risk_score.value is not a finite number"
    )
    assert all(letter.origin_stream == streams.FEATURES for letter in letters)

"""Publishing to the Redis streams: connections, idempotent bar publishing, signal blocks,
dead letters. Consuming lives in ``shared.bus.worker``."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from shared.bus import streams
from shared.bus.held import held_float, held_int
from shared.config import Settings
from shared.contract.codec import digest, encode
from shared.contract.schemas import (
    Bar,
    DeadLetter,
    FeatureSnapshot,
    FuturesDay,
    Message,
    ModelPublished,
    OptionChain,
    ParticipantPositions,
    SignalBlock,
)
from shared.market import calendar


def connect(
    settings: Settings, blocking_ms: int | None = None, *, socket_timeout: bool = True
) -> redis.Redis:
    """A client whose socket timeout outlasts its longest blocking read (none at all with
    ``socket_timeout=False``: rq blocks on its own timeouts). With AEGIS_REDIS_SENTINELS set,
    the client asks the sentinels for the current primary on every (re)connection, so after a
    failover the next retry reaches the promoted replica."""
    block_s = (blocking_ms if blocking_ms is not None else settings.block_ms) / 1000
    options: dict[str, Any] = {
        "socket_timeout": block_s + 10 if socket_timeout else None,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    return _sentinel(settings, redis.sentinel.Sentinel).master_for(
        settings.redis_sentinel_master, redis_class=redis.Redis, **options, **_auth(settings)
    )


def connect_async(settings: Settings, socket_timeout_s: float) -> redis.asyncio.Redis:
    """The asyncio twin of ``connect`` (the gateway's block reader)."""
    options: dict[str, Any] = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": 5}
    if not settings.redis_sentinels:
        return redis.asyncio.Redis.from_url(settings.redis_url, **options)
    return _sentinel(settings, redis.asyncio.sentinel.Sentinel).master_for(
        settings.redis_sentinel_master,
        redis_class=redis.asyncio.Redis,
        **options,
        **_auth(settings),
    )


def _auth(settings: Settings) -> dict[str, Any]:
    """User, password and database of the Redis URL, for a client the sentinels direct."""
    pool_kwargs = redis.connection.parse_url(settings.redis_url)
    return {k: pool_kwargs[k] for k in ("username", "password", "db") if k in pool_kwargs}


def _sentinel(settings: Settings, kind: Any) -> Any:
    sentinel_auth = (
        {"password": settings.redis_sentinel_password} if settings.redis_sentinel_password else {}
    )
    return kind(
        settings.sentinel_addresses(),
        sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2, **sentinel_auth},
    )


# Publishes a bar unless it is a duplicate, out of order, or a conflicting revision. Every
# published entry gets the series' next sequence number (field s), so a consumer or ingest
# itself can tell a hole (entries lost with an AOF tail) from a gap in the market.
# KEYS: stream, series state, the series' digests of the bar's day (expire after ARGV[7] s).
_PUBLISH_BAR = """
local t = tonumber(ARGV[1])
local prev = redis.call('HGET', KEYS[3], ARGV[1])
if prev == ARGV[2] then return {'duplicate', '', ''} end
-- a field a writer corrupted (not a number) counts as absent and is overwritten below:
-- one poisoned key must not refuse every later bar of the series
local last_t = tonumber(redis.call('HGET', KEYS[2], 'open_time')) or -1
local rev = 0
if prev then
  if t ~= last_t then
    return {'conflict',
      'a different bar at this open time was already published and later bars followed', ''}
  end
  if redis.call('HGET', KEYS[2], 'final') == '1' then
    return {'conflict', 'this bar was already published as closed with other values', ''}
  end
  rev = (tonumber(redis.call('HGET', KEYS[2], 'revision')) or 0) + 1
elseif t <= last_t then
  return {'out_of_order',
    'older than or as old as the last published bar (open_time ' .. last_t .. ')', ''}
end
if not tonumber(redis.call('HGET', KEYS[2], 'seq') or '0') then
  redis.call('HDEL', KEYS[2], 'seq')
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local id = redis.call('XADD', KEYS[1], '*',
  't', ARGV[4], 'v', ARGV[5], 'd', ARGV[6], 'h', ARGV[2], 'r', rev, 's', seq)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('HSET', KEYS[2], 'open_time', ARGV[1], 'digest', ARGV[2], 'final', ARGV[3],
  'revision', rev, 'close', ARGV[8])
return {'published', id, tostring(seq)}
"""

# Appends a block and keeps it as the engine's latest unless a newer as_of is there already.
_PUBLISH_BLOCK = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*',
  't', ARGV[2], 'v', ARGV[3], 'd', ARGV[4])
local current = tonumber(redis.call('HGET', KEYS[3], ARGV[1])) or -1  -- corrupt: absent
if tonumber(ARGV[6]) >= current then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
end
return id
"""

BarOutcome = Literal["published", "duplicate", "out_of_order", "conflict"]


@dataclass(frozen=True)
class BarResult:
    outcome: BarOutcome
    detail: str  # the stream id when published, the reason otherwise
    seq: int | None = None  # the series sequence number when published


@dataclass(frozen=True)
class SeriesPosition:
    """What Redis holds of one series: the last sequence number, open time and close."""

    seq: int
    open_time: int
    close: float | None


class NotDurable(redis.ConnectionError):
    """A write reached the primary but not the replicas it must reach: retried like an outage
    (a failover now would lose it), never reported as done."""


def make_durable(client: redis.Redis, settings: Settings) -> None:
    """Wait until ``settings.redis_wait_replicas`` replicas hold every write made before this
    call (Redis WAIT); raise ``NotDurable`` if they do not within the timeout. No-op with 0."""
    wanted = settings.redis_wait_replicas
    if wanted <= 0:
        return
    # WAIT covers the writes of the connection it is sent on, and a pool may hand out another
    # one than the write used: a write on the WAIT's own connection, after ours in the one
    # replication stream, makes its acknowledgement cover ours too
    pipe = client.pipeline(transaction=False)
    pipe.set(streams.DURABLE, 1)
    pipe.wait(wanted, settings.redis_wait_timeout_ms)
    acked = int(pipe.execute()[1])
    if acked < wanted:
        raise NotDurable(
            f"written to the primary but only {acked} of {wanted} replicas acknowledged it "
            f"within {settings.redis_wait_timeout_ms} ms"
        )


class Bus:
    """Writes messages to their streams. One instance per process."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._publish_bar_sha = hashlib.sha1(_PUBLISH_BAR.encode()).hexdigest()

    # Bars ---------------------------------------------------------------------------------
    def publish_bars(self, bars: list[Bar], *, durable: bool = True) -> list[BarResult]:
        """Publish bars idempotently in one round trip; results are in input order.

        EVALSHA, not redis-py's registered script (whose pipeline first asks SCRIPT EXISTS:
        one more round trip per live bar); a Redis that does not hold the script (restarted,
        flushed) answers NOSCRIPT to every bar and changes nothing, so the script is loaded
        and the batch sent again."""
        calls = [self._bar_call(bar) for bar in bars]
        try:
            replies = self._run_bar_calls(calls)
        except redis.exceptions.NoScriptError:
            self.client.script_load(_PUBLISH_BAR)
            replies = self._run_bar_calls(calls)
        if durable:  # else the caller waits (make_durable) once it has kept the results
            make_durable(self.client, self.settings)  # raised: the batch is sent again
        results = []
        for raw in replies:
            outcome, detail, seq = (x.decode() if isinstance(x, bytes) else x for x in raw)
            # the publish script answers one of BarOutcome
            results.append(BarResult(cast(BarOutcome, outcome), detail, int(seq) if seq else None))
        return results

    def _bar_call(self, bar: Bar) -> tuple[Any, ...]:
        """The publish script's keys and arguments for one bar."""
        fields = encode(bar)
        day = calendar.ist_date(bar.open_time).isoformat()
        return (
            streams.BARS,
            streams.series_state(bar.symbol, bar.interval),
            streams.series_digests(bar.symbol, bar.interval, day),
            bar.open_time,
            digest(fields["d"]),
            int(bar.final),
            fields["t"],
            fields["v"],
            fields["d"],
            self.settings.digest_ttl_s,
            repr(bar.close),
        )

    def _run_bar_calls(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(self._publish_bar_sha, 3, *call)
        return list(pipe.execute())

    def last_open_time(self, symbol: str, interval: str) -> int | None:
        """Open time of the newest bar published on a series, None if none was (or if the
        field is corrupt: see ``held_int``)."""
        key = streams.series_state(symbol, interval)
        return held_int(key, "open_time", self.client.hget(key, "open_time"))

    def positions(self, series: list[tuple[str, str]]) -> dict[tuple[str, str], SeriesPosition]:
        """What Redis holds of each series (absent: nothing published), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for symbol, interval in series:
            pipe.hmget(streams.series_state(symbol, interval), "seq", "open_time", "close")
        held = {}
        for (symbol, interval), (seq, open_time, close) in zip(series, pipe.execute(), strict=True):
            key = streams.series_state(symbol, interval)
            at = held_int(key, "open_time", open_time)
            if at is not None:
                held[(symbol, interval)] = SeriesPosition(
                    held_int(key, "seq", seq) or 0, at, held_float(key, "close", close)
                )
        return held

    # Any message --------------------------------------------------------------------------
    def stage(self, pipe: Any, message: Message) -> None:
        """Queue the commands that publish ``message`` on ``pipe`` (a transaction, usually).

        Streams read by consumer groups (snapshots) are not capped here: they are trimmed
        only once every group acknowledged (``shared.bus.retention``). Blocks and dead letters
        keep a bounded number of entries; chains and model events ``stream_maxlen``."""
        fields = encode(message)
        if isinstance(message, SignalBlock):
            # EVAL, not the registered script: a pipeline holding a script first asks Redis
            # whether it is loaded (SCRIPT EXISTS, one more round trip per batch, on the live
            # path); the script's text costs no round trip, and Redis caches it compiled.
            pipe.eval(
                _PUBLISH_BLOCK,
                3,
                streams.BLOCKS,
                streams.LATEST_BLOCKS,
                streams.LATEST_BLOCKS + ":as_of",
                message.engine,
                fields["t"],
                fields["v"],
                fields["d"],
                self.settings.blocks_maxlen,
                message.as_of,
            )
            return
        stream = STREAM_OF.get(type(message))
        if stream is None:
            raise TypeError(f"no stream for {type(message).__name__}")
        if stream in GROUP_READ:
            pipe.xadd(stream, fields)
            return
        maxlen = (
            self.settings.dead_letter_maxlen
            if stream == streams.DEAD_LETTER
            else self.settings.stream_maxlen
        )
        pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)

    def publish(self, message: Message) -> None:
        pipe = self.client.pipeline(transaction=True)
        self.stage(pipe, message)
        pipe.execute()
        make_durable(self.client, self.settings)

    def dead_letter(
        self,
        *,
        origin_stream: str,
        origin_id: str | None,
        service: str,
        reason: str,
        payload: bytes,
        pipe: Any = None,
    ) -> None:
        """Record a rejected message with its reason; only the first
        ``dead_letter_excerpt_bytes`` of its payload are kept (``payload_size`` says how many
        there were), so a flood of oversized entries cannot fill memory."""
        keep = self.settings.dead_letter_excerpt_bytes
        letter = DeadLetter(
            origin_stream=origin_stream,
            origin_id=origin_id,
            service=service,
            reason=reason[:keep],
            payload=bytes(payload[:keep]),
            payload_size=len(payload),
            failed_at=int(time.time() * 1000),
        )
        if pipe is None:
            self.publish(letter)
        else:
            self.stage(pipe, letter)


STREAM_OF: dict[type[Message], str] = {
    FeatureSnapshot: streams.FEATURES,
    OptionChain: streams.CHAINS,
    ParticipantPositions: streams.CHAINS,  # the option market's daily context rides with it
    FuturesDay: streams.CHAINS,
    ModelPublished: streams.MODEL_EVENTS,
    DeadLetter: streams.DEAD_LETTER,
}
# Streams consumed by consumer groups: trimmed by acknowledgement, never by length.
GROUP_READ = frozenset({streams.BARS, streams.FEATURES})

"""Ingest: pull events from a source, check them, publish them idempotently to the bus.

consume (source) → check (shared.market.validation against the last accepted bar of each series,
calendar gaps) → publish (HoleRepairingPublisher); a bad bar is dead-lettered with its
reasons and every other bar keeps flowing; a rejected bar moves no watermark. The
reference of the checks starts from what Redis holds, and each batch first re-publishes
what Redis lost since (see services.ingest.publisher). After a stop the batch in hand is
still written (once: no retrying while Redis is away at shutdown).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import orjson
import redis

from services.ingest.publisher import HoleRepairingPublisher
from services.ingest.quality import session_gap
from services.ingest.sources.base import RejectedInput, Source, SourceEvent
from services.ingest.sources.feed_status import feed_problem
from services.ingest.sources.pacing import event_time
from shared.bus import held, streams
from shared.bus.lifecycle import Backoff, HealthReporter, RejectWindow, call_with_reconnect
from shared.bus.publish import Bus, connect
from shared.bus.retention import OwnStreamTrim
from shared.bus.run_epoch import EpochWatch
from shared.config import Settings
from shared.contract.codec import encode
from shared.contract.schemas import Bar, FuturesDay, OptionChain, ParticipantPositions
from shared.logs import get_logger
from shared.market import calendar, validation
from shared.market.chain_validation import chain_problems
from shared.market.chain_validation import describe as describe_chain
from shared.market.clock import RunInfo
from shared.market.validation import describe as _describe

SERVICE = "ingest"
BATCH_SIZE = 512
FLUSH_AFTER_S = 0.05
PROGRESS_EVERY_S = 10.0  # a replay logs one progress line (replayed date, bars/s) this often
LIVE_SOURCES = ("yfinance",)
_DONE = object()


class IngestService:
    def __init__(
        self, settings: Settings, source: Source, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings
        self.source = source
        self.client = client or connect(settings)
        self.bus = Bus(self.client, settings)
        self.log = get_logger(SERVICE).bind(source=source.name)
        self.stop_event = threading.Event()
        self.counts: dict[str, int] = {
            "published": 0,
            "duplicate": 0,
            "dead_lettered": 0,
            "gap_sessions": 0,
            "chains": 0,
            "positioning": 0,
            "outside_calendar": 0,
        }
        self.rejected: dict[str, int] = {}  # label -> dead-lettered bars
        self.limits = validation.Limits.from_settings(settings)
        self.accepted: validation.Accepted = {}
        self.publisher = HoleRepairingPublisher(
            self.bus, settings.republish_buffer, self._unrecoverable
        )
        self.backoff = Backoff.from_settings(settings)
        self.health = HealthReporter(self.client, settings, SERVICE, source.name)
        self.bars_trim = OwnStreamTrim(streams.BARS, settings.stream_maxlen)
        # Redis lost its data: the publisher finds every series behind and re-publishes
        self.epoch = EpochWatch(SERVICE)
        self._loss_handled_at: float | None = None  # the last loss ``keep_published`` acted on
        self._rejects = RejectWindow(settings)  # bars published vs rejected
        self._last_daily: dict[str, date] = {}
        self.finished = False
        self.stream_time_s: int | None = None  # event time of the newest bar published
        self._stream_at_ms = 0
        self._progress = (time.monotonic(), 0)  # (when, published) at the last progress line
        self._gaps: list[str] = []  # calendar gaps, summarised in one line at the end
        self._outside: list[str] = []  # bars on days the calendar has no session, likewise

    def run(self) -> dict[str, int]:
        """Publish everything the source yields; returns the counts when it is exhausted."""
        events: queue.Queue[Any] = queue.Queue(maxsize=BATCH_SIZE * 8)
        self._resume()
        reader = threading.Thread(target=self._read_source, args=(events,), daemon=True)
        reader.start()
        batch: list[Bar] = []
        started = time.monotonic()
        while not self.stop_event.is_set():
            try:
                event = events.get(timeout=FLUSH_AFTER_S)
            except queue.Empty:
                self._flush(batch)
                self._write_health()
                continue
            if event is _DONE:
                break
            if isinstance(event, Exception) and not isinstance(event, RejectedInput):
                self._flush(batch)
                raise event
            self._accept(event, batch)
            if len(batch) >= BATCH_SIZE:
                self._flush(batch)
                self._write_health()
        self._flush(batch)
        stopped = self.stop_event.is_set()
        self.finished = not stopped
        self._write_health(force=True)
        self._log_gaps()
        self.log.info(
            "source_stopped" if stopped else "source_exhausted",
            seconds=round(time.monotonic() - started, 2),
            replayed_until=_stamp(self.stream_time_s),
            **self.counts,
        )
        return dict(self.counts)

    def stop(self) -> None:
        self.stop_event.set()
        self.source.close()

    def _resume(self) -> None:
        """Take the checks' reference and the sequence numbers from what Redis holds."""
        held = call_with_reconnect(
            lambda: self.publisher.resume(sorted(validation.SUPPORTED_SERIES)),
            self.stop_event,
            self.log,
            what="series positions",
            backoff=self.backoff,
        )
        for (symbol, interval), pos in (held or {}).items():
            if pos.close is not None:
                self.accepted = {**self.accepted, (symbol, interval): (pos.open_time, pos.close)}

    def _read_source(self, events: queue.Queue[Any]) -> None:
        try:
            for event in self.source.events():
                while not self.stop_event.is_set():
                    try:
                        events.put(event, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if self.stop_event.is_set():
                    return
        except Exception as exc:  # surfaced in run(), not swallowed here
            self.log.error("source_failed", error=f"{type(exc).__name__}: {exc}")
            events.put(exc)
        events.put(_DONE)

    def _accept(self, event: SourceEvent | RejectedInput, batch: list[Bar]) -> None:
        if isinstance(event, RejectedInput):
            self._dead_letter(event.reason, event.raw)
        elif isinstance(event, OptionChain):
            problems = chain_problems(event, now_s=time.time())
            if problems:
                reason = f"{describe_chain(event)}: " + "; ".join(problems)
                self._dead_letter(reason, encode(event)["d"], "invalid")
                return
            self._flush(batch)
            if self._write(
                lambda: self.bus.publish(event),
                f"option chain {event.expiry} at {event.snapshot_time}",
            ):
                self.counts["chains"] += 1
        elif isinstance(event, ParticipantPositions | FuturesDay):
            ahead = event.available_at - time.time()
            if ahead > self.settings.validation_max_future_s:
                reason = f"{event.TYPE} {event.session_date}: known only {ahead:.0f} s from now"
                self._dead_letter(reason, encode(event)["d"], "invalid")
                return
            self._flush(batch)
            if self._write(lambda: self.bus.publish(event), f"{event.TYPE} {event.session_date}"):
                self.counts["positioning"] += 1
        elif isinstance(event, Bar):
            ref = validation.reference(self.accepted, event)
            problems = validation.bar_problems(
                event, now_s=time.time(), limits=self.limits, reference=ref
            )
            if problems:
                reason = f"{_describe(event)}: " + "; ".join(problems)
                self._dead_letter(reason, encode(event)["d"], "invalid")
                return
            self.accepted = validation.accept(self.accepted, event)
            self._note_gaps(event)
            batch.append(event)

    def _note_gaps(self, bar: Bar) -> None:
        if bar.interval != "1d":
            return
        day = calendar.ist_date(bar.open_time)
        missing = session_gap(self._last_daily.get(bar.symbol), day)
        if missing:
            self.counts["gap_sessions"] += len(missing)
            self._gaps.append(f"{bar.symbol} {len(missing)} before {day}")
            self.log.debug(
                "calendar_gap",
                symbol=bar.symbol,
                before=str(day),
                missing_sessions=[str(d) for d in missing[:10]],
                count=len(missing),
            )
        if day not in (self._last_daily.get(bar.symbol),) and not calendar.is_session(day):
            self.counts["outside_calendar"] += 1  # NSE's special sessions (e.g. Saturdays)
            self._outside.append(f"{bar.symbol} {day}")  # summarised in one line
            self.log.debug("bar_outside_calendar", symbol=bar.symbol, day=str(day))
        self._last_daily[bar.symbol] = max(day, self._last_daily.get(bar.symbol, day))

    def _flush(self, batch: list[Bar]) -> None:
        if not batch:
            return
        results = call_with_reconnect(
            lambda: self.publisher.publish(batch),
            self.stop_event,
            self.log,
            what=f"{len(batch)} bars up to {_describe(batch[-1])}",
            backoff=self.backoff,
        )
        if results is None:  # stopped while Redis was away; the source replays on restart
            return
        self.stream_time_s = max(self.stream_time_s or 0, event_time(batch[-1]))
        self._stream_at_ms = int(time.time() * 1000)
        for bar, result in zip(batch, results, strict=True):
            if result.outcome == "published":
                self.counts["published"] += 1
            elif result.outcome == "duplicate":
                self.counts["duplicate"] += 1
            else:
                self._dead_letter(
                    f"{_describe(bar)}: {result.outcome}: {result.detail}",
                    encode(bar)["d"],
                    result.outcome,
                )
        batch.clear()

    def _unrecoverable(self, reason: str) -> None:
        self._dead_letter(reason, b"", "lost_by_redis")

    def _dead_letter(self, reason: str, raw: bytes, label: str = "unparsable") -> None:
        self.rejected[label] = self.rejected.get(label, 0) + 1
        self.log.warning("bar_rejected", reason=reason, label=label)
        if self._write(
            lambda: self.bus.dead_letter(
                origin_stream=f"source:{self.source.name}",
                origin_id=None,
                service=SERVICE,
                reason=reason,
                payload=raw,
            ),
            f"dead letter: {reason}",
        ):
            self.counts["dead_lettered"] += 1

    def _write(self, fn: Callable[[], object], what: str) -> bool:
        """Runs a Redis write (retrying while Redis is away); False if it was given up."""

        def attempt() -> bool:
            fn()
            return True

        return bool(
            call_with_reconnect(attempt, self.stop_event, self.log, what, backoff=self.backoff)
        )

    def _write_health(self, force: bool = False) -> None:
        if not self.health.due(force):
            return
        try:
            self.epoch.check(self.client)
        except redis.RedisError as exc:  # Redis away: the publish path retries, not this
            self.log.warning("epoch_check_failed", error=str(exc))
        source_status = getattr(self.source, "status", {}) or {}
        problem = feed_problem(source_status)
        degraded = [f"source {self.source.name}: {problem}"] if problem else []
        degraded += self._bus_problems() + held.degraded_reasons() + self.epoch.degraded_reasons()
        degraded += self._trim_bars()
        fields = {
            "finished": self.finished,
            "source": source_status,
            **self.counts,
            "rejected": self.rejected,
            "holes_repaired": self.publisher.holes,
            "republished": self.publisher.republished,
            "lost_unrecoverable": self.publisher.unrecoverable,
        }
        try:
            self.health.write(degraded, fields)
            self.client.set(streams.RUN, orjson.dumps(self.run_info().to_json()))
        except redis.RedisError as exc:
            self.log.warning("health_write_failed", error=str(exc))
        self._log_progress(force)

    def _trim_bars(self) -> list[str]:
        """Trim the bars every group acknowledged (ingest writes the stream, so it trims
        it); the reason when unread bars alone exceed the limit."""
        try:
            self.bars_trim.trim(self.client)
        except redis.RedisError as exc:  # Redis away: the publish path retries, not this
            self.log.warning("trim_failed", stream=streams.BARS, error=str(exc))
        reason = self.bars_trim.degraded_reason()
        return [reason] if reason else []

    def keep_published(self) -> bool:
        """One step of watching over what was published, after the source ended: re-publish
        what Redis lost from the buffer (an AOF cut, a failover to a lagging replica), trim,
        report health. True when Redis lost all its data (the run epoch): the source must be
        replayed again, as the buffer may not hold it all."""
        try:
            self.epoch.check(self.client)  # a health report may have seen the loss first
            if self.epoch.lost_at != self._loss_handled_at:
                self._loss_handled_at = self.epoch.lost_at
                return True
            self.publisher.publish([])  # finds and fills a hole before any new bar
        except redis.RedisError as exc:  # Redis away: the next step tries again
            self.log.warning("watch_step_failed", error=str(exc))
        self._write_health(force=True)
        return False

    def run_info(self) -> RunInfo:
        """What this feed is doing, for the gateway's clock (shared.market.clock.RunClock)."""
        live = self.source.name in LIVE_SOURCES
        speed = float(getattr(self.source, "speed", self.settings.replay_speed))
        return RunInfo(
            mode="live" if live else "replay",
            source=self.source.name,
            speed=0.0 if live else speed,
            paced=self._paced(speed),
            stream_time_s=self.stream_time_s,
            stream_at_ms=self._stream_at_ms,
            finished=self.finished,
        )

    def _paced(self, speed: float) -> bool:
        """Whether what is being published now is paced: asked of the source at the newest
        published event time (its reader runs ahead of publishing)."""
        is_paced = getattr(self.source, "is_paced", None)
        if is_paced is not None and self.stream_time_s is not None:
            return bool(is_paced(self.stream_time_s))
        return speed > 0

    def _log_progress(self, force: bool) -> None:
        """One line per PROGRESS_EVERY_S during a replay: where it is and how fast."""
        then, published_then = self._progress
        now = time.monotonic()
        if self.source.name in LIVE_SOURCES or (not force and now - then < PROGRESS_EVERY_S):
            return
        done = self.counts["published"] + self.counts["duplicate"]
        self._progress = (now, done)
        self.log.info(
            "replay_progress",
            replayed_to=_stamp(self.stream_time_s),
            bars_per_s=round((done - published_then) / max(now - then, 1e-3), 1),
            paced=self.run_info().paced,
            **self.counts,
        )

    def _log_gaps(self) -> None:
        if self._outside:
            self.log.warning(
                "bars_outside_calendar",
                note="bars on days the NSE calendar has no session (kept)",
                bars=len(self._outside),
                first=self._outside[:5],
            )
        if self._gaps:
            self.log.warning(
                "calendar_gaps",
                note="sessions the NSE calendar expects but the source lacks",
                sessions=self.counts["gap_sessions"],
                gaps=len(self._gaps),
                first=self._gaps[:5],
            )

    def _bus_problems(self) -> list[str]:
        """Degraded when rejections exceed the configured share of recent bars, or when
        Redis lost bars that could not be re-published."""
        problems = []
        too_many = self._rejects.add(
            self.counts["published"] + self.counts["duplicate"], sum(self.rejected.values())
        )
        if too_many is not None:
            good, bad = too_many
            problems.append(
                f"{bad} of the last {good + bad} bars rejected "
                f"(threshold {self._rejects.ratio:.0%})"
            )
        if self.publisher.unrecoverable:
            problems.append(
                f"Redis lost {self.publisher.unrecoverable} bars beyond the re-publish buffer"
            )
        return problems


def _stamp(epoch_s: int | None) -> str | None:
    """``2022-06-01 10:15 IST`` for an event time."""
    if epoch_s is None:
        return None
    return f"{datetime.fromtimestamp(epoch_s, calendar.IST):%Y-%m-%d %H:%M} IST"

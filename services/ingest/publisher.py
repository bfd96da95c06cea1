"""Publishing bars so that what Redis lost is noticed and sent again.

Every bar Redis accepts gets its series' next sequence number. The publisher remembers the
last number it was given per series and, before each batch, reads what Redis holds: a
smaller number means Redis lost the tail of its log (an AOF cut after a crash, a failover to
a lagging replica). The publisher then re-publishes the lost bars from the bounded buffer of
bars it sent (``republish_buffer`` per series) before the batch, so the stream has no hole.
A loss larger than the buffer cannot be repaired here: it is logged, dead-lettered and
counted, and the source must be replayed from the last bar Redis holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from services.ingest.sources.ordering import event_order
from shared.bus.publish import BarResult, Bus, SeriesPosition, make_durable
from shared.contract.schemas import Bar
from shared.logs import get_logger

Series = tuple[str, str]
log = get_logger("ingest")


class HoleRepairingPublisher:
    def __init__(self, bus: Bus, buffer_size: int, on_unrecoverable: Callable[[str], None]) -> None:
        self.bus = bus
        self.buffer_size = buffer_size
        self.on_unrecoverable = on_unrecoverable
        self.seq: dict[Series, int] = {}  # last sequence number Redis gave us, per series
        self.sent: dict[Series, deque[Bar]] = {}
        self.holes = 0
        self.republished = 0
        self.unrecoverable = 0

    def resume(self, series: list[Series]) -> dict[Series, SeriesPosition]:
        """Start from what Redis holds (not from memory): the positions it returns."""
        held = self.bus.positions(series)
        for key in series:
            self.seq[key] = held[key].seq if key in held else 0
        return held

    def publish(self, bars: list[Bar]) -> list[BarResult]:
        """Repair any hole, then publish ``bars``; idempotent, so safe to retry whole."""
        new: list[Series] = sorted({(b.symbol, b.interval) for b in bars} - self.seq.keys())
        if new:
            self.resume(new)
        self._repair()
        results = self.bus.publish_bars(bars, durable=False)
        self._remember(bars, results)  # before the wait: a retry finds them as duplicates
        make_durable(self.bus.client, self.bus.settings)
        return results

    def _remember(self, bars: list[Bar], results: list[BarResult]) -> None:
        for bar, result in zip(bars, results, strict=True):
            if result.seq is None:
                continue
            key = (bar.symbol, bar.interval)
            self.seq[key] = result.seq
            self.sent.setdefault(key, deque(maxlen=self.buffer_size)).append(bar)

    def _repair(self) -> None:
        """Re-publish what Redis lost, every series' lost bars merged in event order (one
        series after another would put a later minute before an earlier daily bar, which
        the features worker then refuses as out of order)."""
        held = self.bus.positions(list(self.seq))
        resend: list[Bar] = []
        for key, expected in list(self.seq.items()):
            position = held.get(key)
            have = position.seq if position else 0
            if have >= expected:
                continue
            lost = expected - have
            after = position.open_time if position else -1
            buffered = [b for b in self.sent.get(key, ()) if b.open_time > after]
            self.holes += 1
            log.error(
                "bus_lost_entries",
                series=":".join(key),
                redis_seq=have,
                published_seq=expected,
                lost=lost,
                republishing=len(buffered),
            )
            self.seq[key] = have
            self.sent[key] = deque(
                (b for b in self.sent.get(key, ()) if b.open_time <= after),
                maxlen=self.buffer_size,
            )
            if len(buffered) < lost:
                self.unrecoverable += lost - len(buffered)
                self.on_unrecoverable(
                    f"{':'.join(key)}: Redis lost {lost} entries after sequence number {have} "
                    f"(open_time {after}); only {len(buffered)} were still buffered to "
                    "re-publish: replay the source from that open time"
                )
            resend += buffered
        if resend:
            resend.sort(key=event_order)
            results = self.bus.publish_bars(resend, durable=False)  # made durable with the batch
            self._remember(resend, results)
            self.republished += sum(r.outcome == "published" for r in results)

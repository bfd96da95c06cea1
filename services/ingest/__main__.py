"""python -m services.ingest: run the configured source (AEGIS_SOURCE) until it ends or stops.
After a file replay it stays up until stopped (AEGIS_REPLAY_WATCH, on by default), keeping
what it published: it trims the bars' stream (which it alone writes), re-publishes what Redis
loses, and replays again when Redis lost everything.

With AEGIS_CHAIN_FILE set, the option-chain file is ingested first; with
AEGIS_CHAIN_SOURCE=nse the live chain feed runs beside the bars. SIGTERM/SIGINT stop
whichever ingest is running (its final batch is still written) and skip what is left.
"""

from __future__ import annotations

import threading

from services.ingest.main import IngestService
from services.ingest.sources.base import Source
from services.ingest.sources.file_replay import FileReplaySource
from shared.bus.lifecycle import serve
from shared.bus.publish import Bus, connect
from shared.config import Settings, get_settings
from shared.logs import get_logger

log = get_logger("ingest")


def published_until(settings: Settings) -> int | None:
    """Newest bar open time already on the bus (an earlier run of this replay), if any."""
    with connect(settings) as client:
        bus = Bus(client, settings)
        times = [
            bus.last_open_time(symbol, interval)
            for symbol, interval in (("NIFTY", "1m"), ("NIFTY", "1d"), ("VIX", "1d"))
        ]
    newest = max((t for t in times if t is not None), default=None)
    if newest is not None:
        log.info("replay_resumes", fast_until=newest)
    return newest


def build_source(settings: Settings, stop: threading.Event) -> Source:
    if settings.source == "file":
        return FileReplaySource.from_settings(settings, stop, published_until(settings))
    if settings.source == "stream":
        from services.ingest.sources.stream_file import StreamFileSource

        if settings.replay_file is None:
            raise SystemExit("AEGIS_SOURCE=stream needs AEGIS_REPLAY_FILE")
        return StreamFileSource(
            settings.replay_file,
            settings.replay_speed,
            max_gap_s=settings.replay_max_gap_s,
            stop=stop,
        )
    from services.ingest.sources.yfinance_source import YFinanceSource

    return YFinanceSource(settings, stop=stop)


class Runner:
    """Runs the ingests one after another; ``stop()`` (the signal handler) ends the
    running one and any not started yet. Every source gets ``stop_event``."""

    service = "ingest"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self._running: IngestService | None = None
        self._chain_feed: IngestService | None = None

    def stop(self) -> None:
        # Runs in the main thread between bytecodes: no locks, no logging (stderr writes
        # are not reentrant); the services log their own shutdown.
        self.stop_event.set()
        for running in (self._running, self._chain_feed):
            if running is not None:
                running.stop()

    def _run(self, source: Source) -> None:
        service = IngestService(self.settings, source)
        self._running = service
        if self.stop_event.is_set():  # the signal came before _running was set
            service.stop()
        service.run()

    def _start_chain_feed(self) -> threading.Thread | None:
        """With AEGIS_CHAIN_SOURCE=nse, the live chain feed runs beside the bars as its own
        ingest (its own health report, so a failing chain feed is degraded on its own)."""
        if self.settings.chain_source != "nse":
            return None
        from services.ingest.sources.chain_feed import ChainPollSource
        from services.ingest.sources.nse_chain import NseChainFeed

        source = ChainPollSource(NseChainFeed(), self.settings, stop=self.stop_event)
        self._chain_feed = IngestService(self.settings, source)
        thread = threading.Thread(target=self._chain_feed.run, name="chain-feed", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        chain_feed = self._start_chain_feed()
        self._run_sources()
        if self.settings.replay_watch and self.settings.source == "file":
            self._watch()
        if chain_feed is not None:
            chain_feed.join()

    def _watch(self, every_s: float = 1.0) -> None:
        """After the replay, until stopped: the bars' ingest keeps what it published (see
        ``IngestService.keep_published``); Redis that lost everything gets the replay again
        (it resumes from what Redis holds: nothing)."""
        while not self.stop_event.wait(every_s):
            if self._running is not None and self._running.keep_published():
                log.error("replaying_after_data_loss", note="Redis lost its data")
                self._run_sources()

    def _run_sources(self) -> None:
        participants, futures = self.settings.participant_oi_file, self.settings.futures_file
        if participants is not None or futures is not None:
            from services.ingest.sources.positioning_file import PositioningFileSource

            self._run(PositioningFileSource(participants, futures, stop=self.stop_event))
        if self.stop_event.is_set():
            return
        if self.settings.chain_file is not None:
            from services.ingest.sources.chain_file import ChainFileSource, file_context

            context = file_context(self.settings)
            self._run(
                ChainFileSource(self.settings.chain_file, stop=self.stop_event, context=context)
            )
        if self.stop_event.is_set():
            return
        self._run(build_source(self.settings, self.stop_event))


def main() -> None:
    serve(Runner, get_settings())


if __name__ == "__main__":
    main()

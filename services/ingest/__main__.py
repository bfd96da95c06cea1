"""python -m services.ingest: run the configured source (AEGIS_SOURCE) until it ends or stops."""
from __future__ import annotations

import signal
import threading

from services.ingest.main import IngestService
from services.ingest.sources.base import Source
from services.ingest.sources.file_replay import FileReplaySource
from shared.config import Settings, get_settings
from shared.logs import configure_logging


def build_source(settings: Settings, stop: threading.Event) -> Source:
    if settings.source == "file":
        return FileReplaySource.from_settings(settings, stop)
    if settings.source == "stream":
        from services.ingest.sources.stream_file import StreamFileSource

        if settings.replay_file is None:
            raise SystemExit("AEGIS_SOURCE=stream needs AEGIS_REPLAY_FILE")
        return StreamFileSource(settings.replay_file, settings.replay_speed,
                                max_gap_s=settings.replay_max_gap_s, stop=stop)
    from services.ingest.sources.yfinance_source import YFinanceSource

    return YFinanceSource(settings, stop=stop)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    stop = threading.Event()
    service = IngestService(settings, build_source(settings, stop))
    if settings.chain_file is not None:
        from services.ingest.sources.chain_file import ChainFileSource

        IngestService(settings, ChainFileSource(settings.chain_file)).run()

    def _stop(signum: int, frame: object) -> None:
        stop.set()
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.run()


if __name__ == "__main__":
    main()

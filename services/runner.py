"""Process entry point shared by the stream workers: settings, logs, signals, run."""

from __future__ import annotations

import signal
from typing import Any

from shared.config import get_settings
from shared.logs import configure_logging
from shared.worker import StreamWorker


def run_worker(worker_class: type[StreamWorker], **kwargs: Any) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    worker = worker_class(settings, **kwargs)

    def _stop(signum: int, frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()

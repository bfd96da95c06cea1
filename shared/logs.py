"""Structured logging: readable lines on a terminal, one JSON object a line otherwise.

``json=None`` (the default, AEGIS_LOG_JSON unset) picks by where stderr goes: a TTY gets
structlog's ConsoleRenderer (colours, aligned keys), a pipe or file gets JSON, so log
collectors and tests keep parsing the same records."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def wants_json(json: bool | None, stream: TextIO | None = None) -> bool:
    """The renderer choice: explicit setting, else JSON unless ``stream`` is a terminal."""
    if json is not None:
        return json
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    tail: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if wants_json(json)
        else [structlog.dev.ConsoleRenderer(colors=True)]  # renders exceptions itself
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(service=name)

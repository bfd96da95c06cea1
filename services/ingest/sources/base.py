"""The one interface every ingest source implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from shared.contract.schemas import Bar, FuturesDay, OptionChain, ParticipantPositions

SourceEvent = Bar | OptionChain | ParticipantPositions | FuturesDay


class RejectedInput(Exception):
    """Raw input a source could not turn into a message (the text says why)."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class Source(Protocol):
    """Yields messages in event order, pacing itself (replay speed, live polling).

    A source yields ``RejectedInput`` for a record it cannot parse, so the ingest service
    can dead-letter it with the reason and carry on with the rest.
    """

    name: str

    def events(self) -> Iterator[SourceEvent | RejectedInput]: ...

    def close(self) -> None: ...

    @property
    def status(self) -> dict[str, object]:
        """Source health for the ingest service's report (feed errors, last success)."""
        ...

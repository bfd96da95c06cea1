"""Record Redis streams to one msgpack file, and replay recorded bars and chains.

File layout: a msgpack header map ``{"format": "aegis-streams", "format_version",
"schema_version", "streams", "recorded_at_ms"}`` followed by one ``[stream, entry_id,
fields]`` array per entry (fields as raw bytes), merged across streams in entry-id order
(entries of different streams in the same millisecond keep the order of ``stream_names``).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import redis

from services.ingest.sources.base import RejectedInput, SourceEvent
from services.ingest.sources.pacing import Pacer, event_time
from shared.bus import replies, streams
from shared.contract.codec import DecodeError, decode, pack
from shared.contract.schemas import (
    SCHEMA_VERSION,
    Bar,
    FuturesDay,
    OptionChain,
    ParticipantPositions,
)
from shared.logs import get_logger

FORMAT = "aegis-streams"
FORMAT_VERSION = 1
REPLAYED_STREAMS = (streams.BARS, streams.CHAINS)
_BATCH = 1000

log = get_logger("ingest.stream_file")

Entry = tuple[str, bytes, dict[bytes, bytes]]


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


def _read_stream(client: redis.Redis, stream: str) -> Iterator[Entry]:
    """Every entry of one stream, oldest first, in batches."""
    start = "-"
    while True:
        batch = replies.xrange(client, stream, min=start, max="+", count=_BATCH)
        for entry_id, fields in batch:
            yield stream, entry_id, fields
        if len(batch) < _BATCH:
            return
        start = "(" + batch[-1][0].decode()


def record_streams(client: redis.Redis, stream_names: list[str], path: Path) -> int:
    """Dump every entry of ``stream_names`` (ids and raw fields) into ``path``; returns the
    number of entries written. The file is written beside and renamed, so it is whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    merged = heapq.merge(
        *(_read_stream(client, s) for s in stream_names), key=lambda e: _entry_key(e[1])
    )
    count = 0
    with open(tmp, "wb") as out:
        out.write(
            pack(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "schema_version": SCHEMA_VERSION,
                    "streams": list(stream_names),
                    "recorded_at_ms": int(time.time() * 1000),
                }
            )
        )
        for stream, entry_id, fields in merged:
            out.write(pack([stream, entry_id, fields]))
            count += 1
    tmp.replace(path)
    log.info("streams_recorded", path=str(path), streams=list(stream_names), entries=count)
    return count


def _check_header(path: Path, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not an {FORMAT} recording")
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {header.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return header


def _entry(item: list[Any]) -> Entry:
    stream, entry_id, fields = item
    return stream, entry_id, fields


def read_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        unpacker = msgpack.Unpacker(handle, raw=False, strict_map_key=False)
        return _check_header(path, next(unpacker, None))


def read_entries(path: Path) -> Iterator[Entry]:
    """The entries of a recording after its (checked) header, read lazily."""
    with open(path, "rb") as handle:
        unpacker = msgpack.Unpacker(handle, raw=False, strict_map_key=False)
        _check_header(path, next(unpacker, None))
        yield from map(_entry, unpacker)


class StreamFileSource:
    """Replays the ``aegis:bars`` and ``aegis:chains`` entries of a recording in recorded
    order, as decoded messages, paced by their event times at ``speed`` (0 = as fast as
    possible). Entries of other streams are skipped; undecodable ones are rejected."""

    def __init__(
        self,
        path: Path,
        speed: float = 0.0,
        *,
        max_gap_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = f"stream_file:{self.path.name}"
        self._stop = stop or threading.Event()
        self._pacer = Pacer(speed, max_gap_s, wait=self._stop.wait)
        self.header = read_header(self.path)
        if self.header.get("schema_version") != SCHEMA_VERSION:
            log.warning(
                "recording_schema_differs",
                path=str(self.path),
                recorded=self.header.get("schema_version"),
                current=SCHEMA_VERSION,
            )

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
        skipped = 0
        for stream, entry_id, fields in read_entries(self.path):
            if stream not in REPLAYED_STREAMS:
                skipped += 1
                continue
            try:
                message = decode(fields)
            except DecodeError as exc:
                yield RejectedInput(f"{stream} {entry_id.decode()}: {exc}", pack(fields))
                continue
            if not isinstance(message, Bar | OptionChain | ParticipantPositions | FuturesDay):
                yield RejectedInput(
                    f"{stream} {entry_id.decode()}: a {message.TYPE} does not belong there",
                    pack(fields),
                )
                continue
            if not self._pacer.pace(event_time(message)):
                return
            yield message
            if self._stop.is_set():
                return
        if skipped:
            log.info(
                "recording_entries_skipped",
                path=str(self.path),
                entries=skipped,
                reason="stream is not replayed",
            )

    @property
    def status(self) -> dict[str, object]:
        return {"source": self.name, "path": str(self.path)}

    def close(self) -> None:
        self._stop.set()

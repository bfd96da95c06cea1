"""python -m services.deadletters list|show|requeue|drop: look after the dead-letter stream.

Modelled on rq's failed-job registry: ``list`` the newest letters (id, when, service, origin,
reason), ``show`` one in full with its payload decoded, ``requeue`` a letter whose payload is
complete (bars go through the idempotent bar publisher, so a requeued duplicate is noticed;
the consumers validate it again) and delete it, ``drop`` letters for good.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

import redis

from shared.bus import replies, streams
from shared.bus.lifecycle import command_settings
from shared.bus.publish import Bus, connect
from shared.config import Settings
from shared.contract.codec import DecodeError, decode, unpack
from shared.contract.schemas import Bar, DeadLetter, FeatureSnapshot, Message, OptionChain

# Which message type a letter's payload is, by the stream (or source) it came from.
ORIGIN_TYPES: dict[str, type[Message]] = {
    streams.BARS: Bar,
    streams.FEATURES: FeatureSnapshot,
    streams.CHAINS: OptionChain,
}


class LetterError(Exception):
    """A letter that does not exist or cannot be requeued (the text says why)."""


def _letter(fields: dict[bytes, bytes]) -> DeadLetter:
    message = decode(fields)
    if not isinstance(message, DeadLetter):
        raise DecodeError(f"not a dead letter: {message.TYPE}")
    return message


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_letters(client: redis.Redis, count: int, service: str | None) -> list[dict[str, Any]]:
    """The newest ``count`` letters (of ``service`` if given), newest first."""
    rows: list[dict[str, Any]] = []
    for raw_id, fields in replies.xrevrange(
        client, streams.DEAD_LETTER, count=count * 4 if service else count
    ):
        try:
            letter = _letter(fields)
        except DecodeError as exc:
            rows.append({"id": raw_id.decode(), "unreadable": str(exc)})
            continue
        if service and letter.service != service:
            continue
        rows.append(
            {
                "id": raw_id.decode(),
                "failed_at": _when(letter.failed_at),
                "service": letter.service,
                "origin": letter.origin_stream,
                "bytes": letter.payload_size
                if letter.payload_size is not None
                else len(letter.payload),
                "reason": letter.reason,
            }
        )
        if len(rows) >= count:
            break
    return rows


def get_letter(client: redis.Redis, letter_id: str) -> DeadLetter:
    found = replies.xrange(client, streams.DEAD_LETTER, min=letter_id, max=letter_id)
    if not found:
        raise LetterError(f"no dead letter {letter_id}")
    return _letter(found[0][1])


def _origin_type(letter: DeadLetter) -> type[Message] | None:
    if letter.origin_stream in ORIGIN_TYPES:
        return ORIGIN_TYPES[letter.origin_stream]
    if letter.origin_stream.startswith("source:"):  # ingest: bars, or chains from the file
        return OptionChain if letter.origin_stream.startswith("source:chain_file") else Bar
    return None


def requeue(client: redis.Redis, settings: Settings, letter_id: str) -> str:
    """Publish a letter's payload again and delete the letter; returns what happened."""
    letter = get_letter(client, letter_id)
    if letter.payload_size is not None and letter.payload_size > len(letter.payload):
        raise LetterError(
            f"{letter_id} keeps {len(letter.payload)} of {letter.payload_size} payload bytes"
        )
    cls = _origin_type(letter)
    if cls is None:
        raise LetterError(f"{letter_id} came from {letter.origin_stream}: nothing to requeue to")
    try:
        message = cls.model_validate(unpack(letter.payload))
    except (ValueError, TypeError) as exc:  # msgpack's and pydantic's errors are ValueErrors
        raise LetterError(f"{letter_id} payload is not a valid {cls.__name__}: {exc}") from exc
    bus = Bus(client, settings)
    if isinstance(message, Bar):
        result = bus.publish_bars([message])[0]
        if result.outcome not in ("published", "duplicate"):
            raise LetterError(f"{letter_id} not requeued: {result.outcome}: {result.detail}")
        outcome = result.outcome
    else:
        bus.publish(message)
        outcome = "published"
    client.xdel(streams.DEAD_LETTER, letter_id)
    return f"{letter_id}: {outcome}, letter deleted"


def show(letter: DeadLetter) -> str:
    try:
        payload: Any = unpack(letter.payload)
    except ValueError:  # an excerpt or a foreign payload: show the bytes
        payload = letter.payload[:512]
    size = letter.payload_size if letter.payload_size is not None else len(letter.payload)
    lines = [
        f"service:   {letter.service}",
        f"origin:    {letter.origin_stream} {letter.origin_id or ''}",
        f"failed at: {_when(letter.failed_at)} UTC",
        f"payload:   {size} bytes ({len(letter.payload)} kept)",
        f"reason:    {letter.reason}",
        f"decoded:   {payload!r}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.deadletters", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="the newest letters")
    p_list.add_argument("--count", type=int, default=20)
    p_list.add_argument("--service")
    sub.add_parser("show", help="one letter in full").add_argument("id")
    sub.add_parser("requeue", help="publish a letter again, then delete it").add_argument(
        "ids", nargs="+"
    )
    sub.add_parser("drop", help="delete letters").add_argument("ids", nargs="+")
    args = parser.parse_args(argv)
    settings = command_settings("admin")
    client = connect(settings)
    status = 0
    try:
        if args.command == "list":
            total = client.xlen(streams.DEAD_LETTER)
            print(f"{total} dead letters in {streams.DEAD_LETTER}")
            for row in list_letters(client, args.count, args.service):
                print("  ".join(f"{v}" for v in row.values()))
        elif args.command == "show":
            print(show(get_letter(client, args.id)))
        elif args.command == "requeue":
            for letter_id in args.ids:
                try:
                    print(requeue(client, settings, letter_id))
                except LetterError as exc:
                    print(f"error: {exc}")
                    status = 1
        elif args.command == "drop":
            for letter_id in args.ids:
                deleted = client.xdel(streams.DEAD_LETTER, letter_id)
                print(f"{letter_id}: {'dropped' if deleted else 'no such letter'}")
                status |= 0 if deleted else 1
    except LetterError as exc:
        print(f"error: {exc}")
        status = 1
    finally:
        client.close()
    return status

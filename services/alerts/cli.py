"""python -m services.alerts test-rules --from YYYY-MM-DD --to YYYY-MM-DD [--rules FILE]
[--file RECORDING]

What the rules would have fired over the signal blocks in that range (IST dates of the
blocks' as_of): the blocks on aegis:blocks in Redis, or those of a recorded stream file
(``python -m services.ingest.record --streams aegis:blocks --out FILE``). Blocks before the
range are evaluated silently first, as the service would have, so the range starts with the
state the service had. Nothing is sent or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from services.alerts.evaluate import Evaluator, empty_state, ist
from services.alerts.rules import RulesError, load_rules
from shared.bus import replies, streams
from shared.contract.codec import DecodeError, decode
from shared.contract.schemas import SignalBlock
from shared.market.calendar import ist_date

CHUNK = 2000


def signal_blocks(entries: Iterable[Mapping[Any, Any]]) -> Iterator[SignalBlock]:
    """The signal blocks among stream entries' fields; undecodable entries are skipped."""
    for fields in entries:
        try:
            message = decode(fields)
        except DecodeError:
            continue
        if isinstance(message, SignalBlock):
            yield message


def blocks_from_redis(settings_redis: object) -> Iterator[SignalBlock]:
    import redis

    assert isinstance(settings_redis, redis.Redis)
    last = "-"
    while True:
        entries = replies.xrange(settings_redis, streams.BLOCKS, last, "+", count=CHUNK)
        if entries:
            last = "(" + entries[-1][0].decode()
        yield from signal_blocks(fields for _, fields in entries)
        if len(entries) < CHUNK:
            return


def blocks_from_file(path: Path) -> Iterator[SignalBlock]:
    from services.ingest.sources.stream_file import read_entries

    yield from signal_blocks(
        fields for stream, _, fields in read_entries(path) if stream == streams.BLOCKS
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.alerts test-rules", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    parser.add_argument("--rules", type=Path, default=None, help="rules TOML (default: settings)")
    parser.add_argument("--file", type=Path, default=None, help="a recorded stream file")
    args = parser.parse_args(argv)
    from shared.bus.lifecycle import command_settings

    settings = command_settings("admin")
    try:
        rules = load_rules(args.rules or settings.alerts_rules)
    except RulesError as exc:
        print(exc, file=sys.stderr)
        return 2
    evaluator = Evaluator(rules.active())
    if args.file is not None:
        blocks = blocks_from_file(args.file)
    else:
        from shared.bus.publish import connect

        blocks = blocks_from_redis(connect(settings))
    state = empty_state()
    fired = seen = 0
    for block in blocks:
        day = ist_date(block.as_of)
        if day > args.end:
            continue
        evaluation = evaluator.evaluate(state, block)
        evaluation.apply(state)
        if day < args.start:
            continue
        seen += 1
        for alert in evaluation.alerts:
            fired += 1
            quiet = " (quiet hours)" if alert.quiet else ""
            print(
                f"{ist(alert.as_of)}  {alert.severity.upper():8} {alert.rule:22} "
                f"{alert.transition[0]} -> {alert.transition[1]}: {alert.text}{quiet}"
            )
    print(
        f"{fired} alerts from {seen} blocks dated {args.start}..{args.end} "
        f"({len(evaluator.rules)} rules enabled)"
    )
    return 0

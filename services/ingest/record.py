"""Record Redis streams to a file for later replay (source=stream).

python -m services.ingest.record --streams aegis:bars aegis:chains --out FILE
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.ingest.sources.stream_file import REPLAYED_STREAMS, record_streams
from shared.bus.lifecycle import command_settings
from shared.bus.publish import connect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", nargs="+", default=list(REPLAYED_STREAMS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = command_settings("admin")
    client = connect(settings)
    try:
        record_streams(client, args.streams, args.out)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

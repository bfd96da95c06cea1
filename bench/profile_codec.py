"""Where a message's time goes on the wire: msgpack unpack, pydantic validation, model_dump
and pack, per message kind, on real messages (bars of the bundled files, the snapshots the
features state builds from them, the seller engine's block for one). If msgspec is
importable (it is not a project dependency; e.g. PYTHONPATH=/tmp/msgspec after
``pip install --target /tmp/msgspec msgspec==0.22.0``) the same decode and encode with
msgspec typed structs of the same fields is timed too, for the decision whether to switch.

Usage: python -m bench.profile_codec
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.features.state import FeatureState
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.contract.codec import decode, encode, unpack
from shared.contract.schemas import Bar, FeatureSnapshot, Message

ROOT = Path(__file__).resolve().parent.parent

REPEAT = 2000


def per_call_us(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    """Best of three timings of ``repeat`` calls, in µs per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return round(best * 1e6, 2)


def real_messages() -> dict[str, Message]:
    state = FeatureState()
    found: dict[str, Message] = {}
    window = ReplayWindow("2020-01-01", "2021-01-01", "2021-01-05")
    for event in FileReplaySource(ROOT / "data", window).events():
        if not isinstance(event, Bar):
            continue
        found.setdefault("bar", event)
        for snap in state.apply(event, 0):
            found[f"snapshot {snap.kind}"] = snap
    return found


def seller_block(snapshot: FeatureSnapshot) -> Message:
    from services.seller.compute import compute_seller
    from shared.config import Settings
    from shared.contract.blocks import build_block, pack_data
    from shared.market.clock import make_clock
    from shared.models.context import EngineContext, ModelBook

    settings = Settings()
    ctx = EngineContext(settings, snapshot, ModelBook(), None, {})
    data = compute_seller(ctx, None)
    return build_block(
        "seller", snapshot, data, pack_data(data), clock=make_clock("event"), settings=settings
    )


def profile(message: Message) -> dict[str, float]:
    fields = {
        k.encode(): v if isinstance(v, bytes) else str(v).encode()
        for k, v in encode(message).items()
    }
    payload = fields[b"d"]
    cls = type(message)
    data = unpack(payload)
    row = {
        "payload_bytes": len(payload),
        "unpack_us": per_call_us(lambda: unpack(payload)),
        "validate_us": per_call_us(lambda: cls.model_validate(dict(data))),
        "decode_us": per_call_us(lambda: decode(fields)),
        "encode_us": per_call_us(lambda: encode(message)),
    }
    row.update(msgspec_row(message, payload))
    return row


def msgspec_row(message: Message, payload: bytes) -> dict[str, float]:
    try:
        import msgspec
    except ImportError:
        return {}
    struct = msgspec.defstruct(
        type(message).__name__,
        [(name, field.annotation) for name, field in type(message).model_fields.items()],
        frozen=True,
        forbid_unknown_fields=True,
    )
    decoder, encoder = msgspec.msgpack.Decoder(struct), msgspec.msgpack.Encoder()
    value = decoder.decode(payload)
    return {
        "msgspec_decode_us": per_call_us(lambda: decoder.decode(payload)),
        "msgspec_encode_us": per_call_us(lambda: encoder.encode(value)),
    }


def main() -> None:
    messages = real_messages()
    snapshot = messages["snapshot intraday"]
    assert isinstance(snapshot, FeatureSnapshot)
    messages["signal_block seller"] = seller_block(snapshot)
    print(json.dumps({kind: profile(m) for kind, m in messages.items()}, indent=2))


if __name__ == "__main__":
    main()

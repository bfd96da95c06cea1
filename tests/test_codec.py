"""The wire codec: unpack (msgspec) reads what pack (msgpack) writes, exactly as msgpack's own
reader would, and malformed payloads become readable DecodeErrors."""

from __future__ import annotations

import msgpack
import pytest

from shared.codec import DecodeError, decode, encode, pack, unpack
from shared.schemas import SCHEMA_VERSION, Bar
from tests.block_factory import make_block


def reference_unpack(data: bytes) -> object:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


@pytest.mark.parametrize(
    "value",
    [
        encode(make_block("seller"))["d"],
        pack({"by_strike": {25_000: 0.4}, "blob": b"\x00\x01", "nested": [[1, -2.5], None]}),
        pack({"big": 2**63, "neg": -(2**63), "f": 1e-300, "t": (1, "x"), "ok": True}),
    ],
)
def test_unpack_gives_what_msgpack_gives(value: bytes) -> None:
    assert unpack(value) == reference_unpack(value)
    assert pack(unpack(value)) == value  # and packs back to the same bytes


def test_a_block_encodes_to_the_bytes_of_its_model_dump() -> None:
    block = make_block("seller", degraded=("seller.trap: no model",), extra={"k": {"n": [1.5]}})
    assert block.models and block.degraded
    assert encode(block)["d"] == pack(block.model_dump(mode="python"))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xc1", "malformed"),
        (pack({"a": 1}) + b"x", "trailing"),
        (pack([1, 2])[:1], "truncated"),
    ],
)
def test_malformed_payloads_are_readable_decode_errors(payload: bytes, why: str) -> None:
    fields = {b"t": b"bar", b"v": str(SCHEMA_VERSION).encode(), b"d": payload}
    with pytest.raises(DecodeError, match="payload is not msgpack") as info:
        decode(fields)
    assert why in str(info.value)


def test_a_bar_round_trips() -> None:
    bar = Bar(
        symbol="NIFTY",
        interval="1m",
        open_time=1_751_275_740,
        open=25_600.0,
        high=25_650.0,
        low=25_590.5,
        close=25_637.8,
        volume=0.0,
        source="file",
    )
    fields = {
        k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in encode(bar).items()
    }
    assert decode(fields) == bar  # the fields as Redis hands them back

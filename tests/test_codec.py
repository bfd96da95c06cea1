"""The wire codec: unpack (msgspec) reads what pack (msgpack) writes, exactly as msgpack's own
reader would, and malformed payloads become readable DecodeErrors."""

from __future__ import annotations

import msgpack
import msgspec
import pytest

from shared.config import Settings
from shared.contract.blocks import build_block, pack_data
from shared.contract.codec import DecodeError, decode, digest, encode, pack, unpack
from shared.contract.schemas import SCHEMA_VERSION, Bar, FeatureSnapshot, Message
from shared.market.clock import make_clock
from tests.block_factory import DIRECTION_MODEL, direction_data, make_block
from tests.engines_support import daily_snapshot, intraday_snapshot


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


def _entry(payload: bytes, type_name: str) -> dict[bytes, bytes]:
    return {b"t": type_name.encode(), b"v": str(SCHEMA_VERSION).encode(), b"d": payload}


def _validated(cls: type[Message], payload: bytes) -> Message:
    """What decoding gave before the typed path: unpack, then pydantic validation."""
    return cls.model_validate(reference_unpack(payload))


def test_a_built_block_is_packed_once_to_the_bytes_of_its_model_dump() -> None:
    data = direction_data(25_600.0, heuristic_today=True)
    packed = pack_data(data)
    block = build_block(
        "direction",
        daily_snapshot("2024-06-28"),
        data,
        packed,
        clock=make_clock("event"),
        settings=Settings(),
        models=(DIRECTION_MODEL,),
        degraded=("direction.today: model not loaded",),
    )
    assert block.data == msgspec.to_builtins(data)
    content = pack([block.data, [msgspec.structs.asdict(DIRECTION_MODEL)], list(block.degraded)])
    assert block.digest == digest(content)  # a dict in the struct's field order packs alike
    first = encode(block)["d"]  # the data's bytes kept by build_block
    assert first == pack(block.model_dump(mode="python"))
    assert encode(block)["d"] == first  # packed from the data this time


@pytest.mark.parametrize(
    "message",
    [
        daily_snapshot("2024-06-28"),  # with its 60-session sequence
        intraday_snapshot("2024-06-28", 45),
        make_block("seller", degraded=("seller.trap: no model",)),
        make_block("market"),
        Bar(
            symbol="VIX", interval="1d", open_time=1, open=1, high=2, low=0.5, close=1.5, source="x"
        ),
    ],
    ids=["daily", "intraday", "seller", "market", "bar"],
)
def test_typed_decoding_gives_what_validation_gives(message: Message) -> None:
    payload = encode(message)["d"]
    decoded = decode(_entry(payload, message.TYPE))
    expected = _validated(type(message), payload)
    assert decoded == expected == message
    assert decoded.model_dump() == expected.model_dump()
    for name, value in expected.__dict__.items():  # same types too (tuples, floats, models)
        assert type(decoded.__dict__[name]) is type(value), name


def test_payloads_the_typed_path_refuses_decode_as_validation_does() -> None:
    raw = intraday_snapshot("2024-06-28", 45).model_dump()
    # NaN features become None (the snapshot's own validator), as before
    nan_feature = pack({**raw, "daily": {**raw["daily"], "atr_14": float("nan")}})
    decoded = decode(_entry(nan_feature, "feature_snapshot"))
    assert isinstance(decoded, FeatureSnapshot) and decoded.daily["atr_14"] is None
    assert decoded == _validated(FeatureSnapshot, nan_feature)
    # a lax value pydantic coerces (an integral float for an int) is coerced, as before
    lax = decode(_entry(pack({**raw, "as_of": float(raw["as_of"])}), "feature_snapshot"))
    assert isinstance(lax, FeatureSnapshot)
    assert lax.as_of == raw["as_of"] and type(lax.as_of) is int
    # what validation refuses is refused with validation's reason
    for bad, reason in (
        ({**raw, "spot": float("inf")}, "spot: Input should be a finite number"),
        ({**raw, "surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({**raw, "kind": "weekly"}, "kind: Input should be 'daily' or 'intraday'"),
    ):
        with pytest.raises(DecodeError, match=reason):
            decode(_entry(pack(bad), "feature_snapshot"))

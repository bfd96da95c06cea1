"""The wire format: a stream entry names its type and schema version; the payload is msgpack.

Entry fields: ``t`` type, ``v`` schema version, ``d`` msgpack payload, plus optional
envelope fields the publisher adds (``k`` identity, ``h`` digest, ``r`` revision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypedDict

import msgpack
import msgspec
from pydantic import ValidationError

from shared.schemas import MESSAGE_TYPES, SCHEMA_VERSION, Message, SignalBlock


class DecodeError(ValueError):
    """A stream entry that cannot become a valid message. The text is the reason."""


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


_DECODER = msgspec.msgpack.Decoder()  # untyped: the same objects as msgpack.unpackb, ~2x faster


def unpack(data: bytes | bytearray) -> Any:
    """msgpack bytes -> Python objects (str keys or not); raises on malformed or trailing data."""
    return _DECODER.decode(data)


class EncodedMessage(TypedDict):
    """The fields of a stream entry as written."""

    t: str
    v: int
    d: bytes


def encode(message: Message) -> EncodedMessage:
    payload = _block_payload(message) if type(message) is SignalBlock else message.model_dump()
    return {"t": message.TYPE, "v": SCHEMA_VERSION, "d": pack(payload)}


def _block_payload(block: SignalBlock) -> dict[str, Any]:
    """What ``model_dump()`` gives for a block, without copying its ``data`` (plain values,
    as validated): every engine encodes one block per snapshot."""
    payload = {name: getattr(block, name) for name in SignalBlock.model_fields}
    payload["models"] = [m.model_dump() for m in block.models]
    return payload


def digest(payload: bytes) -> str:
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def decode(fields: Mapping[Any, Any]) -> Message:
    """Turn stream entry fields back into a validated message, or raise DecodeError.
    ``fields`` as read (bytes keys and values) or as encoded; every field is checked here."""
    norm = {_text(k): v for k, v in fields.items()}
    type_name = _text(norm.get("t"))
    cls = MESSAGE_TYPES.get(type_name or "")
    if cls is None:
        raise DecodeError(f"unknown message type {type_name!r}")
    version = _text(norm.get("v"))
    if version != str(SCHEMA_VERSION):
        raise DecodeError(f"schema version {version!r} of {type_name}, expected {SCHEMA_VERSION}")
    raw = norm.get("d")
    if not isinstance(raw, bytes | bytearray):
        raise DecodeError(f"{type_name} entry has no payload")
    try:
        payload = unpack(raw)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"payload is not msgpack: {exc}") from exc
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or type_name}: {e['msg']}" for e in exc.errors()
        )
        raise DecodeError(f"invalid {type_name}: {problems}") from exc

"""The wire format: a stream entry names its type and schema version; the payload is msgpack.

Entry fields: ``t`` type, ``v`` schema version, ``d`` msgpack payload, plus optional
envelope fields the publisher adds (``k`` identity, ``h`` digest, ``r`` revision).
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict, cast, get_args, get_origin

import msgpack
import msgspec
from msgspec.structs import asdict
from pydantic import BaseModel, ValidationError

from shared.contract.schemas import (
    MESSAGE_TYPES,
    Bar,
    FeatureSnapshot,
    Message,
    ModelRef,
    OptionChain,
    Quotes,
    SignalBlock,
)


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
    if type(message) is SignalBlock:
        payload = _block_payload_bytes(message)
    else:
        payload = pack(message.model_dump())
    return {"t": message.TYPE, "v": message.VERSION, "d": payload}


def digest(payload: bytes) -> str:
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


# Blocks: the data is packed once --------------------------------------------------------------
# A block's digest covers pack([data, models, degraded]) and its payload holds the data's bytes
# again: ``block_digest`` takes the data's bytes (the engine packed its struct once) and keeps
# them under the digest until ``encode`` of that block takes them. Equal digests mean equal
# content, hence equal bytes; a block encoded without them (decoded, rebuilt, evicted) is
# packed from its data, to the same bytes (the map keeps the struct's field order).
_PACKED_DATA: dict[str, bytes] = {}
PACKED_DATA_KEPT = 4096  # a read batch's blocks, with room to spare
_BLOCK_FIELDS = tuple(SignalBlock.model_fields)
_DATA_AT = _BLOCK_FIELDS.index("data")


def block_digest(data: bytes, models: Sequence[ModelRef], degraded: Sequence[str]) -> str:
    """The digest of a block's content: ``digest(pack([data, models, degraded]))`` with the
    data's msgpack ``data`` in place; remembers ``data`` for the block's ``encode``."""
    content = pack([None, [asdict(m) for m in models], list(degraded)])
    # a 3-array is its header then its items: put the data's bytes where the None (0xc0) is
    value = digest(content[:1] + data + content[2:])
    if len(_PACKED_DATA) >= PACKED_DATA_KEPT:
        del _PACKED_DATA[next(iter(_PACKED_DATA))]
    _PACKED_DATA[value] = data
    return value


def _block_payload_bytes(block: SignalBlock) -> bytes:
    """The bytes of pack(block.model_dump()), the data's taken from ``block_digest`` if kept
    (a map is its header then key, value, key, value...)."""
    payload = {name: getattr(block, name) for name in _BLOCK_FIELDS}
    payload["models"] = [asdict(m) for m in block.models]
    data_bytes = _PACKED_DATA.pop(block.digest, None)
    if data_bytes is None:
        return pack(payload)
    before = {n: payload[n] for n in _BLOCK_FIELDS[:_DATA_AT]}
    after = {n: payload[n] for n in _BLOCK_FIELDS[_DATA_AT + 1 :]}
    return b"".join(
        (
            _map_header(len(payload)),
            pack(before)[len(_map_header(len(before))) :],
            pack("data"),
            data_bytes,
            pack(after)[len(_map_header(len(after))) :],
        )
    )


def _map_header(size: int) -> bytes:
    return msgpack.Packer().pack_map_header(size)


def _text(value: bytes | str | int | None) -> str | None:
    """A field as text: read (bytes) or as encoded (str, or the int schema version)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value) if isinstance(value, int) else value


def decode(fields: Mapping[Any, Any]) -> Message:
    """Turn stream entry fields back into a validated message, or raise DecodeError.
    ``fields`` as read (bytes keys and values) or as encoded; every field is checked here."""
    norm = {_text(k): v for k, v in fields.items()}
    type_name = _text(norm.get("t"))
    cls = MESSAGE_TYPES.get(type_name or "")
    if cls is None:
        raise DecodeError(f"unknown message type {type_name!r}")
    version = _text(norm.get("v"))
    if version != str(cls.VERSION):
        raise DecodeError(f"schema version {version!r} of {type_name}, expected {cls.VERSION}")
    raw = norm.get("d")
    if not isinstance(raw, bytes | bytearray):
        raise DecodeError(f"{type_name} entry has no payload")
    fast = _FAST.get(cls)
    if fast is not None:
        message = fast.decode(raw)
        if message is not None:
            return message
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


# Typed decoding ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FastDecoder:
    """msgspec decodes the payload of one message type straight into typed fields (about
    half the CPU of unpack + pydantic validation); the model is then built without validating
    again. It accepts only what pydantic accepts with the same result: a payload it refuses
    (a lax value pydantic would coerce, a NaN in a float field, any invalid payload) returns
    None and goes the pydantic way, which gives the result or the error it always gave."""

    cls: type[Message]
    decoder: msgspec.msgpack.Decoder[Any]
    float_fields: tuple[str, ...]  # fields with floats inside: no NaN or inf allowed there
    nested: tuple[tuple[str, type[BaseModel]], ...]  # tuple-of-model fields, decoded as structs
    columnar: tuple[str, ...] = ()  # ``Quotes`` fields, decoded as their columns' bytes

    def decode(self, raw: bytes | bytearray) -> Message | None:
        try:
            values = asdict(self.decoder.decode(raw))
            for name in self.columnar:
                values[name] = Quotes.from_columns(values[name])
        except Exception:  # invalid or malformed: the pydantic way gives the error
            return None
        for name in self.float_fields:
            if not _finite(values[name]):
                return None
        for name, model in self.nested:
            values[name] = tuple(_build(model, asdict(item)) for item in values[name])
        return _build(self.cls, values)


def _build(cls: type[BaseModel], values: dict[str, Any]) -> Any:
    """What ``cls.model_construct(**values)`` gives with every field given, ~7x cheaper."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _finite(value: Any) -> bool:
    """No NaN or infinity in a float field's value (None, a number, a dict or tuple of them,
    a tuple of such tuples). A sum is finite only if every term is; one that overflows says
    False, and pydantic decides."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, float | int):
        return math.isfinite(value)
    items = tuple(value.values()) if isinstance(value, dict) else value
    if items and isinstance(items[0], tuple):
        return all(map(_finite, items))
    return math.isfinite(sum(filter(None, items)))


def _has_float(annotation: Any) -> bool:
    return annotation is float or any(_has_float(a) for a in get_args(annotation))


# Validators that the fast path reproduces: FeatureSnapshot's NaN -> None of its feature
# dicts only acts on a non-finite value, and such a payload goes the pydantic way.
_REPRODUCED_VALIDATORS = frozenset({"_nan_to_none"})


def _plain_model(cls: type[BaseModel]) -> bool:
    """Built by validation alone: no validators (but the reproduced), private attributes or
    post-init hook the fast path would skip."""
    decorators = cls.__pydantic_decorators__
    validators = {
        **decorators.validators,
        **decorators.field_validators,
        **decorators.root_validators,
        **decorators.model_validators,
    }
    return (
        set(validators) <= _REPRODUCED_VALIDATORS
        and not cls.__private_attributes__
        and cls.__pydantic_post_init__ is None
        and cls.model_config.get("extra") == "forbid"
    )


_FINITE_FLOAT = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_FINITE: dict[Any, Any] = {float: _FINITE_FLOAT, float | None: _FINITE_FLOAT | None}


def _struct(
    cls: type[BaseModel], unread: tuple[str, ...] = (), finite: bool = False
) -> tuple[Any, tuple[tuple[str, type[BaseModel]], ...]]:
    """A msgspec struct of ``cls``'s fields (same names, types, defaults; unknown fields
    refused) and its tuple-of-model fields; TypeError if msgspec cannot type one. Fields in
    ``unread`` are kept as their msgpack bytes (``msgspec.Raw``: parsed, not built), ``Quotes``
    fields are read as their columns (name -> bytes, checked by ``Quotes.from_columns``).
    ``finite``: msgspec itself refuses NaN and infinity in plain float fields (the bounds
    fail for them), as pydantic's ``allow_inf_nan=False`` does."""
    if not _plain_model(cls):
        raise TypeError(f"{cls.__name__} has validation the fast path would skip")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    nested = []
    for name, info in cls.model_fields.items():
        annotation: Any = msgspec.Raw if name in unread else info.annotation
        if annotation is Quotes:
            annotation = dict[str, bytes]
        args = get_args(annotation)
        if get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
            if isinstance(item, type) and issubclass(item, BaseModel):
                # tuple[<the item's struct>, ...], built at run time; its floats finite
                annotation = tuple.__class_getitem__((_struct(item, finite=True)[0], ...))
                nested.append((name, item))
        elif finite and annotation in _FINITE:
            annotation = _FINITE[annotation]
        if info.default_factory is not None:
            raise TypeError(f"{cls.__name__}.{name} has a default factory")
        if info.is_required():
            fields.append((name, annotation))
        else:
            fields.append((name, annotation, info.default))
    struct = msgspec.defstruct(
        f"{cls.__name__}Wire", fields, kw_only=True, forbid_unknown_fields=True
    )
    return struct, tuple(nested)


def _fast_decoder(cls: type[Message]) -> _FastDecoder:
    struct, nested = _struct(cls)
    float_fields = tuple(n for n, f in cls.model_fields.items() if _has_float(f.annotation))
    columnar = tuple(n for n, f in cls.model_fields.items() if f.annotation is Quotes)
    return _FastDecoder(cls, msgspec.msgpack.Decoder(struct), float_fields, nested, columnar)


# The messages read once per bar by every consumer (bars, snapshots, blocks), and the
# chains every seller and buyer replica reads (150 quotes each).
_FAST: dict[type[Message], _FastDecoder] = {
    cls: _fast_decoder(cls) for cls in (Bar, FeatureSnapshot, SignalBlock, OptionChain)
}


# Block headers: a block superseded within a read batch needs no data ----------------------------
_BLOCK_HEAD_STRUCT, _BLOCK_NESTED = _struct(SignalBlock, unread=("data",))
_BLOCK_HEAD = _FastDecoder(
    SignalBlock, msgspec.msgpack.Decoder(_BLOCK_HEAD_STRUCT), (), _BLOCK_NESTED
)
_MSGPACK_MAP_FIRST_BYTES = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))


def decode_block_parts(fields: Mapping[Any, Any]) -> tuple[SignalBlock, bytes] | None:
    """A signal-block entry in two parts: the block's fields with ``data`` left empty, and
    the data's msgpack (parsed to its end, a map; nothing built). A reader builds the data
    only for a block it shows (the gateway: straight into the engine's contract struct), not
    for one a later block of the same engine in the read batch supersedes. None when the
    entry is no well-formed block: ``decode`` then gives the error."""
    norm = {_text(k): v for k, v in fields.items()}
    raw = norm.get("d")
    if (
        _text(norm.get("t")) != SignalBlock.TYPE
        or _text(norm.get("v")) != str(SignalBlock.VERSION)
        or not isinstance(raw, bytes | bytearray)
    ):
        return None
    head = cast(SignalBlock | None, _BLOCK_HEAD.decode(raw))
    if head is None:
        return None
    data = bytes(cast(msgspec.Raw, head.data))
    if not data or data[0] not in _MSGPACK_MAP_FIRST_BYTES:
        return None
    object.__setattr__(head, "data", {})  # not built here
    return head, data

"""Building signal blocks: an engine's data struct (shared.contract.document) packed once, the
stamps every block carries, and what the stamps read of the data's provenances."""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

from shared.config import Settings
from shared.contract.codec import block_digest
from shared.contract.document.base import Contract, Group
from shared.contract.schemas import Engine, FeatureSnapshot, ModelRef, Provenance, SignalBlock
from shared.market.clock import Clock

_ENCODER = msgspec.msgpack.Encoder()


def pack_data(data: Contract) -> bytes:
    """A block's data as it goes on the bus: msgpack of the struct (its fields in declaration
    order, a union's tag first, ``UNSET`` fields left out)."""
    return _ENCODER.encode(data)


def freshness_limit_s(settings: Settings, kind: str) -> int:
    return settings.freshness_intraday_s if kind == "intraday" else settings.freshness_daily_s


def build_block(
    engine: Engine,
    snapshot: FeatureSnapshot,
    data: Contract,
    packed: bytes,
    *,
    clock: Clock,
    settings: Settings,
    models: Iterable[ModelRef] = (),
    degraded: Iterable[str] = (),
) -> SignalBlock:
    """Stamp ``data`` (``packed``: its ``pack_data``) as ``engine``'s block for the bar
    ``snapshot`` reflects. The digest covers the content only, so a redelivered snapshot
    yields an identical digest; the packed bytes are what the block's encoding carries
    (``shared.contract.codec.block_digest``). The block's ``data`` is the struct's map, as a
    reader decodes it."""
    models, degraded = tuple(models), tuple(degraded)
    return SignalBlock(
        engine=engine,
        as_of=snapshot.as_of,
        session_date=snapshot.session_date,
        kind=snapshot.kind,
        computed_at=clock.now_ms(),
        freshness_limit_s=freshness_limit_s(settings, snapshot.kind),
        models=models,
        degraded=degraded,
        data=msgspec.to_builtins(data),
        digest=block_digest(packed, models, degraded),
    )


# Provenances -----------------------------------------------------------------------------------
def provenance_summary(data: Contract) -> tuple[set[str], list[str]]:
    """What a block's stamps need of its provenances: the models its values came from
    (``model`` and ``climatology`` sources: a base rate is a model's too) and, in document
    order, ``path: note`` of every heuristic value."""
    found: list[tuple[Any, Provenance]] = []
    _walk(data, None, found)
    used: set[str] = set()
    degraded: list[str] = []
    for trail, prov in found:  # only a heuristic's path is spelled out
        if prov.source == "model" or prov.source == "climatology":
            if prov.model:
                used.add(prov.model)
        elif prov.source == "heuristic":
            degraded.append(f"{_dotted(trail)}: {prov.note}")
    return used, degraded


def walk_provenance(data: Contract) -> list[tuple[str, Provenance]]:
    """Every (dotted path, provenance) of a block's data struct, in document order. Only the
    fields whose type can hold a group are visited (a per-strike row never is)."""
    found: list[tuple[Any, Provenance]] = []
    _walk(data, None, found)
    return [(_dotted(trail), prov) for trail, prov in found]


def _walk(obj: Any, trail: Any, found: list[tuple[Any, Provenance]]) -> None:
    # the way down is a linked (parent, key, is_index) trail; only paths found become text
    plan = _PLANS.get(obj.__class__) or _plan(obj.__class__)
    if plan[0]:
        found.append((trail, obj.provenance))
    for name in plan[1]:
        value = getattr(obj, name)
        if isinstance(value, msgspec.Struct):
            _walk(value, (trail, name, False), found)
        elif isinstance(value, list):
            here = (trail, name, False)
            for i, item in enumerate(value):
                if isinstance(item, msgspec.Struct):
                    _walk(item, (here, i, True), found)


_PLANS: dict[type, tuple[bool, tuple[str, ...]]] = {}


def _plan(struct: type[msgspec.Struct]) -> tuple[bool, tuple[str, ...]]:
    """Whether ``struct`` is a group, and its fields (but a group's own provenance) whose type
    can hold a group; worked out once per struct type."""
    plan = _PLANS[struct] = (
        issubclass(struct, Group),
        tuple(
            f.name
            for f in msgspec.structs.fields(struct)
            if f.name != "provenance" and _holds_group(f.type, frozenset())
        ),
    )
    return plan


def _holds_group(annotation: Any, seen: frozenset[type]) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _holds_group(get_args(annotation)[0], seen)
    if origin in (Union, types.UnionType, list, tuple, dict):
        return any(_holds_group(a, seen) for a in get_args(annotation))
    if not isinstance(annotation, type) or not issubclass(annotation, msgspec.Struct):
        return False
    if issubclass(annotation, Group):
        return True
    if annotation in seen:
        return False
    return any(
        _holds_group(f.type, seen | {annotation}) for f in msgspec.structs.fields(annotation)
    )


def _dotted(trail: Any) -> str:
    steps = []
    while trail is not None:
        trail, key, is_index = trail
        steps.append((key, is_index))
    path = ""
    for key, is_index in reversed(steps):
        if is_index:
            path = f"{path}[{key}]"
        else:
            path = f"{path}.{key}" if path else str(key)
    return path

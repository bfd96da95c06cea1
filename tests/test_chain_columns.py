"""A chain's quotes by column (``schemas.Quotes``): on the wire and in ``OptionChain``, read
back as the same quotes; an entry of the per-strike format or with broken columns is refused
with its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.ingest.sources.chain_file import ChainFileSource
from shared.contract.codec import _FAST, DecodeError, decode, encode, pack
from shared.contract.schemas import QUOTE_FIELDS, OptionChain, OptionQuote, Quotes
from tests.engines_support import DATA_DIR

CHAIN_FILE = DATA_DIR / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz"


@pytest.fixture(scope="module")
def chain() -> OptionChain:
    for event in ChainFileSource(CHAIN_FILE).events():
        if isinstance(event, OptionChain):
            return event
    raise AssertionError("no chain in the file")


def _entry(payload: bytes, version: int) -> dict[bytes, bytes]:
    return {b"t": b"option_chain", b"v": str(version).encode(), b"d": payload}


def test_a_real_chain_round_trips_by_column(chain: OptionChain) -> None:
    payload = encode(chain)["d"]
    assert _FAST[OptionChain].decode(payload) is not None  # the typed path read it
    decoded = decode(_entry(payload, OptionChain.VERSION))
    assert isinstance(decoded, OptionChain) and isinstance(decoded.quotes, Quotes)
    assert decoded == chain
    assert list(decoded.quotes) == list(chain.quotes)  # every field, None where none
    assert decoded.quotes[0] == chain.quotes[0] and decoded.quotes[-2:] == chain.quotes[-2:]
    assert OptionChain.model_validate(chain.model_dump()) == chain  # the validation path


def test_quotes_given_as_objects_are_kept_by_column() -> None:
    rows = (OptionQuote(strike=25_000, ce_ltp=120.5, ce_oi=650), OptionQuote(strike=25_050))
    chain = OptionChain(
        snapshot_time=1, expiry="2026-02-10", spot=25_010, quotes=rows, source="test"
    )
    assert chain.quotes == rows and tuple(chain.quotes) == rows
    assert chain.quotes.table[QUOTE_FIELDS.index("ce_oi")].tolist() == [650.0, 0.0]
    assert math.isnan(chain.quotes.table[QUOTE_FIELDS.index("ce_ltp"), 1])
    copied = chain.model_copy(update={"quotes": rows[:1]})
    assert isinstance(copied.quotes, Quotes) and tuple(copied.quotes) == rows[:1]


def test_a_chain_of_the_per_strike_format_is_refused_by_its_version(chain: OptionChain) -> None:
    old = {**chain.model_dump(), "quotes": [q.model_dump() for q in chain.quotes]}
    with pytest.raises(DecodeError, match="schema version '1' of option_chain, expected 2"):
        decode(_entry(pack(old), 1))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ce_ltp": b"\x00" * 8}, "float64 bytes of one length"),
        ({"strike": b"\x00" * 3}, "float64 bytes of one length"),
        ({"pe_oi": None}, "float64 bytes of one length"),
        ({"ce_iv": "inf"}, "quote column ce_iv holds an infinite value"),
        ({"strike": "nan"}, "quote column strike lacks a value"),
        ({"surprise": b""}, "unknown \\['surprise'\\]"),
    ],
)
def test_broken_columns_are_refused_with_the_reason(
    chain: OptionChain, change: dict[str, object], reason: str
) -> None:
    columns = chain.quotes.columns()
    for name, value in change.items():
        if value in ("inf", "nan"):  # one bad value in an otherwise good column
            column = np.frombuffer(columns[name], "<f8").copy()
            column[3] = float(value)
            columns[name] = column.tobytes()
        else:
            columns[name] = value  # type: ignore[assignment]
    payload = pack({**chain.model_dump(), "quotes": columns})
    with pytest.raises(DecodeError, match=reason):
        decode(_entry(payload, OptionChain.VERSION))

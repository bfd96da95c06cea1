"""Option-chain file formats other than the intraday snapshot CSV, each turned into
``OptionChain``s with open interest in units:

- ``nse_export``: NSE's option-chain page "Download (.csv)": a ``CALLS,,PUTS`` banner row,
  then ``,OI,CHNG IN OI,VOLUME,IV,LTP,CHNG,BID QTY,BID,ASK,ASK QTY,STRIKE,BID QTY,...,OI,``;
  Indian thousands separators inside quotes, ``-`` for an empty cell; OI in contracts, IV in
  percent. The expiry comes from the file name (``option-chain-ED-NIFTY-30-Mar-2026.csv``).
- ``eod_table``: one row per strike, ``expiry,strike`` plus any of ``ce_oi, ce_oi_change,
  ce_volume, ce_iv, ce_ltp, ce_bid, ce_ask`` (and ``pe_*``; known other names such as
  ``ce_chng_in_oi`` or ``ce_oi_chg`` are mapped, see ``EOD_ALIASES``; any other column is
  reported in a ``chain_file_unknown_columns`` warning, never silently used or dropped); IV
  in percent. The OI unit (of OI, change in OI and volume) is declared by an ``oi_unit``
  column (``units``/``shares`` or ``contracts``/``lots``) or by ``FileContext.oi_unit``;
  undeclared, it is detected as units only when every non-zero OI is a multiple of the
  expiry's lot (``detect_oi_unit``), otherwise the file is rejected, never assumed.
- ``udiff_bhavcopy`` / ``classic_bhavcopy``: NSE's end-of-day F&O bhavcopy (the UDiFF
  ``BhavCopy_NSE_FO_*.csv`` since 2024-07, the classic ``foDDMONYYYYbhav.csv`` before); the
  NIFTY index-option rows, one chain per expiry at 15:30 IST of the trade date, LTP = the
  closing price, OI in units as published; the UDiFF ``TtlTradgVol`` is in contracts and is
  turned into units with the row's ``NewBrdLotQty`` (the expiry's lot without one).

A file the parser cannot read raises ``ChainFileError`` naming what is missing; the caller
rejects that file only. Snapshot time and spot a file lacks come from ``FileContext``.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from shared.contract.schemas import OptionChain, OptionQuote
from shared.logs import get_logger
from shared.market.calendar import IST, daily_close_time

log = get_logger("ingest.chain_formats")

# NIFTY market lot by contract expiry: (first expiry with this lot, lot). Sources: NSE via
# Zerodha bulletin 2024-04-02 (50 -> 25 for every contract expiring after 2024-04-26, first
# weekly 2024-05-02); Business Standard 2024-10-19 (25 -> 75 for contracts introduced from
# 2024-11-20, existing weekly/monthly contracts keep 25 to expiry, quarterly ones move on
# 2024-12-26 EOD: so every expiry after 2024-12-26 is 75, while expiries 2024-11-28 ..
# 2024-12-26 mix both and are kept at 25 here); NDTV Profit / Capital Market 2025-10-07
# (75 -> 65 for weekly and monthly contracts after the 2025-12-30 expiry). The table starts
# at 50 (the 2021 revision from 75 is not modelled).
NIFTY_LOT_SIZES: tuple[tuple[date, int], ...] = (
    (date(2000, 1, 1), 50),
    (date(2024, 5, 2), 25),
    (date(2024, 12, 27), 75),
    (date(2026, 1, 6), 65),
)
EXPORT_COLUMNS = (
    "OI,CHNG IN OI,VOLUME,IV,LTP,CHNG,BID QTY,BID,ASK,ASK QTY,STRIKE,"
    "BID QTY,BID,ASK,ASK QTY,CHNG,LTP,IV,VOLUME,CHNG IN OI,OI"
).split(",")
EXPORT_NAME = re.compile(r"option-chain-[A-Z]+-NIFTY-(\d{2}-[A-Za-z]{3}-\d{4})", re.I)
EOD_SIDES = ("oi", "oi_change", "volume", "iv", "ltp", "bid", "ask")
# other names of an end-of-day table's per-side columns (after the ``ce_`` / ``pe_`` prefix)
EOD_ALIASES = {
    "chng_in_oi": "oi_change",
    "chg_in_oi": "oi_change",
    "change_in_oi": "oi_change",
    "oi_chg": "oi_change",
    "oi_chng": "oi_change",
    "oichange": "oi_change",
    "open_interest": "oi",
    "vol": "volume",
    "last_price": "ltp",
}
OI_UNITS = {"units": "units", "shares": "units", "contracts": "contracts", "lots": "contracts"}
MIN_DETECT_VALUES = 5  # non-zero OIs needed before "all are lot multiples" says units
UDIFF_NEED = ("TradDt", "FinInstrmTp", "TckrSymb", "XpryDt", "StrkPric", "OptnTp", "OpnIntrst")
CLASSIC_NEED = ("INSTRUMENT", "SYMBOL", "EXPIRY_DT", "STRIKE_PR", "OPTION_TYP", "OPEN_INT")


class ChainFileError(ValueError):
    """The whole file cannot be read as a chain; the text names what is missing."""


def lot_size(expiry: date) -> int:
    """NIFTY contracts' market lot for an expiry (see NIFTY_LOT_SIZES)."""
    return next(lot for start, lot in reversed(NIFTY_LOT_SIZES) if expiry >= start)


def number(text: str | None) -> float | None:
    """A published number: thousands separators dropped, ``-`` or blank is None."""
    text = (text or "").strip().strip('"').replace(",", "")
    if text in ("", "-"):
        return None
    value = float(text)  # ValueError names the text
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite")
    return value


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _iv(percent: float | None) -> float | None:
    return percent / 100 if percent else None


@dataclass(frozen=True)
class FileContext:
    """What a file may lack: its snapshot time and the spot then. ``spot_at(epoch_s)`` reads
    the bars (None when they have no close at that time). ``oi_unit`` declares the OI unit
    (``units`` or ``contracts``) of end-of-day tables without an ``oi_unit`` column."""

    snapshot_time: int | None
    spot: float | None
    spot_at: Callable[[int], float | None]
    oi_unit: str | None = None

    def time(self, what: str) -> int:
        if self.snapshot_time is None:
            raise ChainFileError(f"{what} has no snapshot time: set AEGIS_CHAIN_FILE_SNAPSHOT_TS")
        return self.snapshot_time

    def spot_for(self, moment: int, what: str) -> float:
        spot = self.spot if self.spot is not None else self.spot_at(moment)
        if spot is None or spot <= 0:
            raise ChainFileError(
                f"{what} has no spot: set AEGIS_CHAIN_FILE_SPOT, or use a snapshot time at a "
                "session close the daily bars cover"
            )
        return spot


def detect(first: list[str], second: list[str]) -> str:
    """The format of a CSV from its first two rows (raises ChainFileError if none fits)."""
    cells = {c.strip() for c in first}
    if "CALLS" in cells and "PUTS" in cells:
        if "STRIKE" not in {c.strip() for c in second}:
            raise ChainFileError("NSE export: second header row has no STRIKE column")
        return "nse_export"
    if {"snapshot_ts", "spot"} <= cells:
        return "intraday"
    if "TckrSymb" in cells:
        return "udiff_bhavcopy"
    if "INSTRUMENT" in cells and "STRIKE_PR" in cells:
        return "classic_bhavcopy"
    if {"expiry", "strike"} <= cells:
        return "eod_table"
    raise ChainFileError(
        f"unknown chain file layout (header {','.join(first[:8])}...): expected the intraday "
        "snapshot CSV, NSE's option-chain export, an end-of-day table with expiry and strike "
        "columns, or an NSE F&O bhavcopy"
    )


def _chain(
    quotes: Iterable[OptionQuote], expiry: date, moment: int, spot: float, source: str, lot: int
) -> OptionChain:
    rows = sorted(quotes, key=lambda q: q.strike)
    if not rows:
        raise ChainFileError(f"no NIFTY option rows for expiry {expiry}")
    if len({q.strike for q in rows}) != len(rows):
        raise ChainFileError(f"duplicate strikes for expiry {expiry}")
    return OptionChain(
        snapshot_time=moment,
        expiry=expiry.isoformat(),
        spot=spot,
        quotes=tuple(rows),
        source=source,
        lot_size=lot,
    )


def nse_export(rows: list[list[str]], path: Path, ctx: FileContext) -> OptionChain:
    """NSE's option-chain download; OI in contracts becomes units with the expiry's lot."""
    found = EXPORT_NAME.search(path.name)
    if not found:
        raise ChainFileError(
            f"NSE export {path.name}: the file name carries no expiry "
            "(expected option-chain-ED-NIFTY-DD-Mon-YYYY.csv)"
        )
    expiry = datetime.strptime(found.group(1).title(), "%d-%b-%Y").date()
    header = [c.strip() for c in rows[1]]
    if header[1:22] != EXPORT_COLUMNS:
        raise ChainFileError(f"NSE export: columns {header[1:22]} are not {EXPORT_COLUMNS}")
    moment = ctx.time(f"NSE export {path.name}")
    lot = lot_size(expiry)
    quotes = []
    for line, row in enumerate(rows[2:], start=3):
        if not any(c.strip() for c in row):
            continue
        try:
            c = [number(x) for x in row[1:22]]
            if c[10] is None or c[10] <= 0:
                raise ValueError("no strike")
            quotes.append(
                OptionQuote(
                    strike=c[10],
                    ce_oi=(c[0] or 0.0) * lot,
                    ce_oi_change=None if c[1] is None else c[1] * lot,
                    ce_volume=None if c[2] is None else c[2] * lot,
                    ce_iv=_iv(c[3]),
                    ce_ltp=_positive(c[4]),
                    ce_bid=_positive(c[7]),
                    ce_ask=_positive(c[8]),
                    pe_bid=_positive(c[12]),
                    pe_ask=_positive(c[13]),
                    pe_ltp=_positive(c[16]),
                    pe_iv=_iv(c[17]),
                    pe_volume=None if c[18] is None else c[18] * lot,
                    pe_oi_change=None if c[19] is None else c[19] * lot,
                    pe_oi=(c[20] or 0.0) * lot,
                )
            )
        except (ValueError, IndexError) as exc:
            raise ChainFileError(f"NSE export {path.name} line {line}: {exc}") from exc
    spot = ctx.spot_for(moment, f"NSE export {path.name}")
    return _chain(quotes, expiry, moment, spot, f"nse_export:{path.name}", lot)


def eod_columns(fields: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(canonical name -> the file's column, unknown columns) of an end-of-day table's
    header; two columns meaning one field raise ChainFileError."""
    known: dict[str, str] = {}
    unknown: list[str] = []
    for field in fields:
        name = (field or "").strip()
        key = name.lower()
        side, _, rest = key.partition("_")
        if key in ("expiry", "strike", "oi_unit"):
            canonical = key
        elif side in ("ce", "pe") and (rest in EOD_SIDES or rest in EOD_ALIASES):
            canonical = f"{side}_{EOD_ALIASES.get(rest, rest)}"
        else:
            if name:
                unknown.append(name)
            continue
        if canonical in known:
            raise ChainFileError(
                f"columns {known[canonical]!r} and {field!r} both give {canonical}"
            )
        known[canonical] = field
    return known, unknown


def detect_oi_unit(ois: Iterable[tuple[date, float]]) -> str | None:
    """``units`` when at least MIN_DETECT_VALUES non-zero OIs are all multiples of their
    expiry's lot (exchange OI in units always is; contract counts almost never all are),
    else None: the unit cannot be told and must be declared."""
    values = [(e, v) for e, v in ois if v]
    if len(values) < MIN_DETECT_VALUES:
        return None
    return "units" if all(v % lot_size(e) == 0 for e, v in values) else None


def _declared_unit(text: str | None, what: str) -> str | None:
    if text is None or not text.strip():
        return None
    unit = OI_UNITS.get(text.strip().lower())
    if unit is None:
        raise ValueError(f"{what} {text.strip()!r} is not one of {sorted(OI_UNITS)}")
    return unit


def eod_table(
    fields: list[str], rows: list[dict[str, str]], path: Path, ctx: FileContext
) -> list[OptionChain]:
    """A plain end-of-day table, one chain per expiry; needs at least one OI column. The OI
    unit comes from an ``oi_unit`` column, else ``ctx.oi_unit``, else ``detect_oi_unit``."""
    columns, unknown = eod_columns(fields)
    if unknown:
        log.warning("chain_file_unknown_columns", path=str(path), columns=unknown)
    if not set(columns) & {"ce_oi", "pe_oi"}:
        raise ChainFileError(f"{path.name}: no ce_oi or pe_oi column")
    try:
        declared = _declared_unit(ctx.oi_unit, "FileContext.oi_unit")
    except ValueError as exc:
        raise ChainFileError(f"{path.name}: {exc}") from exc
    moment = ctx.time(f"end-of-day table {path.name}")
    spot = ctx.spot_for(moment, f"end-of-day table {path.name}")
    parsed: list[tuple[int, date, str | None, float, dict[str, float | None]]] = []
    for line, row in enumerate(rows, start=2):
        try:
            expiry = date.fromisoformat(row[columns["expiry"]].strip())
            unit = _declared_unit(row.get(columns.get("oi_unit", "")), "oi_unit")
            values = {
                f"{side}_{name}": number(row.get(columns.get(f"{side}_{name}", "")))
                for side in ("ce", "pe")
                for name in EOD_SIDES
            }
            strike = number(row[columns["strike"]])
            if strike is None or strike <= 0:
                raise ValueError("strike must be positive")
            parsed.append((line, expiry, unit or declared, strike, values))
        except (ValueError, KeyError) as exc:
            raise ChainFileError(f"{path.name} line {line}: {exc}") from exc
    undeclared = [(e, v) for _, e, u, _, vs in parsed if u is None for v in _ois(vs)]
    detected = detect_oi_unit(undeclared) if undeclared else None
    by_expiry: dict[date, list[OptionQuote]] = defaultdict(list)
    for line, expiry, unit, strike, values in parsed:
        if unit is None and detected is None:
            raise ChainFileError(
                f"{path.name} line {line}: OI unit not declared and not detectable (OI not "
                f"all multiples of the lot {lot_size(expiry)}, or fewer than "
                f"{MIN_DETECT_VALUES} non-zero values): add an oi_unit column (units or "
                "contracts) or set FileContext.oi_unit"
            )
        scale = lot_size(expiry) if (unit or detected) == "contracts" else 1
        quote: dict[str, float | None] = {"strike": strike}
        for side in ("ce", "pe"):
            for name in ("oi", "oi_change", "volume"):
                v = values[f"{side}_{name}"]
                quote[f"{side}_{name}"] = None if v is None else v * scale
            quote[f"{side}_oi"] = quote[f"{side}_oi"] or 0.0
            quote[f"{side}_iv"] = _iv(values[f"{side}_iv"])
            for name in ("ltp", "bid", "ask"):
                quote[f"{side}_{name}"] = _positive(values[f"{side}_{name}"])
        try:
            by_expiry[expiry].append(OptionQuote(**quote))
        except ValueError as exc:
            raise ChainFileError(f"{path.name} line {line}: {exc}") from exc
    return [
        _chain(q, e, moment, spot, f"eod_table:{path.name}", lot_size(e))
        for e, q in sorted(by_expiry.items())
    ]


def _ois(values: dict[str, float | None]) -> list[float]:
    return [v for v in (values["ce_oi"], values["pe_oi"]) if v is not None]


def _bhav_date(text: str) -> date:
    text = text.strip()
    for fmt in ("%Y-%m-%d", "%d-%b-%Y", "%d-%m-%Y", "%d-%B-%Y"):
        try:
            return datetime.strptime(text.title() if "-" in text else text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"date {text!r} is not in a bhavcopy date format")


def bhavcopy(
    fields: list[str], rows: list[dict[str, str]], path: Path, ctx: FileContext, kind: str
) -> list[OptionChain]:
    """NIFTY index options of one F&O bhavcopy, one chain per expiry at 15:30 IST."""
    udiff = kind == "udiff_bhavcopy"
    need = UDIFF_NEED if udiff else CLASSIC_NEED
    missing = [c for c in need if c not in fields]
    if missing:
        raise ChainFileError(f"bhavcopy {path.name} lacks columns {missing}")
    change_column = "ChngInOpnIntrst" if udiff else "CHG_IN_OI"
    if change_column not in fields:
        log.warning("chain_file_no_oi_change", path=str(path), expected=change_column)
    legs: dict[date, dict[float, dict[str, float | None]]] = defaultdict(dict)
    trade_day: date | None = None
    underlying: float | None = None
    for line, row in enumerate(rows, start=2):
        if udiff:
            if row["TckrSymb"].strip() != "NIFTY" or row["FinInstrmTp"].strip() != "IDO":
                continue
        elif row["SYMBOL"].strip() != "NIFTY" or row["INSTRUMENT"].strip() != "OPTIDX":
            continue
        try:
            day = _bhav_date(row["TradDt"] if udiff else row["TIMESTAMP"])
            if trade_day not in (None, day):
                raise ValueError(f"second trade date {day} after {trade_day}")
            trade_day = day
            expiry = _bhav_date(row["XpryDt"] if udiff else row["EXPIRY_DT"])
            strike = number(row["StrkPric"] if udiff else row["STRIKE_PR"])
            side = (row["OptnTp"] if udiff else row["OPTION_TYP"]).strip().lower()
            if side not in ("ce", "pe") or not strike:
                raise ValueError(f"option type {side!r} / strike {strike!r}")
            close = number(row.get("ClsPric" if udiff else "CLOSE"))
            oi = number(row["OpnIntrst" if udiff else "OPEN_INT"]) or 0.0
            change = number(row.get("ChngInOpnIntrst" if udiff else "CHG_IN_OI"))
            volume = number(row.get("TtlTradgVol")) if udiff else None
            if volume is not None:  # contracts in the UDiFF file: units with the row's lot
                volume *= number(row.get("NewBrdLotQty")) or lot_size(expiry)
            if udiff and row.get("UndrlygPric"):
                underlying = number(row["UndrlygPric"])
            legs[expiry].setdefault(strike, {}).update(
                {
                    f"{side}_ltp": _positive(close),
                    f"{side}_oi": oi,
                    f"{side}_oi_change": change,
                    f"{side}_volume": volume,
                }
            )
        except (ValueError, KeyError) as exc:
            raise ChainFileError(f"bhavcopy {path.name} line {line}: {exc}") from exc
    if trade_day is None:
        raise ChainFileError(f"bhavcopy {path.name} has no NIFTY index-option rows")
    moment = daily_close_time(trade_day)
    spot = ctx.spot if ctx.spot is not None else underlying
    if spot is None:
        spot = ctx.spot_for(moment, f"bhavcopy {path.name}")
    return [
        _chain(
            (OptionQuote(strike=k, **v) for k, v in strikes.items()),
            expiry,
            moment,
            spot,
            f"{kind}:{path.name}",
            lot_size(expiry),
        )
        for expiry, strikes in sorted(legs.items())
        if expiry >= trade_day
    ]


def read_rows(handle: Iterable[str]) -> list[list[str]]:
    return [row for row in csv.reader(handle)]


def snapshot_time_setting(text: str | None) -> int | None:
    """AEGIS_CHAIN_FILE_SNAPSHOT_TS as epoch seconds; a value without offset is IST."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return int(moment.timestamp())

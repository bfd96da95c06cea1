"""NIFTY's option chain from NSE's public website JSON (a ``ChainFeed``).

A browser-like ``requests.Session``: it first loads the option-chain page for NSE's cookies,
then calls ``/api/option-chain-contract-info?symbol=NIFTY`` (the expiry list) and
``/api/option-chain-v3?type=Indices&symbol=NIFTY&expiry=DD-Mon-YYYY`` (one expiry). On 401 or
403 the cookies are dropped and fetched again once before the request counts as failed.
NSE gives OI, change in OI and volume in contracts (turned into units with the expiry's lot
size) and IV in percent; 0 means "no value". Its ``records.timestamp`` (IST) is the snapshot
time, ``records.underlyingValue`` the spot.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import requests

from services.ingest.sources.chain_feed import ChainFeedError
from services.ingest.sources.chain_formats import lot_size
from shared.contract.schemas import OptionChain, OptionQuote
from shared.market.calendar import IST

BASE_URL = "https://www.nseindia.com"
PAGE = "/option-chain"
EXPIRIES_API = "/api/option-chain-contract-info"
CHAIN_API = "/api/option-chain-v3"
TIMEOUT_S = 10.0
HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0 Safari/537.36"
    ),
    "Accept": "application/json, text/plain, */*",
    "Accept-Language": "en-US,en;q=0.9",
    "Referer": f"{BASE_URL}{PAGE}",
}


def _nse_date(text: str) -> date:
    return datetime.strptime(text.strip(), "%d-%b-%Y").date()


def _value(leg: dict[str, Any], key: str) -> float | None:
    value = leg.get(key)
    return float(value) if isinstance(value, int | float) and value else None


def parse_chain(payload: dict[str, Any], expiry: date, source: str) -> OptionChain:
    """One expiry's ``OptionChain`` from an NSE option-chain response (v3, or the legacy
    all-expiries response filtered by ``expiryDate``); ValueError/KeyError if malformed."""
    records = payload["records"]
    moment = datetime.strptime(records["timestamp"], "%d-%b-%Y %H:%M:%S").replace(tzinfo=IST)
    spot = float(records["underlyingValue"])
    lot = lot_size(expiry)
    quotes = []
    for row in records["data"]:
        row_expiry = row.get("expiryDate") or row.get("expiryDates")
        if row_expiry is None or _nse_date(row_expiry) != expiry:
            continue
        fields: dict[str, Any] = {"strike": float(row["strikePrice"])}
        for side, key in (("ce", "CE"), ("pe", "PE")):
            leg = row.get(key) or {}
            units = {
                "oi": _value(leg, "openInterest"),
                "oi_change": leg.get("changeinOpenInterest"),
                "volume": _value(leg, "totalTradedVolume"),
            }
            fields[f"{side}_oi"] = (units["oi"] or 0.0) * lot
            change = units["oi_change"]
            fields[f"{side}_oi_change"] = (
                float(change) * lot if leg and change is not None else None
            )
            fields[f"{side}_volume"] = None if units["volume"] is None else units["volume"] * lot
            iv = _value(leg, "impliedVolatility")
            fields[f"{side}_iv"] = None if iv is None else iv / 100
            fields[f"{side}_ltp"] = _value(leg, "lastPrice")
            fields[f"{side}_bid"] = _value(leg, "bidprice")
            fields[f"{side}_ask"] = _value(leg, "askPrice")
        quotes.append(OptionQuote(**fields))
    if not quotes:
        raise ValueError(f"no rows for expiry {expiry}")
    return OptionChain(
        snapshot_time=int(moment.timestamp()),
        expiry=expiry.isoformat(),
        spot=spot,
        quotes=tuple(sorted(quotes, key=lambda q: q.strike)),
        source=source,
        lot_size=lot,
    )


class NseChainFeed:
    """The ``ChainFeed`` for nseindia.com (pass a session to record or replay HTTP)."""

    name = "nse"

    def __init__(self, session: requests.Session | None = None, symbol: str = "NIFTY") -> None:
        self.session = session or requests.Session()
        self.symbol = symbol
        self._cookies_fresh = False

    def _refresh_cookies(self) -> None:
        self.session.cookies.clear()
        try:
            self.session.get(f"{BASE_URL}{PAGE}", headers=HEADERS, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise ChainFeedError(f"cookie page: {type(exc).__name__}: {exc}") from exc
        self._cookies_fresh = True

    def _json(self, path: str, params: dict[str, str]) -> Any:
        if not self._cookies_fresh:
            self._refresh_cookies()
        for retry in (False, True):
            try:
                response = self.session.get(
                    f"{BASE_URL}{path}", params=params, headers=HEADERS, timeout=TIMEOUT_S
                )
            except requests.RequestException as exc:
                raise ChainFeedError(f"{path}: {type(exc).__name__}: {exc}") from exc
            if response.status_code in (401, 403) and not retry:
                self._refresh_cookies()
                continue
            break
        status = response.status_code
        if status != 200:
            self._cookies_fresh = status not in (401, 403)
            raise ChainFeedError(
                f"{path}: HTTP {status}",
                status=status,
                retryable=status in (401, 403, 429) or status >= 500,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ChainFeedError(f"{path}: malformed JSON ({exc})") from exc

    def expiries(self) -> list[date]:
        payload = self._json(EXPIRIES_API, {"symbol": self.symbol})
        try:
            listed = payload["expiryDates"]
            return [_nse_date(e) for e in listed]
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainFeedError(f"{EXPIRIES_API}: unexpected response ({exc!r})") from exc

    def chain(self, expiry: date) -> OptionChain:
        params = {"type": "Indices", "symbol": self.symbol, "expiry": expiry.strftime("%d-%b-%Y")}
        payload = self._json(CHAIN_API, params)
        try:
            return parse_chain(payload, expiry, f"nse:{self.symbol}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainFeedError(f"{CHAIN_API} {expiry}: unexpected response ({exc!r})") from exc

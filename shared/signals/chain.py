"""Option-chain analytics (pure): put-call ratio, OI walls, the IV smile and 25-delta skew,
the ATM straddle's implied move, ATM IV and its percentile. Each result has its formula."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays
from shared.signals.skew import implied_vol

PCR_FORMULA = (
    "oi = sum(pe_oi)/sum(ce_oi), volume = sum(pe_volume)/sum(ce_volume); "
    "near ATM: strikes with |K/S - 1| <= {near:.1%}"
)
WALLS_FORMULA = (
    "call walls: the {count} largest ce_oi strikes above spot; put walls: the {count} largest "
    "pe_oi strikes below; change = OI now - OI at the previous snapshot of the same expiry"
)
SMILE_FORMULA = (
    "out-of-the-money IV per strike (puts below F, calls at and above): published IV, else "
    "Black-76 implied from LTP; F from put-call parity (spot if no pair)"
)
DELTA_SKEW_FORMULA = (
    "Black-76 delta at each strike's own IV; rr25 = IV(put with delta nearest -{d:.2f}) - "
    "IV(call with delta nearest {d:.2f}); atm = IV at the strike nearest F"
)
STRADDLE_FORMULA = (
    "move = ce_ltp + pe_ltp at the listed strike nearest F (the market's expected |S_T - K|); "
    "one-sd equivalent = move / sqrt(2/pi)"
)
ATM_IV_PERCENTILE_FORMULA = "share of earlier kept snapshots whose ATM IV <= the current ATM IV"


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den > 0 else None


@dataclass(frozen=True)
class PutCallRatio:
    oi: float | None
    volume: float | None
    oi_near_atm: float | None
    volume_near_atm: float | None
    near_strikes: int  # strikes counted as near ATM


def put_call_ratio(quotes: Sequence[OptionQuote], spot: float, near: float = 0.02) -> PutCallRatio:
    """PCR by OI and by volume over the whole chain and over strikes within ``near`` of spot.
    A ratio is None when its denominator is zero (no call OI, or volume not published)."""
    a = as_arrays(quotes)
    close = np.abs(a.strike / spot - 1) <= near

    def ratios(mask: np.ndarray) -> tuple[float | None, float | None]:
        oi = _ratio(float(a.pe_oi[mask].sum()), float(a.ce_oi[mask].sum()))
        volume = _ratio(float(np.nansum(a.pe_volume[mask])), float(np.nansum(a.ce_volume[mask])))
        return oi, volume

    oi, volume = ratios(np.ones(a.strike.shape, dtype=bool))
    oi_near, volume_near = ratios(close)
    return PutCallRatio(oi, volume, oi_near, volume_near, int(close.sum()))


@dataclass(frozen=True)
class Wall:
    strike: float
    oi: float
    change_since_previous: float | None  # None: no previous snapshot, or strike not in it
    change_published: float | None  # the exchange's change in OI since the prior close
    distance_points: float


def oi_walls(
    quotes: Sequence[OptionQuote],
    spot: float,
    previous: Sequence[OptionQuote] | None = None,
    count: int = 3,
) -> tuple[list[Wall], list[Wall]]:
    """(call walls above spot, put walls below spot), largest OI first; zero OI is no wall."""
    a = as_arrays(quotes)
    before = as_arrays(previous) if previous else None
    prior = {} if before is None else {k: i for i, k in enumerate(before.strike.tolist())}

    def walls(side: str, mask: np.ndarray) -> list[Wall]:
        oi, change = getattr(a, f"{side}_oi"), getattr(a, f"{side}_oi_change")
        idx = np.flatnonzero(mask & (oi > 0))
        idx = idx[np.lexsort((np.abs(a.strike[idx] - spot), -oi[idx]))][:count]
        out = []
        for i in idx.tolist():
            k = float(a.strike[i])
            j = prior.get(k)
            out.append(
                Wall(
                    strike=k,
                    oi=float(oi[i]),
                    change_since_previous=None
                    if j is None or before is None
                    else float(oi[i] - getattr(before, f"{side}_oi")[j]),
                    change_published=None if np.isnan(change[i]) else float(change[i]),
                    distance_points=round(k - spot, 2),
                )
            )
        return out

    return walls("ce", a.strike > spot), walls("pe", a.strike < spot)


@dataclass(frozen=True)
class SmilePoint:
    strike: float
    log_moneyness: float  # ln(K/F)
    iv: float  # annualised fraction
    side: str  # "put" or "call": the out-of-the-money option used
    published: bool  # True: the exchange's IV; False: implied here from the LTP


@dataclass(frozen=True)
class Smile:
    forward: float
    forward_from_parity: bool
    points: tuple[SmilePoint, ...]


def chain_smile(quotes: Sequence[OptionQuote], spot: float, years: float) -> Smile | None:
    """Out-of-the-money IVs by strike; None when the time to expiry is not positive.
    Remembered per chain and ``years``: the seller's skew and chain groups share it."""
    if years <= 0 or not quotes:
        return None
    a = as_arrays(quotes)
    key = ("smile", spot if a.forward is None else None, years)
    if key in a.memo:
        return a.memo[key]
    forward = a.forward if a.forward is not None else spot
    is_call = a.strike >= forward
    given = np.where(is_call, a.ce_iv, a.pe_iv)
    prices = np.nan_to_num(np.where(is_call, a.ce_ltp, a.pe_ltp))
    need = ~np.isfinite(given)
    computed = np.full(a.strike.shape, np.nan)
    if need.any():
        computed[need] = implied_vol(prices[need], forward, a.strike[need], years, is_call[need])
    ivs = np.where(np.isfinite(given), given, computed)
    keep = np.isfinite(ivs) & (ivs > 0)
    points = tuple(
        SmilePoint(
            strike=k,
            log_moneyness=round(math.log(k / forward), 6),
            iv=round(v, 6),
            side="call" if c else "put",
            published=p,
        )
        for k, v, c, p in zip(
            a.strike[keep].tolist(),
            ivs[keep].tolist(),
            is_call[keep].tolist(),
            (~need)[keep].tolist(),
            strict=True,
        )
    )
    smile = Smile(
        forward=round(forward, 2), forward_from_parity=a.forward is not None, points=points
    )
    a.memo[key] = smile
    return smile


@dataclass(frozen=True)
class DeltaSkew:
    atm_iv: float
    put_strike: float
    put_iv: float
    call_strike: float
    call_iv: float
    risk_reversal: float  # put IV - call IV: > 0 means downside protection costs more


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def delta_skew(smile: Smile, years: float, delta: float = 0.25) -> DeltaSkew | None:
    """The 25-delta risk reversal from the smile; None without an OTM put and call."""
    if years <= 0 or len(smile.points) < 3:
        return None
    f, root = smile.forward, math.sqrt(years)

    def call_delta(p: SmilePoint) -> float:
        sd = p.iv * root
        return _norm_cdf((math.log(f / p.strike) + 0.5 * sd * sd) / sd)

    puts = [p for p in smile.points if p.side == "put"]
    calls = [p for p in smile.points if p.side == "call"]
    if not puts or not calls:
        return None
    put = min(puts, key=lambda p: abs((call_delta(p) - 1) + delta))
    call = min(calls, key=lambda p: abs(call_delta(p) - delta))
    atm = min(smile.points, key=lambda p: abs(p.strike - f))
    return DeltaSkew(
        atm_iv=atm.iv,
        put_strike=put.strike,
        put_iv=put.iv,
        call_strike=call.strike,
        call_iv=call.iv,
        risk_reversal=round(put.iv - call.iv, 6),
    )


@dataclass(frozen=True)
class StraddleMove:
    strike: float
    call: float
    put: float
    move_points: float  # straddle price: the market's expected absolute move to expiry
    move_pct: float  # of spot
    one_sd_points: float  # move / sqrt(2/pi): comparable with S*VIX/100*sqrt(T/365)


def straddle_move(quotes: Sequence[OptionQuote], spot: float) -> StraddleMove | None:
    """The ATM straddle at the strike nearest the parity forward (spot without one); None
    when that strike lacks a call or put price."""
    if not quotes:
        return None
    a = as_arrays(quotes)
    forward = a.forward if a.forward is not None else spot
    i = int(np.argmin(np.abs(a.strike - forward)))
    call, put = float(a.ce_ltp[i]), float(a.pe_ltp[i])
    if not (math.isfinite(call) and math.isfinite(put)):
        return None  # the true ATM strike is unpriced: no straddle, not a guess
    move = call + put
    return StraddleMove(
        strike=float(a.strike[i]),
        call=call,
        put=put,
        move_points=round(move, 2),
        move_pct=round(move / spot, 6),
        one_sd_points=round(move / math.sqrt(2 / math.pi), 2),
    )


def atm_iv(quotes: Sequence[OptionQuote], spot: float, years: float) -> float | None:
    """IV at the strike nearest the forward: the mean of the published call and put IVs
    there, else Black-76 implied from the two LTPs (one side if only one is priced)."""
    return atm_ivs([(quotes, spot, years)])[0]


def atm_ivs(chains: Sequence[tuple[Sequence[OptionQuote], float, float]]) -> list[float | None]:
    """``atm_iv`` of many (quotes, spot, years) at once: one vectorised inversion for all
    the prices that need one (a restarted engine fills its history in one pass)."""
    out: list[float | None] = [None] * len(chains)
    rows: list[tuple[int, float, float, float, float, bool]] = []  # i, price, F, K, T, call
    for n, (quotes, spot, years) in enumerate(chains):
        if years <= 0 or not quotes:
            continue
        a = as_arrays(quotes)
        forward = a.forward if a.forward is not None else spot
        i = int(np.argmin(np.abs(a.strike - forward)))
        published = [v for v in (float(a.ce_iv[i]), float(a.pe_iv[i])) if math.isfinite(v)]
        if published:
            out[n] = round(sum(published) / len(published), 6)
            continue
        for price, is_call in ((float(a.ce_ltp[i]), True), (float(a.pe_ltp[i]), False)):
            if math.isfinite(price):
                rows.append((n, price, forward, float(a.strike[i]), years, is_call))
    if rows:
        cols = list(zip(*rows, strict=True))
        ivs = implied_vol(
            np.array(cols[1]),
            np.array(cols[2]),
            np.array(cols[3]),
            np.array(cols[4]),
            np.array(cols[5], dtype=bool),
        )
        found: dict[int, list[float]] = {}
        for n, iv in zip(cols[0], ivs.tolist(), strict=True):
            if math.isfinite(iv):
                found.setdefault(n, []).append(iv)
        for n, values in found.items():
            out[n] = round(sum(values) / len(values), 6)
    return out


def percentile_rank(history: Sequence[float], value: float) -> float | None:
    """Share of ``history`` at or below ``value``; None for an empty history."""
    if not history:
        return None
    at_or_below = np.count_nonzero(np.fromiter(history, float, len(history)) <= value)
    return round(int(at_or_below) / len(history), 4)

"""Option-chain analytics (pure): put-call ratio, OI walls, the IV smile and 25-delta skew,
the ATM straddle's implied move, ATM IV and its percentile. Each result has its formula."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

import numpy as np
from scipy.special import ndtr

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays
from shared.signals.forward import parity_forward_of
from shared.signals.greeks import (
    ATM_IV_FORMULA,
    atm_windows,
    chain_ivs,
    chains_ivs,
)
from shared.signals.greeks import interpolated_atm_iv as _interpolated_atm_iv

PCR_FORMULA = (
    "oi = sum(pe_oi)/sum(ce_oi), volume = sum(pe_volume)/sum(ce_volume); "
    "near ATM: strikes with |K/S - 1| <= {near:.1%}"
)
WALLS_FORMULA = (
    "call walls: the {count} largest ce_oi strikes above spot; put walls: the {count} largest "
    "pe_oi strikes below; change = OI now - OI at the previous snapshot of the same expiry"
)
SMILE_FORMULA = (
    "out-of-the-money IV per strike (puts below F, calls at and above): the published IV when "
    "within 0.5 vol point of the Black-76 IV of the LTP, else that IV (greeks.GREEKS_FORMULA); "
    "F = the parity forward (forward.FORWARD_FORMULA; spot if no pair)"
)
DELTA_SKEW_FORMULA = (
    "Black-76 delta at each strike's own IV; rr25 = IV(put with delta nearest -{d:.2f}) - "
    "IV(call with delta nearest {d:.2f}); atm: " + ATM_IV_FORMULA
)
STRADDLE_FORMULA = (
    "move = ce_ltp + pe_ltp at the listed strike nearest F (the market's expected |S_T - K|); "
    "one-sd equivalent = move / sqrt(2/pi)"
)
STRADDLE_BAND_FORMULA = (
    "spot * exp(-/+ z * one_sd / spot), z the two-sided normal quantile of the coverage "
    "target: the lognormal band the straddle prices to this expiry (the range's baseline "
    "beside the VIX band)"
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
    # an unpublished volume counts as none: the values np.nansum adds
    columns = [
        a.pe_oi,
        a.ce_oi,
        *(np.where(np.isnan(v), 0.0, v) for v in (a.pe_volume, a.ce_volume)),
    ]

    def ratios(
        pe_oi: np.ndarray, ce_oi: np.ndarray, pe_volume: np.ndarray, ce_volume: np.ndarray
    ) -> tuple[float | None, float | None]:
        oi = _ratio(float(pe_oi.sum()), float(ce_oi.sum()))
        return oi, _ratio(float(pe_volume.sum()), float(ce_volume.sum()))

    oi, volume = ratios(*columns)
    oi_near, volume_near = ratios(*(column[close] for column in columns))
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


class SmilePoint(NamedTuple):
    """One strike of a smile (a named tuple: a chain's ~100 are built per new snapshot, at a
    fifth of a frozen dataclass's cost)."""

    strike: float
    log_moneyness: float  # ln(K/F)
    iv: float  # annualised fraction
    side: str  # "put" or "call": the out-of-the-money option used
    published: bool  # True: the exchange's IV; False: implied here from the LTP


@dataclass(frozen=True, eq=False)
class Smile:
    """A chain's out-of-the-money IVs by strike (ascending), as columns: the ATM IV, delta
    skew, chain skew and the chart read these; ``points`` (the same strikes as named tuples)
    are built on first use."""

    forward: float
    forward_from_parity: bool
    strikes: np.ndarray
    log_moneyness: np.ndarray  # ln(K/F)
    ivs: np.ndarray  # annualised fraction
    published: np.ndarray  # True: the exchange's IV; False: implied here from the LTP
    is_put: np.ndarray  # the out-of-the-money option used is the put (strike below F)

    @classmethod
    def from_points(
        cls, forward: float, forward_from_parity: bool, points: Sequence[SmilePoint]
    ) -> Smile:
        n = len(points)

        def column(values: Any, dtype: type) -> np.ndarray:
            return np.fromiter(values, dtype, n)

        return cls(
            forward,
            forward_from_parity,
            column((p.strike for p in points), float),
            column((p.log_moneyness for p in points), float),
            column((p.iv for p in points), float),
            column((p.published for p in points), bool),
            column((p.side == "put" for p in points), bool),
        )

    @cached_property
    def points(self) -> tuple[SmilePoint, ...]:
        return tuple(
            map(
                SmilePoint,
                self.strikes.tolist(),
                self.log_moneyness.tolist(),
                self.ivs.tolist(),
                np.where(self.is_put, "put", "call").tolist(),
                self.published.tolist(),
            )
        )

    @cached_property
    def atm_iv(self) -> float | None:
        """``smile_atm_iv``, computed once per smile: ``interpolated_atm_iv`` on the smile
        strikes either side of F (the ones it reads), or on all when F is outside them."""
        i = int(np.searchsorted(self.strikes, self.forward))  # strikes below F come first
        lo, hi = (i - 1, i + 1) if 0 < i < self.strikes.size else (0, self.strikes.size)
        iv = _interpolated_atm_iv(
            self.strikes[lo:hi].tolist(), self.ivs[lo:hi].tolist(), self.forward
        )
        return None if iv is None else round(iv, 6)


def chain_smile(quotes: Sequence[OptionQuote], spot: float, years: float) -> Smile | None:
    """Out-of-the-money IVs by strike (``SMILE_FORMULA``, the IVs of ``greeks.chain_ivs``);
    None when the time to expiry is not positive. Remembered per chain, spot and ``years``:
    the seller's skew and chain groups share it."""
    if years <= 0 or not quotes:
        return None
    a = as_arrays(quotes)
    key = ("smile", spot, years)
    if key in a.memo:
        return a.memo[key]
    solved = chain_ivs(quotes, spot, years)
    assert solved is not None  # the chain has quotes
    forward, ivs = solved.forward, solved.iv
    keep = np.isfinite(ivs)
    strikes = solved.strikes[keep]
    smile = Smile(
        forward=round(forward, 2),
        forward_from_parity=solved.from_parity,
        strikes=strikes,
        log_moneyness=np.round(np.log(strikes / forward), 6),
        ivs=np.round(ivs[keep], 6),
        published=solved.used_published[keep],
        is_put=strikes < forward,
    )
    a.memo[key] = smile
    return smile


def smile_atm_iv(smile: Smile) -> float | None:
    """THE ATM IV of a chain (``ATM_IV_FORMULA``, see ``greeks.interpolated_atm_iv`` for why
    this definition): every tile (ATM IV, its percentile, delta skew, term structure) reads
    this one. None for a smile without points."""
    return smile.atm_iv


@dataclass(frozen=True)
class DeltaSkew:
    atm_iv: float
    put_strike: float
    put_iv: float
    call_strike: float
    call_iv: float
    risk_reversal: float  # put IV - call IV: > 0 means downside protection costs more


@lru_cache(maxsize=64)
def delta_skew(smile: Smile, years: float, delta: float = 0.25) -> DeltaSkew | None:
    """The 25-delta risk reversal from the smile; None without an OTM put and call. The
    smile's points at once (numpy): Black-76 call delta N(d1) at each point's own IV.
    Remembered per smile (by identity) and ``years``: the chain group and the term structure
    ask for the target expiry's."""
    strikes, ivs, is_put = smile.strikes, smile.ivs, smile.is_put
    if years <= 0 or strikes.size < 3 or is_put.all() or not is_put.any():
        return None
    sd = ivs * math.sqrt(years)
    call_delta = ndtr((np.log(smile.forward / strikes) + 0.5 * sd * sd) / sd)
    puts, calls = np.flatnonzero(is_put), np.flatnonzero(~is_put)
    put = int(puts[np.argmin(np.abs(call_delta[puts] - 1 + delta))])
    call = int(calls[np.argmin(np.abs(call_delta[calls] - delta))])
    put_iv, call_iv = float(ivs[put]), float(ivs[call])
    atm = smile_atm_iv(smile)
    assert atm is not None  # the smile has points
    return DeltaSkew(
        atm_iv=atm,
        put_strike=float(strikes[put]),
        put_iv=put_iv,
        call_strike=float(strikes[call]),
        call_iv=call_iv,
        risk_reversal=round(put_iv - call_iv, 6),
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
    parity = parity_forward_of(a, spot)
    forward = parity if parity is not None else spot
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


def straddle_band(spot: float, one_sd_points: float, z: float) -> tuple[float, float]:
    """The lognormal band of ``z`` standard deviations the straddle prices (its one-sd move
    as a fraction of spot is sigma * sqrt(T)); rounded to 0.01."""
    width = z * one_sd_points / spot
    return round(spot * math.exp(-width), 2), round(spot * math.exp(width), 2)


def atm_iv(quotes: Sequence[OptionQuote], spot: float, years: float) -> float | None:
    """THE ATM IV of one expiry's quotes: ``smile_atm_iv`` of ``chain_smile``; None when the
    time to expiry is not positive or no strike has an IV."""
    return atm_ivs([(quotes, spot, years)])[0]


WHOLE_CHAINS_MAX = 16  # up to this many chains: value every strike (one solve, remembered)


def atm_ivs(chains: Sequence[tuple[Sequence[OptionQuote], float, float]]) -> list[float | None]:
    """``atm_iv`` of many (quotes, spot, years) at once. A few chains (a live poll's new
    snapshots) are valued whole in one vectorised solve, remembered for the Greeks, smile and
    term structure of the same block. Many (a restarted engine's history) value only the
    strikes around each forward; the whole smile only for a chain whose strikes next to F
    have no IV."""
    if len(chains) <= WHOLE_CHAINS_MAX:
        chains_ivs([(q, s, y) for q, s, y in chains if q and y > 0])
        smiles = [chain_smile(q, s, y) for q, s, y in chains]
        return [None if smile is None else smile_atm_iv(smile) for smile in smiles]
    out: list[float | None] = []
    windows = atm_windows([(q, s, y) if y > 0 else ((), s, y) for q, s, y in chains])
    for (quotes, spot, years), window in zip(chains, windows, strict=True):
        if window is not None and window.decisive:
            ivs = [None if v is None else round(v, 6) for v in window.ivs]
            iv = _interpolated_atm_iv(window.strikes, ivs, round(window.forward, 2))
            out.append(None if iv is None else round(iv, 6))
        else:
            smile = chain_smile(quotes, spot, years)
            out.append(None if smile is None else smile_atm_iv(smile))
    return out


def as_column(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Floats as one array (``np.fromiter``: faster than ``np.array`` on a tuple of them)."""
    if isinstance(values, np.ndarray):
        return values
    return np.fromiter(values, float, len(values))


def percentile_rank(history: Sequence[float] | np.ndarray, value: float) -> float | None:
    """Share of ``history`` at or below ``value``; None for an empty history."""
    if not len(history):
        return None
    at_or_below = np.count_nonzero(as_column(history) <= value)
    return round(int(at_or_below) / len(history), 4)

"""The chain's depth for the seller's chain group (pure): IV and Greeks by strike, dealer
gamma exposure and the zero-gamma level, OI build-up (since the previous snapshot and since
the previous session's last snapshot), the IV term structure across the listed expiries and
the synthetic forward's basis. Per-strike rows cover the strikes within ``band`` of spot,
like the OI chart. Computed once per set of chains (the chains are immutable), so the
minutes between two snapshots cost a dictionary look-up."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from shared.contract.document.chain import (
    Buildup,
    BuildupCounts,
    BuildupGroup,
    BuildupRow,
    BuildupSideCounts,
    BuildupSpan,
    Forward,
    GammaExposure,
    GammaRow,
    Greeks,
    GreeksRow,
    TermPoint,
    TermStructure,
)
from shared.contract.schemas import OptionChain
from shared.market.calendar import ist_iso
from shared.market.chain_view import ChainView, years_to_expiry
from shared.signals import provenance
from shared.signals.buildup import BUILDUP_FORMULA, ChainBuildup, SideBuildup, buildup_between
from shared.signals.chain_arrays import as_arrays
from shared.signals.exposure import (
    GEX_FORMULA,
    ZERO_GAMMA_FORMULA,
    ZERO_GAMMA_RANGE,
    ZERO_GAMMA_STEP,
    gamma_exposure,
    zero_gamma_level,
)
from shared.signals.greeks import GREEKS_FORMULA, ChainGreeks, chain_greeks
from shared.signals.rounding import as_optional, rounded
from shared.signals.term_structure import (
    BASIS_FORMULA,
    SYNTHETIC_FORWARD_FORMULA,
    TERM_STRUCTURE_FORMULA,
    synthetic_forward,
    term_structure,
)

MEMO_SIZE = 64
_memo: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()


def _when(chain: OptionChain | None) -> int | None:
    return None if chain is None else chain.snapshot_time


def _in_band(strikes: np.ndarray, spot: float, band: float) -> np.ndarray:
    return np.flatnonzero(np.abs(strikes / spot - 1) <= band)


@dataclass(frozen=True)
class Rows:
    """The strikes the per-strike rows show: their positions in the chain's columns and
    their values."""

    at: np.ndarray
    strikes: list[float]


def greeks_group(g: ChainGreeks, rows: Rows, window: str) -> Greeks:
    call, put, at = g.call, g.put, rows.at
    columns = (
        as_optional(call.ivs[at]),
        call.used_published[at].tolist(),
        as_optional(call.deltas[at]),
        as_optional(put.deltas[at]),
        as_optional(call.gammas[at]),
        as_optional(call.vegas[at]),
        as_optional(call.thetas[at]),
        [call.reason[i] for i in at.tolist()],
    )
    return Greeks(
        forward=round(g.forward, 2),
        forward_from_parity=g.forward_from_parity,
        years_to_expiry=round(g.years, 6),
        reason=g.reason,
        strikes=[
            GreeksRow(
                strike=strike,
                iv=iv,
                iv_published=published,
                call_delta=call_delta,
                put_delta=put_delta,
                gamma_per_point=gamma,
                vega_points_per_vol_point=vega,
                theta_points_per_day=theta,
                reason=reason,
            )
            for strike, iv, published, call_delta, put_delta, gamma, vega, theta, reason in zip(
                rows.strikes, *columns, strict=True
            )
        ],
        provenance=provenance.from_formula(GREEKS_FORMULA, window=window),
    )


def gamma_group(g: ChainGreeks, chain: OptionChain, rows: Rows, window: str) -> GammaExposure:
    gex = gamma_exposure(g, chain.quotes)
    zero = zero_gamma_level([(g, chain.quotes)])
    total = gex.total_gex_rupees_per_1pct
    call, put, net = (rounded(values[rows.at], 0) for values in (gex.call, gex.put, gex.net))
    return GammaExposure(
        total_rupees_per_1pct=round(total, 0),
        regime="positive" if total > 0 else "negative" if total < 0 else None,
        zero_gamma_level=None if zero.level is None else round(zero.level, 2),
        zero_gamma_reason=zero.reason,
        zero_gamma_range_pct=round(100 * zero.range_pct, 2),
        call_oi_without_gamma_units=gex.call_oi_without_gamma_units,
        put_oi_without_gamma_units=gex.put_oi_without_gamma_units,
        by_strike=[
            GammaRow(
                strike=strike,
                call_rupees_per_1pct=c,
                put_rupees_per_1pct=p,
                net_rupees_per_1pct=n,
            )
            for strike, c, p, n in zip(rows.strikes, call, put, net, strict=True)
        ],
        sign_convention="dealers assumed long calls (+) and short puts (-)",
        provenance=provenance.from_formula(
            GEX_FORMULA
            + "; zero gamma: "
            + ZERO_GAMMA_FORMULA.format(pct=ZERO_GAMMA_RANGE, step=ZERO_GAMMA_STEP),
            window=window,
        ),
    )


def _labels(side: SideBuildup, rows: np.ndarray | None = None) -> list[Buildup | None]:
    """The build-up of strikes ``rows`` (all by default) as the document's labels."""
    return cast(list[Buildup | None], side.labels(rows))


def buildup_side(b: ChainBuildup, rows: Rows, since: OptionChain) -> BuildupSpan:
    counts = BuildupSideCounts(
        **{
            name: BuildupCounts(
                **{label: n for label, n in Counter(_labels(side)).items() if label is not None}
            )
            for name, side in (("call", b.call), ("put", b.put))
        }
    )
    at = rows.at
    columns = (
        _labels(b.call, at),
        _labels(b.put, at),
        as_optional(b.call.oi_change[at]),
        as_optional(b.put.oi_change[at]),
        rounded(b.call.price_change[at], 2),
        rounded(b.put.price_change[at], 2),
    )
    return BuildupSpan(
        since=ist_iso(since.snapshot_time),
        counts=counts,
        by_strike=[
            BuildupRow(
                strike=strike,
                call=call,
                put=put,
                call_oi_change_units=call_oi,
                put_oi_change_units=put_oi,
                call_price_change_points=call_price,
                put_price_change_points=put_price,
            )
            for strike, call, put, call_oi, put_oi, call_price, put_price in zip(
                rows.strikes, *columns, strict=True
            )
        ],
    )


def buildup_group(view: ChainView, rows: Rows, window: str) -> BuildupGroup:
    chain = view.chain
    assert chain is not None
    since_close = view.previous_close
    return BuildupGroup(
        since_previous=None
        if view.previous is None
        else buildup_side(buildup_between(chain.quotes, view.previous.quotes), rows, view.previous),
        since_close=None
        if since_close is None
        else buildup_side(buildup_between(chain.quotes, since_close.quotes), rows, since_close),
        since_close_reason=None
        if since_close is not None
        else "no snapshot of this expiry from an earlier session is held",
        provenance=provenance.from_formula(
            BUILDUP_FORMULA
            + "; since the close = against the last snapshot of the previous session held",
            window=window,
        ),
    )


def term_group(view: ChainView) -> TermStructure:
    chain = view.chain
    assert chain is not None
    chains = [chain, *view.other_expiries]
    points = term_structure(chains)
    taken = {c.expiry: c.snapshot_time for c in chains}
    return TermStructure(
        expiries=[
            TermPoint(
                expiry=p.expiry,
                days_to_expiry=round(p.days_to_expiry, 3),
                atm_iv=p.atm_iv,
                risk_reversal_25d=p.risk_reversal_25d,
                butterfly_25d=p.butterfly_25d,
                chain_as_of=ist_iso(taken[p.expiry]),
                reason=p.reason,
            )
            for p in points
        ],
        provenance=provenance.from_formula(
            TERM_STRUCTURE_FORMULA,
            window=f"{len(points)} expiries, chains at or before the snapshot",
        ),
    )


def forward_group(chain: OptionChain, window: str) -> Forward:
    found = synthetic_forward(chain.quotes, chain.spot)
    return Forward(
        forward=None if found is None else round(found.forward, 2),
        basis_points=None if found is None else found.basis_points,
        basis_percent=None if found is None else found.basis_pct,
        parity_strikes=[] if found is None else list(found.strikes),
        reason=None if found is not None else "no strike priced on both sides",
        provenance=provenance.from_formula(
            f"{SYNTHETIC_FORWARD_FORMULA}; {BASIS_FORMULA}", window=window
        ),
    )


def depth_groups(view: ChainView, band: float) -> dict[str, Any]:
    """The depth groups of ``view``'s chain (which must be fresh)."""
    chain = view.chain
    assert chain is not None
    key = (
        id(chain),
        _when(view.previous),
        _when(view.previous_close),
        tuple((c.expiry, c.snapshot_time) for c in view.other_expiries),
        band,
    )
    hit = _memo.get(key)
    if hit is not None and hit["_chain"] is chain:
        _memo.move_to_end(key)
        return hit["groups"]
    g = chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain))
    strikes = as_arrays(chain.quotes).strike
    at = _in_band(strikes, chain.spot, band)
    rows = Rows(at, strikes[at].tolist())
    window = f"chain {ist_iso(chain.snapshot_time)} ({chain.source}), expiry {chain.expiry}"
    groups = {
        "greeks": greeks_group(g, rows, window),
        "gamma_exposure": gamma_group(g, chain, rows, window),
        "buildup": buildup_group(view, rows, window),
        "term_structure": term_group(view),
        "forward": forward_group(chain, window),
    }
    _memo[key] = {"_chain": chain, "groups": groups}
    while len(_memo) > MEMO_SIZE:
        _memo.popitem(last=False)
    return groups

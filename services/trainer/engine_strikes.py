"""The breach curve at the strikes the seller engine publishes (the nearest 50-point strike
to spot x (1 +/- d%), ``shared.signals.breach.breach_strikes``), as it publishes it: the
model's where the fold's selection chose the model for the expiry range, else the VIX
lognormal. The evaluation's own breach table scores unrounded strikes at the same
distances; this one is what a replay's live scorecard scores (docs/HISTORY.md)."""

from __future__ import annotations

import math
from typing import Any

from shared.signals.breach import breach_strikes, lognormal_breach_probability


def breach_rows(
    model: Any,
    range_live: bool,
    daily: dict[str, Any],
    spot: float,
    days: int,
    sessions: float,
    expiry_close: float,
) -> list[dict[str, Any]]:
    """One session's shipped breach probabilities at the engine's strikes, the VIX
    lognormal's beside them, and whether each was breached (NaN while unsettled)."""
    vix = daily["vix"]
    strikes = breach_strikes(spot)
    lognormal = [lognormal_breach_probability(spot, s.strike, vix, days) for s in strikes]
    probs = (
        model.breach_probabilities(daily, spot, [s.strike for s in strikes], days, sessions)
        if range_live
        else lognormal
    )
    return [
        {
            "strike": s.strike,
            "side": s.side,
            "probability": p,
            "probability_lognormal": q,
            "breached": math.nan
            if math.isnan(expiry_close)
            else float(expiry_close > s.strike if s.side == "above" else expiry_close < s.strike),
        }
        for s, p, q in zip(strikes, probs, lognormal, strict=True)
    ]

"""The option chain by strike as it was at a moment, and its OI change since an earlier one
(pure): both from the seller blocks' ``chain.oi_by_strike`` (the strikes around spot the
dashboard charts), so only chains of the same expiry are compared."""

from __future__ import annotations

from typing import Any

from shared.contract.schemas import SignalBlock


def fresh_chain(block: SignalBlock | None) -> dict[str, Any] | None:
    """The block's chain group when it holds a fresh chain, else None."""
    chain = block.data.get("chain") if block is not None else None
    return chain if isinstance(chain, dict) and chain.get("status") == "fresh" else None


def oi_change(now: dict[str, Any], base: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per strike of ``now``: its OI and the change since ``base`` (None where ``base`` lacks
    the strike, or is another expiry's chain)."""
    same = base is not None and base.get("expiry") == now.get("expiry")
    before = {r["strike"]: r for r in (base or {}).get("oi_by_strike") or []} if same else {}
    rows = []
    for r in now.get("oi_by_strike") or []:
        b = before.get(r["strike"])
        rows.append(
            {
                "strike": r["strike"],
                "ce_oi": r["ce_oi"],
                "pe_oi": r["pe_oi"],
                "ce_change": r["ce_oi"] - b["ce_oi"] if b else None,
                "pe_change": r["pe_oi"] - b["pe_oi"] if b else None,
            }
        )
    return rows

"""The ``stats`` artifact: rates and calibrations measured from data, each with its window."""

from __future__ import annotations

from typing import Any

from shared.models.base import ArtifactModel

POOLED = "ALL"  # the regime key holding every regime's samples (used for UNKNOWN VIX)


class MeasuredStatistics(ArtifactModel):
    def _regime(self, table: dict[str, Any], regime: str) -> str:
        return regime if regime in table else POOLED

    def safe_range_z(self, regime: str) -> tuple[float, float, float]:
        table = self.params["safe_range"]
        row = table[self._regime(table, regime)]
        return float(row["z_lower"]), float(row["z_upper"]), float(self.params["coverage_target"])

    def hit_rate(self, regime: str) -> dict[str, Any]:
        table = self.params["hit_rate"]
        key = self._regime(table, regime)
        return {**table[key], "regime": key}

    def spike_rate(self, regime: str) -> dict[str, Any]:
        table = self.params["spike_rate"]
        key = self._regime(table, regime)
        return {**table[key], "regime": key}

    def gamma_windows(self) -> list[dict[str, Any]]:
        return [dict(w) for w in self.params["gamma_windows"]]

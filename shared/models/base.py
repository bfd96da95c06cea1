"""What every loaded model shares: its reference, manifest and training window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.contract.schemas import ModelRef

PARAMS_FILE = "params.json"


class ArtifactModel:
    """A model loaded from one verified registry version directory.

    ``FORMAT`` is the artifact layout this code reads; a trainer change that alters what a
    version holds raises it, so versions written before are retrained, never loaded."""

    FORMAT = 1

    @staticmethod
    def format_of(manifest: dict[str, Any]) -> int:
        """The artifact format a version was written in (1 before formats were recorded)."""
        return int(manifest.get("format", 1))

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        self.manifest = manifest
        window = manifest["training_window"]
        self.ref = ModelRef(
            name=manifest["name"],
            version=manifest["version"],
            trained_at=manifest["created_at"],
            training_window=f"{window['start']}..{window['end']}",
        )
        self.params: dict[str, Any] = json.loads((directory / PARAMS_FILE).read_text())

    def in_sample(self, session_date: str) -> bool:
        window = self.manifest["training_window"]
        return window["start"] <= session_date[:10] <= window["end"]

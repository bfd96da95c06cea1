"""A tqdm progress bar fed by the pipeline's (step, done, total) callbacks."""

from __future__ import annotations

from tqdm import tqdm


class Bar:
    def __init__(self, desc: str = "training") -> None:
        self.bar = tqdm(total=1, desc=desc, unit="step")

    def __call__(self, step: str, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(step)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()

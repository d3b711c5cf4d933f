"""The band's plan: a tentative beat beyond the committed band (engine.generator's
``plan``), shown on the piano roll and never sounded, and when there is time to make one.

After the steps due are committed, every ``PLAN_EVERY`` steps the generator rolls the
model out greedily for one beat beyond the last committed step, from a saved copy of its
state (``Accompanist.plan``: the cells and the fixed-size cache are restored afterwards),
with the melody assumed held. The plan is never fed back; it is replaced at each new
plan and dropped while the band listens; under a chord source its chords are the
source's (a chart's at their steps, the chord held now of a live one) and the model
plans the rest. It runs in the slack after the commit and is skipped when the next step
is due too soon for it, so it never delays a committed step.

Thread: the generator worker makes plans; any thread may read ``Plan`` objects (frozen).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from models.contract import PLAN_EVERY


@dataclass(frozen=True)
class Plan:
    """A tentative beat beyond the committed band: shown, never sounded."""

    first_step: int  # the step of frames[0] (the step after the last committed one)
    frames: np.ndarray  # (n, 4) chord, bass, tenor, alto (the model's greedy guess)
    held: tuple[int | None, int | None, int | None]  # bass, tenor, alto pitch sounding before it
    parts: frozenset[str]  # the tonal parts that play (not muted, in the style)


class PlanTimer:
    """Every ``PLAN_EVERY`` committed steps, a plan when the slack before the next step
    is due allows it (it must never delay a step); the plans' times for the metrics."""

    def __init__(self, capacity: int) -> None:
        self._ms = np.zeros(capacity, np.float64)
        self._n = 0
        self._since = PLAN_EVERY
        self._last_ms = 0.0
        self._t0 = 0.0

    def due(self, committed: int, slack_ms: float) -> bool:
        """``committed`` steps were just committed; ``slack_ms`` until the next is due."""
        self._since += committed
        return committed > 0 and self._since >= PLAN_EVERY and slack_ms > 3.0 * self._last_ms + 5.0

    def begin(self) -> None:
        self._since = 0
        self._t0 = time.perf_counter()

    def end(self) -> None:
        self._last_ms = (time.perf_counter() - self._t0) * 1000.0
        self._ms[self._n % self._ms.shape[0]] = self._last_ms
        self._n += 1

    def p99_ms(self) -> float:
        n = min(self._n, self._ms.shape[0])
        return float(np.percentile(self._ms[:n], 99)) if n else 0.0

"""Feel: how the band's steps are placed and played, apart from what it plays.

- swing (0 straight .. 1 triplet): each beat of a simple meter (4/4, 3/4) is warped so
  its off-beat 8th lands at ``0.5 + swing / 6`` of the beat (1:1 .. 2:1 long:short);
  the 16ths between move with it (each half-beat is stretched or squeezed linearly).
  Compound meters (6/8) already swing in threes and are left straight.
- fills: ``off``, ``phrase`` (a beat at the end of every 4th bar, two at every 8th) or
  ``more`` (a beat every 2nd bar, two every 4th); see ``engine.groove``.
- time: ``normal``, ``half`` (the drummer's pattern spread over two bars) or
  ``double`` (two patterns in a bar); the model's band keeps its own time.
- humanise (0..1): per part and step, a timing delay of up to ``humanise *
  MAX_HUMAN_MS`` and a velocity spread of up to ``humanise * MAX_HUMAN_VEL``, drawn
  from a generator seeded by the render's seed, so a seed always plays the same.

Every offset is a delay that stays inside its step, so the events of a step still
leave after those of the step before (the event queue's order) and nothing moves
into the past.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.clock import beat_steps

FILLS = ("off", "phrase", "more")
TIMES = ("normal", "half", "double")
MAX_HUMAN_MS = 12.0  # at humanise 1: audible looseness, never a flam against the grid
MAX_HUMAN_VEL = 18
# parts in the order the humaniser draws them (fixed, so the stream is the same per seed)
HUMAN_PARTS = ("bass", "keys", "pad", "drums")


@dataclass(frozen=True)
class Feel:
    """A user's feel settings; ``None`` takes the style's default."""

    swing: float | None = None
    fills: str | None = None
    time: str | None = None
    humanise: float = 0.0

    def __post_init__(self) -> None:
        if self.swing is not None and not 0.0 <= self.swing <= 1.0:
            raise ValueError(f"swing must be 0 (straight) .. 1 (triplet), got {self.swing}")
        if self.fills is not None and self.fills not in FILLS:
            raise ValueError(f"fills must be one of {', '.join(FILLS)}, got {self.fills!r}")
        if self.time is not None and self.time not in TIMES:
            raise ValueError(f"time must be one of {', '.join(TIMES)}, got {self.time!r}")
        if not 0.0 <= self.humanise <= 1.0:
            raise ValueError(f"humanise must be 0-1, got {self.humanise}")


def swing_fraction(step_in_bar: int, meter: str, swing: float) -> float:
    """How far (in steps, 0 <= x < 1) swing delays this 16th step."""
    if swing <= 0.0 or beat_steps(meter) != 4:
        return 0.0
    pos = step_in_bar % 4
    off = 0.5 + swing / 6.0  # where the off-beat 8th lands, in beats
    if pos < 2:
        beat = pos * 0.25 * off / 0.5  # first half-beat stretched to [0, off]
    else:
        beat = off + (pos - 2) * 0.25 * (1.0 - off) / 0.5
    return beat * 4 - pos


class Humaniser:
    """Per-step timing and velocity spread, the same for the same seed. Thread: the
    renderer's (one caller)."""

    def __init__(self, amount: float, seed: int) -> None:
        self.amount = float(amount)
        self._rng = np.random.default_rng(seed + 104729)  # its own stream
        self.timing: dict[str, float] = {p: 0.0 for p in HUMAN_PARTS}  # seconds
        self.velocity: dict[str, int] = {p: 0 for p in HUMAN_PARTS}

    def next_step(self) -> None:
        if self.amount <= 0.0:
            return
        u = self._rng.random(2 * len(HUMAN_PARTS))
        for i, p in enumerate(HUMAN_PARTS):
            self.timing[p] = float(u[i]) * self.amount * MAX_HUMAN_MS / 1000.0
            self.velocity[p] = int(round((2.0 * float(u[len(HUMAN_PARTS) + i]) - 1.0) * self.amount * MAX_HUMAN_VEL))

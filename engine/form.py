"""Locked forms and practice ramps: the band's own recent chords as a looping chart.

``form_from_frames`` turns the chord stream the band played over the last N bars (the
generator's ``recent`` frames) into a ``Chart`` whose bars reproduce it step for step:
each bar gets the fewest chord slots that the chart's even split of a bar
(``Chart.token_at``) plays back exactly, so a bar of C then G on beat 3 is ``C G``, and
a chord that changed on an off-beat 16th still comes back on that 16th.

``TempoRamp``: for practice, the tempo rises by ``bpm`` each time a looped chart or form
has come round ``every`` times (up to ``limit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from engine.chart import Chart, ChartSource
from engine.clock import MAX_BPM, MIN_BPM
from models.tokens import CHORD_BASE, CHORD_NONE, bar_steps

LOCK_BARS = (2, 4, 8)


def check_lock_bars(bars: int) -> int:
    """``bars`` as an int; ValueError unless it is one of ``LOCK_BARS``."""
    if bars not in LOCK_BARS:
        raise ValueError(f"a locked form is {', '.join(map(str, LOCK_BARS))} bars, got {bars!r}")
    return int(bars)


def _bar_slots(chords: list[int], meter: str) -> tuple[int, ...]:
    """The fewest slots whose even split of a bar plays ``chords`` (one per step) back."""
    n = len(chords)
    for k in range(1, n + 1):
        # candidate slots: the chord at each slot's start as the chart splits the bar
        probe = Chart((tuple(range(k)),))
        starts = [next(p for p in range(n) if probe.token_at(p, meter) == i) for i in range(k)]
        slots = tuple(chords[s] for s in starts)
        trial = Chart((slots,))
        if all(trial.token_at(p, meter) == chords[p] for p in range(n)):
            return slots
    return tuple(chords)


def form_from_frames(frames: Iterable[tuple], end_step: int, bars: int, meter: str) -> Chart | None:
    """The chords of steps ``end_step - bars * bar`` .. ``end_step - 1`` as a chart, from
    frames ``(step, chord, ...)``; None when a step is missing (not that much played)."""
    n = bar_steps(meter)
    first = end_step - check_lock_bars(bars) * n
    if first < 0:
        return None
    by_step = {int(f[0]): int(f[1]) for f in frames if first <= f[0] < end_step}
    if len(by_step) != end_step - first:
        return None
    chords = [by_step[s] if by_step[s] >= CHORD_BASE else CHORD_NONE for s in range(first, end_step)]
    out = tuple(_bar_slots(chords[b * n : (b + 1) * n], meter) for b in range(bars))
    return Chart(out, (), "locked form")


@dataclass(frozen=True)
class TempoRamp:
    """+``bpm`` (negative: slower) each ``every`` times round the form, up (or down) to
    ``limit`` (default: the clock's range)."""

    bpm: float
    every: int = 1
    limit: float | None = None

    def __post_init__(self) -> None:
        if not -40.0 <= self.bpm <= 40.0 or self.bpm == 0:
            raise ValueError(f"a tempo ramp step must be -40..40 BPM and not 0, got {self.bpm}")
        if not 1 <= self.every <= 64:
            raise ValueError(f"a tempo ramp steps every 1-64 times round the form, got {self.every}")
        if self.limit is not None and not MIN_BPM <= self.limit <= MAX_BPM:
            raise ValueError(f"a tempo ramp's limit must be {MIN_BPM:g}-{MAX_BPM:g} BPM, got {self.limit}")

    def tempo_at(self, step: int, source, current: float) -> float | None:
        """The new tempo from ``step`` when the form comes round there for the
        ``every``-th time, else None. Only a looped chart or form ramps."""
        if not isinstance(source, ChartSource) or step <= source.start:
            return None
        form_steps = len(source.chart.bars) * bar_steps(source.meter)
        loops, rest = divmod(step - source.start, form_steps)
        if rest or loops % self.every:
            return None
        if self.bpm > 0:
            new = min(MAX_BPM if self.limit is None else self.limit, current + self.bpm)
        else:
            new = max(MIN_BPM if self.limit is None else self.limit, current + self.bpm)
        return None if (new - current) * self.bpm <= 0 else new

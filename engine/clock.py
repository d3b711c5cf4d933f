"""Musical time on the audio clock: tempo map, meter, count-in and the 16th-note grid.

Units:
- *sample*: an integer on the audio clock (the output callback's sample counter, or the
  simulated counter of an offline render);
- *step*: a 16th note, an integer; step 0 is the first step after the count-in, count-in
  steps are negative;
- *beat*: a quarter note (4 steps), as a float where fractional.

The tempo map is piecewise constant. A tempo change is applied at a *beat boundary* at or
after the first step the generator has not committed yet, so notes already scheduled
never move. Within a segment, ``step_time(k) = seg.sample + round((k - seg.step) *
samples_per_step)``: exact integers, strictly increasing (a step is at least 3000 samples
even at 240 BPM and 48 kHz), and a new segment starts exactly where the old one put that
step, so there is no glitch at the join.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.tokens import METERS as MODEL_METERS
from models.tokens import STEPS_PER_BEAT, bar_steps

# The band's meters. The model knows 4/4, 3/4 and 6/8 (``models.tokens.METERS``); a 12/8
# bar is two 6/8 bars to it (``model_meter``), so 12/8 plays with the shipped checkpoint.
METERS = (*MODEL_METERS, "12/8")
COMPOUND = ("6/8", "12/8")

MIN_BPM = 40.0
MAX_BPM = 240.0
# what the band plays in when nobody chose (the app, the command line and a render read these
# through liveband.config); DEFAULT_TEMPO is also a recording's tempo (no beat grid)
DEFAULT_TEMPO = 100.0
DEFAULT_METER = "4/4"


def check_tempo(bpm: float) -> float:
    """bpm as float; ValueError with a clear message when it is not 40-240."""
    try:
        v = float(bpm)
    except (TypeError, ValueError):
        raise ValueError(f"tempo must be a number of BPM, got {bpm!r}") from None
    if not math.isfinite(v) or not MIN_BPM <= v <= MAX_BPM:
        raise ValueError(f"tempo must be {MIN_BPM:g}-{MAX_BPM:g} BPM, got {bpm}")
    return v


def beat_steps(meter: str) -> int:
    """Steps in one felt beat: a dotted quarter (6) in 6/8 and 12/8, a quarter (4) otherwise."""
    return 6 if meter in COMPOUND else STEPS_PER_BEAT


def model_meter(meter: str) -> str:
    """The meter the model conditions on: 6/8 for 12/8 (its bar is two of the model's)."""
    return "6/8" if meter == "12/8" else meter


@dataclass(frozen=True)
class TempoSegment:
    step: int  # first step of the segment
    sample: int  # its exact time on the audio clock
    bpm: float  # quarter notes per minute
    samples_per_step: float


class Clock:
    """Tempo map + meter + count-in on one sample rate.

    Thread: ``set_tempo`` is called by one thread at a time (the generator worker live,
    the render loop offline). The readers may be called from any thread: the segment
    list is an immutable tuple replaced in one assignment.
    """

    def __init__(
        self,
        sample_rate: int,
        bpm: float,
        meter: str = "4/4",
        count_in_bars: int = 0,
        start_sample: int = 0,
        first_step: int | None = None,
    ) -> None:
        """``first_step``: the band's first step when it joins mid-bar (an external clock's
        song position, engine.sync); None: the count-in's first step (a bar line)."""
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        if meter not in METERS:
            raise ValueError(f"meter must be one of {', '.join(METERS)}, got {meter!r}")
        if not 0 <= count_in_bars <= 4:
            raise ValueError(f"count-in must be 0-4 bars, got {count_in_bars}")
        bpm = check_tempo(bpm)
        self.sample_rate = int(sample_rate)
        self.meter = meter
        self.bar_steps = bar_steps(meter)
        self.beat_steps = beat_steps(meter)
        self.count_in_bars = count_in_bars
        self.first_step = -count_in_bars * self.bar_steps if first_step is None else int(first_step)
        self._segments: tuple[TempoSegment, ...] = (
            TempoSegment(self.first_step, int(start_sample), bpm, self._sps(bpm)),
        )

    def _sps(self, bpm: float) -> float:
        return self.sample_rate * 60.0 / (bpm * STEPS_PER_BEAT)

    # -- tempo map -------------------------------------------------------------
    @property
    def segments(self) -> tuple[TempoSegment, ...]:
        return self._segments

    def tempo_at_step(self, step: int) -> float:
        return self._segment_for_step(step).bpm

    def next_beat_boundary(self, step: int) -> int:
        """The first beat boundary (a multiple of ``beat_steps`` from step 0) >= step."""
        b = self.beat_steps
        return -((-step) // b) * b

    def set_tempo(self, bpm: float, from_step: int) -> int:
        """Change the tempo at the first beat boundary >= ``from_step`` (pass the first
        uncommitted step). A later change at or before a pending one replaces it.
        Returns the step where the new tempo starts. ValueError for an absurd tempo."""
        bpm = check_tempo(bpm)
        at = max(self.next_beat_boundary(from_step), self.first_step)
        sample = self.step_time(at)
        kept = tuple(s for s in self._segments if s.step < at)
        if kept and kept[-1].bpm == bpm:
            self._segments = kept
        else:
            self._segments = kept + (TempoSegment(at, sample, bpm, self._sps(bpm)),)
        return at

    # -- conversions -----------------------------------------------------------
    def _segment_for_step(self, step: float) -> TempoSegment:
        segs = self._segments
        for seg in reversed(segs):
            if seg.step <= step:
                return seg
        return segs[0]

    def step_time(self, step: int) -> int:
        """Audio-clock sample at which 16th step ``step`` starts (exact integer)."""
        seg = self._segment_for_step(step)
        return seg.sample + int(math.floor((step - seg.step) * seg.samples_per_step + 0.5))

    def beat_to_sample(self, beats: float) -> int:
        """Sample of a (fractional) quarter-note position counted from step 0."""
        s = beats * STEPS_PER_BEAT
        seg = self._segment_for_step(s)
        return seg.sample + int(math.floor((s - seg.step) * seg.samples_per_step + 0.5))

    def step_at(self, sample: int) -> int:
        """The step sounding at ``sample``: the largest k with step_time(k) <= sample."""
        segs = self._segments
        seg = segs[0]
        for s in reversed(segs):
            if s.sample <= sample:
                seg = s
                break
        k = seg.step + int(math.floor((sample - seg.sample) / seg.samples_per_step))
        # rounding in step_time can put the boundary one sample either side
        while self.step_time(k + 1) <= sample:
            k += 1
        while self.step_time(k) > sample:
            k -= 1
        return k

    def sample_to_steps(self, sample: int) -> float:
        """Fractional step position of ``sample`` (for MIDI export and display)."""
        k = self.step_at(sample)
        t0, t1 = self.step_time(k), self.step_time(k + 1)
        return k + (sample - t0) / (t1 - t0)

    def sample_to_beats(self, sample: int) -> float:
        return self.sample_to_steps(sample) / STEPS_PER_BEAT

    def step_in_bar(self, step: int) -> int:
        return step % self.bar_steps

    def bar_of(self, step: int) -> int:
        return step // self.bar_steps

    def seconds(self, samples: int) -> float:
        return samples / self.sample_rate


class TempoFollower:
    """Estimates the player's tempo from onset times (MIDI or hummed notes).

    Each inter-onset interval is read as the nearest of a few plausible note values
    (an eighth to a half note, dotted included) of the *current* beat; the median of the
    implied beat lengths, smoothed, is the estimate. Intervals that fit no value within
    ``tolerance`` (ornaments, pauses) are ignored, so a few odd notes do not yank the band.

    Thread: ``add_onset`` and ``estimate`` are called by one thread (the generator worker).
    """

    MULTIPLES = (0.5, 0.75, 1.0, 1.5, 2.0)

    def __init__(
        self,
        sample_rate: int,
        bpm: float,
        history: int = 12,
        tolerance: float = 0.18,
        smoothing: float = 0.5,
        min_intervals: int = 4,
    ) -> None:
        self.sample_rate = sample_rate
        self.bpm = check_tempo(bpm)
        self.history = history
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.min_intervals = min_intervals
        self._onsets: list[int] = []

    def add_onset(self, sample: int) -> None:
        if self._onsets and sample <= self._onsets[-1]:
            return
        self._onsets.append(int(sample))
        del self._onsets[: -self.history - 1]

    def estimate(self) -> float | None:
        """Smoothed tempo in BPM, or None while there is too little evidence."""
        if len(self._onsets) < self.min_intervals + 1:
            return None
        beat = self.sample_rate * 60.0 / self.bpm
        implied = []
        for a, b in zip(self._onsets, self._onsets[1:]):
            ratio = (b - a) / beat
            m = min(self.MULTIPLES, key=lambda x: abs(ratio / x - 1.0))
            if abs(ratio / m - 1.0) <= self.tolerance:
                implied.append((b - a) / m)
        if len(implied) < self.min_intervals:
            return None
        implied.sort()
        med = implied[len(implied) // 2]
        bpm = self.sample_rate * 60.0 / med
        bpm = min(MAX_BPM, max(MIN_BPM, bpm))
        self.bpm = (1 - self.smoothing) * self.bpm + self.smoothing * bpm
        return self.bpm

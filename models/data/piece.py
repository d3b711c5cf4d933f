"""The unit of training data: one song as a grid of multi-stream tokens.

A ``Piece`` is what every corpus loader returns and what training, evaluation and the
rule-based accompanist read. Its ``tokens`` hold one 16th-note frame per row, one
column per stream in ``models.tokens.STREAMS`` order (melody, chord, bass, tenor, alto).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.tokens import (
    CHORD,
    CHORD_VOCAB,
    MAX_BAR_STEPS,
    METERS,
    NUM_STREAMS,
    STYLES,
    VOCAB_SIZES,
    bar_steps,
)


@dataclass(frozen=True)
class Piece:
    """One song on the 16th grid.

    name: unique id, e.g. "pop909/001", "nottingham/ashover1", "jsb/train/12".
    style: one of ``models.tokens.STYLES``.
    meter: one of ``models.tokens.METERS``.
    tokens: (T, NUM_STREAMS) int16, streams per ``models.tokens.STREAMS``.
    step_in_bar: (T,) int8, metric position of each 16th step (0 = downbeat),
        always ``< bar_steps(meter)``.
    """

    name: str
    style: str
    meter: str
    tokens: np.ndarray
    step_in_bar: np.ndarray

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"{self.name}: unknown style {self.style!r}")
        if self.meter not in METERS:
            raise ValueError(f"{self.name}: unsupported meter {self.meter!r}")
        t = self.tokens
        if t.ndim != 2 or t.shape[1] != NUM_STREAMS or t.dtype != np.int16:
            raise ValueError(f"{self.name}: tokens must be (T, {NUM_STREAMS}) int16, got {t.shape} {t.dtype}")
        if self.step_in_bar.shape != (t.shape[0],) or self.step_in_bar.dtype != np.int8:
            raise ValueError(f"{self.name}: step_in_bar must be ({t.shape[0]},) int8")
        if t.size and (t.min() < 0 or any(int(t[:, s].max()) >= VOCAB_SIZES[s] for s in range(NUM_STREAMS))):
            raise ValueError(f"{self.name}: token id outside its stream's vocabulary")
        assert CHORD_VOCAB == VOCAB_SIZES[CHORD]
        if t.shape[0] and (
            self.step_in_bar.min() < 0 or self.step_in_bar.max() >= min(bar_steps(self.meter), MAX_BAR_STEPS)
        ):
            raise ValueError(f"{self.name}: step_in_bar outside the bar of {self.meter}")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True)
class LoadResult:
    """What a corpus loader returns: the good pieces, and every skipped song with why.

    A loader never raises for one bad song (corrupt MIDI, no MELODY track, unsupported
    meter...): the song lands in ``skipped`` as ``(name, reason)``.
    """

    pieces: list[Piece] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def skipped_reasons(self) -> dict[str, int]:
        """How many songs were skipped for each reason (reason text up to the first ':')."""
        out: dict[str, int] = {}
        for _, reason in self.skipped:
            key = reason.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out

"""The common shape of a pitch tracker: one 10 ms hop of 16 kHz audio in, (f0, confidence) out.

Every tracker runs at ``TRACKER_RATE`` with a hop of ``HOP`` samples; the microphone and
file readers resample to it first. ``process`` is the streaming call (one hop), ``batch``
runs a whole signal and returns exactly what the same hops fed one by one would
(frame i is the estimate after hop i has arrived), so offline transcription and live
tracking see the same numbers.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

TRACKER_RATE = 16000  # Hz: CREPE's rate; PESTO's CQT is built for it too
HOP = 160  # samples: 10 ms
TRACKERS = ("pesto", "crepe")


class PitchTracker(Protocol):
    """Thread: one thread at a time (the pitch worker live, the caller offline)."""

    name: str
    # How far, in tracker samples, the centre of what a frame "hears" lies before the
    # newest sample of the hop that produced it (for placing events in time).
    delay_samples: int

    def reset(self) -> None:
        """Forget all audio history (a new take)."""

    def process(self, hop: np.ndarray) -> tuple[float, float]:
        """hop: (HOP,) float32 at TRACKER_RATE -> (f0 in Hz, confidence 0-1)."""

    def batch(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """audio: (N,) float32 at TRACKER_RATE -> f0 (N // HOP,), confidence (N // HOP,),
        equal to feeding the hops to ``process`` from a reset state."""


def make_tracker(name: str, **kw) -> PitchTracker:
    """'pesto' (streaming CQT + PESTO, fastest) or 'crepe' (CREPE tiny; ``capacity='full'``)."""
    if name == "pesto":
        from engine.pitch.pesto import PestoTracker

        return PestoTracker(**kw)
    if name == "crepe":
        from engine.pitch.crepe import CrepeTracker

        return CrepeTracker(**kw)
    raise ValueError(f"unknown pitch tracker {name!r}; choose one of {', '.join(TRACKERS)}")


def hz_to_midi(f0: np.ndarray | float) -> np.ndarray | float:
    return 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-6) / 440.0)


def midi_to_hz(p: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(p) - 69.0) / 12.0)

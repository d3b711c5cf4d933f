"""The runtime contract between the model room and the engine.

The engine never sees tensors, patterns or caches: it asks an ``Accompanist`` for
the band's next frame, time step by time step, and supplies the melody it has
heard. Everything below speaks numpy so that torch and onnxruntime backends are
interchangeable.

Online causality: the frame for time ``t`` is computed from the melody up to
``t - lookahead`` only. ``advance`` therefore takes the melody token of time
``t - lookahead`` (``REST`` while ``t - lookahead < 0``).

An *offline* accompanist (``lookahead <= 0``: it hears ``-lookahead`` steps of the
future melody; render and play-along of a file, never live) also needs the melody of
times ``0 .. -lookahead - 1``, which no ``advance`` carries: ``prime_melody`` gives it
right after ``reset``.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

# (stream index, logits (vocab,) float32 for that stream) -> chosen token id.
# The engine passes one that applies temperature / density / harmony-follow.
Sampler = Callable[[int, np.ndarray], int]

# How samplers decode note streams (``liveband eval`` and the engine alike): a note
# stream's token mixes two choices, whether to strike (onset / hold / rest) and which
# pitch. One temperature for both either keeps the rhythm alive and scatters the pitches
# over the long tail of 128 notes, or sharpens the pitches and starves the rhythm (at 0.5
# almost every step is a hold). So the strike is drawn at the temperature and the pitch,
# given a strike, at this share of it (nearly the most likely pitch: the voices then sit
# in the band's own chord ~92 % of the time instead of ~87 %); the chord label is drawn at
# its own share (a band that changes chord on a whim sounds lost). Both were chosen on 40
# POP909 *training* songs (model card), never on the songs `liveband eval` reports.
PITCH_TEMPERATURE_SHARE = 0.055
CHORD_TEMPERATURE_SHARE = 0.28
# The live engine's plan (the piano roll's tentative beat, ``PatternAccompanist.plan``):
# a greedy rollout of a beat every this many steps, in the slack after a commit; `liveband
# bench model` times each step with it, as the engine runs it.
PLAN_EVERY = 2


class StepModel(Protocol):
    """One position in, logits for the next position out, over a fixed-size cache.

    Thread: only the generator worker thread calls these.
    """

    num_streams: int
    window: int  # positions the cache holds (attention window)

    def reset(self) -> None:
        """Empty the cache; the next ``step`` is position 0."""

    def step(self, tokens: np.ndarray, meta: np.ndarray) -> np.ndarray:
        """tokens: (S,) int64, meta: (2,) int64 -> logits (S, MAX_VOCAB) float32
        for the next position; ids outside a stream's vocabulary are -inf."""

    def save_state(self) -> None:
        """Keep the cache (in buffers allocated once) for ``restore_state``: a rollout
        that is only looked at (the engine's plan), never committed."""

    def restore_state(self) -> None:
        """The cache exactly as the last ``save_state`` kept it."""


class Accompanist(Protocol):
    """Time-level streaming generation; hides the stream pattern.

    Thread: only the generator worker thread calls these.
    """

    lookahead: int  # d: the frame at t sees melody up to t - d

    def reset(self, style: str, meter: str) -> None:
        """Start a new piece; the next ``advance`` produces the frame for t = 0."""

    def advance(self, melody_token: int, step_in_bar: int, sampler: Sampler) -> np.ndarray:
        """Produce the accompaniment for the next time step t.

        melody_token: the melody stream token at time ``t - lookahead``.
        step_in_bar: metric position of time ``t`` (0 = downbeat).
        Returns (len(ACCOMP_STREAMS),) int64 tokens for (chord, bass, tenor, alto) at t.
        """


def prime_melody(acc: Accompanist, tokens: Sequence[int]) -> None:
    """After ``reset``: hand an offline accompanist (lookahead <= 0) the melody of times
    0 .. -lookahead - 1 (``tokens``, REST past the melody's end). A no-op for a live one."""
    need = max(0, -int(acc.lookahead))
    if len(tokens) != need:
        raise ValueError(
            f"an accompanist with lookahead {acc.lookahead} needs {need} melody tokens "
            f"before its first step, got {len(tokens)}"
        )
    if need:
        acc.prime_melody(tokens)  # type: ignore[attr-defined]

"""Melody recall: the band anticipates a passage it has heard before.

A live accompanist hears the melody only up to the step before the one it commits, so
left to itself it changes chord *after* the melody did: the harmony a listener hears
lags a beat behind (``harmony_late > harmony_now``). Songs repeat, though: the second
verse, the chorus, an AABB folk tune. A human accompanist who has heard a phrase once
plays the next chord for where the phrase is going, not where it was.

``MelodyRecall`` keeps the melody heard so far (the sounding pitch class per 16th, or
rest) and, after every step, looks for the most recent earlier passage whose last
``window`` steps match the last ``window`` steps just heard (at least ``threshold`` of
the steps equal, with some onsets in them), in any key: passages are compared relative
to the last pitch class each sounded, so a chorus sung a tone higher, or after a key
jump, is recalled too, and its forecast moved by the same interval. When there is one, what the melody did
*after* that passage is the forecast: ``forecast(ahead)`` gives the pitch classes it
sounded over ``horizon`` steps starting ``ahead`` steps after the last step heard. The
sampler biases the band's chord and note choices toward that forecast (see
``models.sampling``). Nothing is known about passages never heard before: no forecast.

Only the past is read, so the live band stays causal. Cost: each step's window shape is
kept as it is heard, so a search is one compare of the newest shape against the earlier
ones kept (``memory`` to twice that: up to ~65k int8 compares per step).

Thread: only the generator worker (through the sampler).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from models.contract import Accompanist
from models.tokens import ACCOMP_STREAMS, BASS, CHORD, HOLD, is_note_on, token_pitch

REST_PC = -1


class MelodyRecall:
    def __init__(
        self,
        window: int = 16,
        horizon: int = 4,
        threshold: float = 0.75,
        min_onsets: int = 3,
        memory: int = 2048,
        transposed: bool = True,
    ) -> None:
        if not (
            1 <= window
            and 1 <= horizon
            and 0.0 < threshold <= 1.0
            and min_onsets >= 0
            and memory >= 2 * (window + horizon)
        ):
            raise ValueError("MelodyRecall: window/horizon >= 1, 0 < threshold <= 1, memory >= 2 x (window + horizon)")
        self.window, self.horizon, self.threshold, self.min_onsets = window, horizon, threshold, min_onsets
        self.memory = memory
        self.transposed = transposed
        # twice the memory, so appending is a write and only every `memory` steps a copy
        self._pc = np.full(2 * memory, REST_PC, np.int16)  # sounding pitch class per step
        self._on = np.zeros(2 * memory, np.int8)  # 1 where a note starts
        self._last = np.full(2 * memory, REST_PC, np.int16)  # the last pitch class sounded up to each step
        # per step j, the window of pitch classes that ends at j relative to _last[j] (rest:
        # REST_PC), written once when step j is heard: the search then compares rows
        # instead of recomputing every candidate's shape each step
        self._rel = np.full((2 * memory if transposed else 0, window), REST_PC, np.int8)
        self._ones = np.ones(window, np.float32)  # counts a row's matches (a BLAS matvec)
        self._n = 0
        self._cur = REST_PC
        self._match: int | None = None  # index (in the buffer) of the matched passage's last step
        self._shift = 0  # semitones from the matched passage to now
        self._stale = False

    def reset(self) -> None:
        self._n, self._cur, self._match, self._stale = 0, REST_PC, None, False

    def observe(self, token: int) -> None:
        """The melody token of the next step (note-on / HOLD / REST); updates the match."""
        if is_note_on(token):
            self._cur = token_pitch(token) % 12
        elif token != HOLD:
            self._cur = REST_PC
        if self._n == self._pc.shape[0]:  # keep the last `memory` steps
            m = self.memory
            self._pc[:m] = self._pc[m:]
            self._on[:m] = self._on[m:]
            self._last[:m] = self._last[m:]
            if self.transposed:
                self._rel[:m] = self._rel[m:]
            self._n = m
        n = self._n
        self._pc[n] = self._cur
        self._last[n] = self._cur if self._cur >= 0 else (self._last[n - 1] if n else REST_PC)
        self._on[n] = 1 if is_note_on(token) else 0
        if self.transposed and n >= self.window - 1:
            seg = self._pc[n - self.window + 1 : n + 1]
            self._rel[n] = np.where(seg >= 0, (seg - self._last[n]) % 12, REST_PC)
        self._n = n + 1
        self._stale = True  # searched when a forecast is asked for

    def _find(self) -> int | None:
        n, w, hz = self._n, self.window, self.horizon
        # a candidate passage ends at j with its continuation (up to j + 1 + horizon) already heard
        last_j = n - 2 - hz
        if last_j < w - 1 or int(self._on[n - w : n].sum()) < self.min_onsets:
            return None
        if self.transposed and self._last[n - 1] >= 0:
            # compare melodic shapes: every window relative to the last pitch class it
            # sounded (a window that sounded none yet cannot match)
            same = (self._rel[w - 1 : last_j + 1] == self._rel[n - 1]).astype(np.float32) @ self._ones
            # in float64, as a mean of the matches would be: k / w at a threshold of k / w
            # must not round below it (in float32 7 / 10 < 0.7)
            score = same / np.float64(w) - (self._last[w - 1 : last_j + 1] < 0)
        else:
            win = sliding_window_view(self._pc[: last_j + 1], w)  # (candidates, w)
            score = (win == self._pc[n - w : n]).mean(axis=1)
        best = float(score.max())
        if best < self.threshold:
            return None
        j = int(np.flatnonzero(score == best)[-1]) + w - 1  # the most recent best
        self._shift = int(self._last[n - 1] - self._last[j]) % 12 if self.transposed and self._last[n - 1] >= 0 else 0
        return j

    def _matched_at(self) -> int | None:
        if self._stale:
            self._match, self._stale = self._find(), False
        return self._match

    @property
    def matched(self) -> bool:
        return self._matched_at() is not None

    def forecast(self, ahead: int) -> np.ndarray | None:
        """(12,) float32 weights in [0, 1] of the pitch classes the melody is expected to
        sound over the ``horizon`` steps that start ``ahead`` steps after the last one
        heard (ahead = 1: the very next step); None without a match or if it rests.
        A pitch class sounding for at least half as long as the most sounded one counts fully."""
        j = self._matched_at()
        if j is None or ahead < 1:
            return None
        a = j + ahead
        b = min(a + self.horizon, self._n)
        if a >= b:
            return None
        fut = self._pc[a:b]
        fut = fut[fut >= 0]
        if fut.size == 0:
            return None
        fut = (fut + self._shift) % 12
        w = np.bincount(fut, minlength=12).astype(np.float32)
        out: np.ndarray = np.minimum(w / (0.5 * float(w.max())), 1.0)
        return out


def recall_steps(accompanist: Accompanist) -> tuple[int, int] | None:
    """Steps (chord, voice) from the last melody step an accompanist is fed to the step
    whose chord / voice it draws in the same ``advance`` (``ControlledSampler.set_recall``);
    None for one that hears the melody ahead (offline) or has no stream pattern."""
    d = int(accompanist.lookahead)
    pattern = getattr(accompanist, "pattern", None)
    if d < 1 or pattern is None:
        return None
    off = pattern.offsets
    top = max(off[s] for s in ACCOMP_STREAMS)
    return d + top - off[CHORD], d + top - off[BASS]

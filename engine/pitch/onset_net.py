"""A small learned front end that names a sung note from its first 10-30 ms (streaming).

Why: the hand rules (``engine.pitch.segmenter``) wait for 2-3 hops of settled pitch
before they name a note, because a note's first readings are unsure (scoops, the
attack, PESTO's window that lags 28 ms): onset-to-note p50 ~40 ms, p95 ~75 ms on the sung
corpus. This net reads the newest audio every 5 ms and says which note is sounding, the
way a listener guesses a scoop's target before it lands; the segmenter announces its
guess provisionally and its own rules confirm, replace or withdraw it (``NoteSegmenter.hint``).

Input per 5 ms frame (``FrameFeatures``, 16 kHz audio):
- the normalised autocorrelation of the newest 10 ms and 20 ms (low-passed at 2 kHz, as
  ``HumTracker`` does) at lags on a 1/3-semitone grid from 60 to 1150 Hz (2 x N_BINS);
- the level (dBFS) of the newest 5, 10 and 20 ms, of the newest 10 ms low-passed, and the
  newest 10 ms against the loudest of the last second (a note's level, whatever the gain).
Network (``OnsetNet``): Linear + ReLU -> one GRU layer -> per frame a softmax over
"no note" and MIDI ``LOWEST``..``LOWEST + N_PITCHES - 1``, and an onset probability.
Trained by ``liveband.bench.onset_net_train`` on generated sung clips and hums from two
different voice synthesisers (seeds apart from the benches'); weights ship as
safetensors (nothing unpickled). ``HumTracker`` runs it by default.

Thread: one thread at a time (the pitch worker), like ``HumTracker``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter

SR = 16000
FRAME = 80  # 5 ms at 16 kHz
F_LO, F_HI = 60.0, 1150.0
BINS_PER_ST = 3
N_BINS = int(np.floor(12 * BINS_PER_ST * np.log2(F_HI / F_LO))) + 1
LAGS = SR / (F_LO * 2 ** (np.arange(N_BINS) / (12 * BINS_PER_ST)))  # fractional, ~266 .. ~14
TMIN, TMAX = int(np.floor(LAGS.min())), int(np.ceil(LAGS.max())) + 1
WINDOWS = (160, 320)
HIST = max(WINDOWS) + TMAX + 1
N_FEATURES = len(WINDOWS) * N_BINS + 5
LEVEL_FRAMES = 200  # the "loudest of the last second" for the relative level
LOWEST = 36  # class k >= 1 is MIDI LOWEST + k - 1
N_CLASSES = 62
_LAG_I0 = np.floor(LAGS - TMIN).astype(int)
_LAG_FRAC = (LAGS - TMIN - _LAG_I0).astype(np.float64)
WEIGHTS_PATH = Path(__file__).resolve().parent / "assets" / "onset_net.safetensors"


def _db(power: float) -> float:
    return float(10 * np.log10(power + 1e-12))


class FrameFeatures:
    """16 kHz audio in 80-sample frames -> (N_FEATURES,) float32 per frame."""

    def __init__(self) -> None:
        self._b, self._a = butter(2, 2000.0 / (SR / 2))
        self._ones = {w: np.ones(w) for w in WINDOWS}
        self.reset()

    def reset(self) -> None:
        self._lp = np.zeros(HIST, np.float64)
        self._raw = np.zeros(max(WINDOWS), np.float64)
        self._z = np.zeros(2)
        self._levels = np.full(LEVEL_FRAMES, -120.0)
        self._k = 0

    def push(self, frame: np.ndarray) -> np.ndarray:
        """frame: (FRAME,) 16 kHz samples -> features of the audio up to its end."""
        x = np.asarray(frame, np.float64)
        lp, self._z = lfilter(self._b, self._a, x, zi=self._z)
        self._lp[:-FRAME] = self._lp[FRAME:]
        self._lp[-FRAME:] = lp
        self._raw[:-FRAME] = self._raw[FRAME:]
        self._raw[-FRAME:] = x
        out = np.empty(N_FEATURES, np.float32)
        e = self._lp
        col = 0
        for w in WINDOWS:
            a = e[-w:]
            ea = float(a @ a)
            # the window against itself delayed by TMIN .. TMAX samples, and the delayed
            # windows' energies: each a direct sum (a running sum would cancel badly
            # beside silence, where the net was trained on exact values)
            seg = e[len(e) - w - TMAX : len(e) - TMIN]
            num = np.correlate(seg, a, "valid")[::-1]
            r = num / (np.sqrt(ea * np.convolve(seg * seg, self._ones[w], "valid")[::-1]) + 1e-12)
            out[col : col + N_BINS] = r[_LAG_I0] * (1 - _LAG_FRAC) + r[_LAG_I0 + 1] * _LAG_FRAC
            col += N_BINS
        raw = self._raw
        for w in (80, 160, 320):
            out[col] = (_db(float(raw[-w:] @ raw[-w:]) / w) + 60) / 30
            col += 1
        out[col] = (_db(float(e[-160:] @ e[-160:]) / 160) + 60) / 30
        col += 1
        lv = _db(float(raw[-160:] @ raw[-160:]) / 160)
        self._levels[self._k % LEVEL_FRAMES] = lv
        self._k += 1
        out[col] = (lv - float(self._levels.max())) / 30
        return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class OnsetNet:
    """The GRU, run one frame at a time in numpy. ``step`` -> (class probabilities
    (N_CLASSES,), onset probability)."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        g = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        try:
            self.w_in, self.b_in = g["inp.0.weight"], g["inp.0.bias"]
            self.w_ih, self.w_hh = g["gru.weight_ih_l0"], g["gru.weight_hh_l0"]
            self.b_ih, self.b_hh = g["gru.bias_ih_l0"], g["gru.bias_hh_l0"]
            self.w_cls, self.b_cls = g["cls.weight"], g["cls.bias"]
            self.w_on, self.b_on = g["ons.weight"][0], float(g["ons.bias"][0])
        except KeyError as e:
            raise ValueError(f"onset net weights lack {e}") from None
        h = self.w_hh.shape[1]
        if (
            self.w_in.shape[1] != N_FEATURES
            or self.w_ih.shape != (3 * h, self.w_in.shape[0])
            or self.w_cls.shape != (N_CLASSES, h)
        ):
            raise ValueError("onset net weights have the wrong shapes")
        self.hidden = h
        self.reset()

    @classmethod
    def load(cls, path: Path | None = None) -> OnsetNet:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        p = path or WEIGHTS_PATH
        try:
            return cls(load_file(str(p)))
        except (OSError, SafetensorError) as e:
            raise ValueError(f"cannot read onset net weights {p}: {e}") from None

    def reset(self) -> None:
        self.h = np.zeros(self.hidden)

    def step(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        z = np.maximum(self.w_in @ x + self.b_in, 0.0)
        gi = self.w_ih @ z + self.b_ih
        gh = self.w_hh @ self.h + self.b_hh
        n = self.hidden
        r = _sigmoid(gi[:n] + gh[:n])
        u = _sigmoid(gi[n : 2 * n] + gh[n : 2 * n])
        c = np.tanh(gi[2 * n :] + r * gh[2 * n :])
        self.h = (1 - u) * c + u * self.h
        logits = self.w_cls @ self.h + self.b_cls
        p = np.exp(logits - logits.max())
        return p / p.sum(), float(_sigmoid(np.array(self.w_on @ self.h + self.b_on)))


class NetNamer:
    """Turns the net's frames into note guesses: a MIDI pitch when a note is named.

    A note is named when no note is sounding (by the net's own account) and one pitch
    has at least ``on_prob`` for ``on_frames`` frames in a row; while one sounds, when
    another pitch has ``change_prob`` for ``change_frames`` frames (legato), or when the
    onset output rises through ``attack_prob`` again ``attack_min_frames`` or more after
    the last guess, with a pitch at ``on_prob`` (a re-articulation). "No note" at
    ``off_prob`` for ``off_frames`` frames ends the sounding note."""

    def __init__(
        self,
        on_prob: float = 0.95,
        on_frames: int = 1,
        change_prob: float = 0.99,
        change_frames: int = 2,
        attack_prob: float = 0.5,
        attack_min_frames: int = 8,
        off_prob: float = 0.5,
        off_frames: int = 2,
    ) -> None:
        self.on_prob, self.on_frames = on_prob, on_frames
        self.change_prob, self.change_frames = change_prob, change_frames
        self.attack_prob, self.attack_min_frames = attack_prob, attack_min_frames
        self.off_prob, self.off_frames = off_prob, off_frames
        self.reset()

    def reset(self) -> None:
        self.cur: int | None = None  # class index of the sounding note
        self.sounding = 0  # frames in a row, up to the latest, where "no note" is under off_prob
        self._count = 0
        self._last = -1
        self._off = 0
        self._change = 0
        self._since = 0
        self._armed = False  # the onset output has fallen since the last guess

    def step(self, p: np.ndarray, onset: float) -> int | None:
        """p: (N_CLASSES,), onset: probability -> the MIDI pitch named this frame, or None."""
        q = int(np.argmax(p[1:])) + 1
        pq = float(p[q])
        self.sounding = self.sounding + 1 if p[0] < self.off_prob else 0
        if onset < self.attack_prob / 2:
            self._armed = True
        if self.cur is None:
            self._count = self._count + 1 if pq >= self.on_prob and q == self._last else int(pq >= self.on_prob)
            self._last = q
            return self._name(q) if self._count >= self.on_frames else None
        self._since += 1
        self._off = self._off + 1 if p[0] >= self.off_prob else 0
        if self._off >= self.off_frames:
            self.cur, self._count, self._last = None, 0, -1
            return None
        self._change = self._change + 1 if q != self.cur and pq >= self.change_prob else 0
        if self._change >= self.change_frames:
            return self._name(q)
        if self._armed and onset >= self.attack_prob and self._since >= self.attack_min_frames and pq >= self.on_prob:
            return self._name(q)
        return None

    def _name(self, q: int) -> int:
        self.cur, self._since, self._change, self._off, self._count, self._armed = q, 0, 0, 0, 0, False
        return LOWEST + q - 1


class OnsetFrontEnd:
    """One stream's onset front end: ``FrameFeatures`` -> ``OnsetNet`` -> ``NetNamer``.
    Thread: one at a time (the pitch worker)."""

    def __init__(self, net: OnsetNet, namer: NetNamer | None = None) -> None:
        self.net = net
        self.features = FrameFeatures()
        self.namer = namer or NetNamer()

    def reset(self) -> None:
        self.net.reset()
        self.features.reset()
        self.namer.reset()

    def push(self, frame: np.ndarray) -> tuple[int, float, int] | None:
        """frame: (FRAME,) 16 kHz samples -> (MIDI pitch, its probability, frames the net
        has heard a note sounding, this one included) when the namer names a note at this
        frame's end, else None."""
        p, onset = self.net.step(self.features.push(frame))
        pitch = self.namer.step(p, onset)
        return None if pitch is None else (pitch, float(p[pitch - LOWEST + 1]), self.namer.sounding)

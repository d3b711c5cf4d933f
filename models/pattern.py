"""Stream interleaving patterns: where each (time, stream) cell of a token grid sits
in the model's sequence of positions, in the sense of MusicGen's codebook patterns.

A pattern places cell ``(t, s)`` at position ``pos(t, s) = K * (t + offset[s]) + slot[s]``:

- ``parallel``:  K = 1, every stream at its own time (one model call per frame; the
  streams of one frame are predicted independently given the past).
- ``delay``:     K = 1, stream ``s`` shifted right by ``delays[s]`` frames, so a later
  stream of frame t is predicted after (and conditioned on) the earlier ones.
- ``flattened``: K = S, one stream per position in a configurable order (S model calls
  per frame, full autoregression inside the frame).

The melody is placed so that an accompaniment cell of time t is predicted only from
melody cells of time <= t - lookahead (online causality): its offset is the smallest
one that satisfies this for every accompaniment stream. ``melody_lag()`` reports how
many frames behind the melody each stream effectively is (>= lookahead; a delay
pattern pays extra lag on its early streams).

A live model needs ``lookahead >= 1`` (the engine refuses anything else live). An
*offline* pattern (``lookahead <= 0``, an offline teacher for render and play-along of a
file) lets cell t see the melody up to ``t - lookahead``, i.e. ``-lookahead`` frames of
the future. Its melody would then sit before time 0, so every offset is moved right by
``shift`` frames; ``frame_of_position`` subtracts it again, so a position still carries
the metric position of the frame its earliest accompaniment stream is predicting
there, as in the online pattern it may be warm-started from.

The sequence the model reads is ``[BOS] + build(grid)[:-1]`` and the target of input
row i is pattern position i (see ``model_rows``), so ``build``/``revert`` are the
only places that know the layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.tokens import MELODY, NUM_STREAMS, PAD

KINDS = ("parallel", "delay", "flattened")
MIN_LOOKAHEAD = -64  # an offline pattern sees at most this many frames of future melody


@dataclass(frozen=True)
class Pattern:
    kind: str = "parallel"
    lookahead: int = 1
    # Per-stream frame delays of the accompaniment streams (index = models.tokens stream
    # index; the melody's entry is ignored and derived). Only used by "delay".
    delays: tuple[int, ...] = (0, 0, 1, 1, 1)
    # Order of the streams inside a frame; only used by "flattened".
    order: tuple[int, ...] = (1, 2, 3, 4, 0)
    num_streams: int = NUM_STREAMS
    offsets: tuple[int, ...] = field(init=False)
    slots: tuple[int, ...] = field(init=False)
    shift: int = field(init=False)  # frames every offset was moved right (offline patterns)

    def __post_init__(self) -> None:
        S = self.num_streams
        if self.kind not in KINDS:
            raise ValueError(f"pattern kind must be one of {KINDS}, got {self.kind!r}")
        if self.lookahead < MIN_LOOKAHEAD:
            raise ValueError(f"lookahead must be >= {MIN_LOOKAHEAD} steps, got {self.lookahead}")
        if self.kind == "delay":
            if len(self.delays) != S or min(self.delays) < 0:
                raise ValueError(f"delays must be {S} non-negative ints, got {self.delays}")
            offsets = list(self.delays)
        else:
            offsets = [0] * S
        if self.kind == "flattened":
            if sorted(self.order) != list(range(S)):
                raise ValueError(f"order must be a permutation of 0..{S - 1}, got {self.order}")
            slots = [0] * S
            for i, s in enumerate(self.order):
                slots[s] = i
        else:
            slots = [0] * S
        # Smallest melody offset that keeps every accompaniment cell (t, s) from seeing
        # melody later than t - lookahead: pos(t - d + 1, MEL) >= pos(t, s).
        accomp = [s for s in range(S) if s != MELODY]
        offsets[MELODY] = max(offsets[s] + self.lookahead - 1 + (slots[s] > slots[MELODY]) for s in accomp)
        shift = max(0, -offsets[MELODY])  # 0 for every online pattern (lookahead >= 1)
        offsets = [o + shift for o in offsets]
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "offsets", tuple(offsets))
        object.__setattr__(self, "slots", tuple(slots))

    # ------------------------------------------------------------------ geometry
    @property
    def online(self) -> bool:
        """Whether the pattern may run live: no accompaniment cell sees melody at or after its own time."""
        return self.lookahead >= 1

    @property
    def frame_size(self) -> int:
        """Positions per frame (K): 1, or S for the flattened pattern."""
        return self.num_streams if self.kind == "flattened" else 1

    def position(self, t: int, s: int) -> int:
        return self.frame_size * (t + self.offsets[s]) + self.slots[s]

    def num_positions(self, T: int) -> int:
        """Length P of the sequence that holds a grid of T frames."""
        return self.frame_size * (T + max(self.offsets))

    def cells_at(self, q: int) -> list[tuple[int, int]]:
        """(stream, time) cells at position q (time may be negative = before the start)."""
        K = self.frame_size
        frame, slot = divmod(q, K)
        return [(s, frame - self.offsets[s]) for s in range(self.num_streams) if self.slots[s] == slot]

    def frame_of_position(self, q: int) -> int:
        """The frame whose metric position conditions the prediction of position q
        (negative before the piece starts, for an offline pattern's first positions)."""
        return q // self.frame_size - self.shift

    def melody_lag(self) -> dict[int, int]:
        """For each accompaniment stream, t - (latest melody time visible when cell t is predicted)."""
        m = MELODY
        return {
            s: self.offsets[m] - self.offsets[s] + 1 - int(self.slots[s] > self.slots[m])
            for s in range(self.num_streams)
            if s != m
        }

    def calls_per_frame(self) -> int:
        return self.frame_size

    # ------------------------------------------------------------------ build / revert
    def _index(self, T: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(T)[:, None]
        pos = self.frame_size * (t + np.asarray(self.offsets)[None, :]) + np.asarray(self.slots)[None, :]
        return pos, np.broadcast_to(np.arange(self.num_streams)[None, :], pos.shape)

    def build(self, grid: np.ndarray, fill: int | float = PAD) -> np.ndarray:
        """grid: (T, S, *rest) -> sequence (P, S, *rest); cells with no grid value are ``fill``."""
        T, S = grid.shape[:2]
        if S != self.num_streams:
            raise ValueError(f"grid has {S} streams, pattern expects {self.num_streams}")
        out = np.full((self.num_positions(T), S, *grid.shape[2:]), fill, dtype=grid.dtype)
        pos, stream = self._index(T)
        out[pos, stream] = grid
        return out

    def revert(self, seq: np.ndarray, T: int) -> np.ndarray:
        """sequence (P, S, *rest) -> grid (T, S, *rest); exact inverse of ``build``."""
        if seq.shape[0] < self.num_positions(T):
            raise ValueError(f"sequence of {seq.shape[0]} positions is too short for {T} frames")
        pos, stream = self._index(T)
        grid: np.ndarray = seq[pos, stream]
        return grid

    def model_rows(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """grid (T, S) -> (inputs (P, S), targets (P, S)): input row 0 is BOS (all PAD),
        input row i is position i - 1, and its target is position i."""
        seq = self.build(grid)
        inputs = np.concatenate([np.full((1, seq.shape[1]), PAD, seq.dtype), seq[:-1]], axis=0)
        return inputs, seq

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lookahead": self.lookahead,
            "offsets": list(self.offsets),
            "slots": list(self.slots),
            "shift": self.shift,
            "calls_per_frame": self.calls_per_frame(),
            "melody_lag": {str(k): v for k, v in self.melody_lag().items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lookahead": self.lookahead,
            "delays": list(self.delays),
            "order": list(self.order),
            "num_streams": self.num_streams,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Pattern":
        return cls(
            kind=d["kind"],
            lookahead=int(d["lookahead"]),
            delays=tuple(d["delays"]),
            order=tuple(d["order"]),
            num_streams=int(d.get("num_streams", NUM_STREAMS)),
        )

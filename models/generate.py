"""Streaming generation: a torch ``StepModel`` over the fixed-size KV cache, and the
``PatternAccompanist`` that turns position-level steps into time-level
``Accompanist.advance`` calls for any stream pattern.

Thread: every object here belongs to one worker thread (the engine's generator).
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import numpy as np
import torch

from models.contract import Sampler, StepModel
from models.pattern import Pattern
from models.tokens import ACCOMP_STREAMS, MELODY, PAD, VOCAB_SIZES, bar_steps, metric_id, style_id
from models.transformer import KVCache, StepGraph, Transformer

log = logging.getLogger(__name__)


class TorchStepModel:
    """``models.contract.StepModel`` on torch (CPU or CUDA).

    The step graph is traced once (TorchScript) because eager dispatch of ~100 small ops
    dominates the per-step time of a small model; if tracing is unavailable, eager mode
    computes exactly the same function.
    """

    def __init__(self, model: Transformer, device: str | torch.device = "cpu", trace: bool = True):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.num_streams = model.cfg.num_streams
        self.window = model.cfg.window
        self.cache = KVCache(model.cfg, self.device)
        self._tokens = torch.zeros(self.num_streams, dtype=torch.long, device=self.device)
        self._meta = torch.zeros(2, dtype=torch.long, device=self.device)
        self._fn = self.model.step
        self._saved: tuple[torch.Tensor, ...] | None = None  # save_state's copy of the cache
        if trace:
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")
                    c = self.cache
                    self._fn = torch.jit.freeze(
                        torch.jit.trace(  # type: ignore[no-untyped-call]
                            StepGraph(self.model).eval(), (self._tokens, self._meta, c.k, c.v, c.pos, c.n)
                        ).eval()
                    )
            except Exception as exc:  # tracing is an optimisation only
                log.info("torch step graph not traced (%s); using eager mode", exc)

    def reset(self) -> None:
        self.cache.reset()

    @torch.no_grad()
    def save_state(self) -> None:
        """Keep the cache (into buffers allocated once) for ``restore_state``: a rollout
        that is only looked at, never committed."""
        c = self.cache
        if self._saved is None:
            self._saved = tuple(x.clone() for x in (c.k, c.v, c.pos, c.n))
        else:
            for dst, src in zip(self._saved, (c.k, c.v, c.pos, c.n)):
                dst.copy_(src)

    @torch.no_grad()
    def restore_state(self) -> None:
        """The cache as ``save_state`` kept it (in place: never re-bound)."""
        if self._saved is None:
            raise RuntimeError("restore_state without save_state")
        c = self.cache
        for dst, src in zip((c.k, c.v, c.pos, c.n), self._saved):
            dst.copy_(src)

    @torch.no_grad()
    def step(self, tokens: np.ndarray, meta: np.ndarray) -> np.ndarray:
        """tokens (S,) int64, meta (2,) int64 -> logits (S, MAX_VOCAB) float32."""
        self._tokens.copy_(torch.from_numpy(np.asarray(tokens, dtype=np.int64)))
        self._meta.copy_(torch.from_numpy(np.asarray(meta, dtype=np.int64)))
        c = self.cache
        logits, k, v, pos = self._fn(self._tokens, self._meta, c.k, c.v, c.pos, c.n)
        c.k.copy_(k)
        c.v.copy_(v)
        c.pos.copy_(pos)
        c.n.add_(1)
        return logits.float().cpu().numpy()


class PatternAccompanist:
    """``models.contract.Accompanist`` for any ``Pattern`` over any ``StepModel``.

    Keeps the grid cells it knows (melody it was given, accompaniment it sampled) for
    the last few frames, and feeds model positions as soon as all their cells are
    known, until every accompaniment cell of time t has been sampled. The pattern's
    construction guarantees that this never needs melody later than t - lookahead.
    """

    seed: int = 0  # kept for API stability (``LoadedModel.accompanist``); the sampler holds the randomness

    def __init__(self, step_model: StepModel, pattern: Pattern) -> None:
        self.step_model = step_model
        self.pattern = pattern
        self.lookahead = pattern.lookahead
        self._keep = max(pattern.offsets) + max(pattern.lookahead, 0) + 2  # frames of history to keep
        self.reset("pop", "4/4")

    def reset(self, style: str, meter: str) -> None:
        self._style = style_id(style)
        self._meter = meter
        self._bar = bar_steps(meter)
        self._known: dict[tuple[int, int], int] = {}
        self._t = 0
        self._row = 0
        self._tokens = np.zeros(self.pattern.num_streams, dtype=np.int64)
        self._meta = np.zeros(2, dtype=np.int64)
        self.current_cell: tuple[int, int] | None = None  # (time, stream) being sampled
        self.step_model.reset()

    def prime_melody(self, tokens: Sequence[int]) -> None:
        """Offline patterns only (see ``models.contract``): the melody of times
        0 .. -lookahead - 1, before the first ``advance``."""
        if self._t != 0 or len(tokens) != max(0, -self.lookahead):
            raise ValueError(f"prime_melody takes {max(0, -self.lookahead)} tokens, right after reset")
        for i, tok in enumerate(tokens):
            self._known[(i, MELODY)] = int(tok)

    @property
    def t(self) -> int:
        """The time step the next ``advance`` produces."""
        return self._t

    def plan(self, melody: Sequence[int], step_in_bar: int, sampler: Sampler) -> np.ndarray:
        """(len(melody), 4) frames of the next steps if the melody went on as ``melody``
        (the tokens those ``advance`` calls would get), drawn with ``sampler``; afterwards
        the accompanist (its cells and the step model's cache) is exactly as before, so a
        plan is only shown, never committed. Needs a step model with ``save_state``."""
        out = np.empty((len(melody), len(ACCOMP_STREAMS)), np.int64)
        saved = (dict(self._known), self._t, self._row, self.current_cell)
        self.step_model.save_state()
        try:
            for i, tok in enumerate(melody):
                out[i] = self.advance(int(tok), (step_in_bar + i) % self._bar, sampler)
        finally:
            self.step_model.restore_state()
            self._known, self._t, self._row, self.current_cell = saved
        return out

    def advance(self, melody_token: int, step_in_bar: int, sampler: Sampler) -> np.ndarray:
        t, d, pat = self._t, self.lookahead, self.pattern
        if t == 0 and d < 0 and (0, MELODY) not in self._known:
            raise ValueError("an offline accompanist needs prime_melody() after reset, before its first step")
        if t - d >= 0:
            self._known[(t - d, MELODY)] = int(melody_token)
        known = self._known
        while any((t, s) not in known for s in ACCOMP_STREAMS):
            row = self._row
            self._tokens.fill(PAD)
            if row > 0:
                for s, time in pat.cells_at(row - 1):
                    if time >= 0:
                        self._tokens[s] = known[(time, s)]
            frame = pat.frame_of_position(row)
            self._meta[0] = self._style
            self._meta[1] = metric_id(self._meter, (step_in_bar + frame - t) % self._bar)
            logits = self.step_model.step(self._tokens, self._meta)
            for s, time in pat.cells_at(row):
                if time >= 0 and s != MELODY:
                    self.current_cell = (time, s)
                    known[(time, s)] = int(sampler(s, logits[s, : VOCAB_SIZES[s]]))
            self._row += 1
        out = np.array([known[(t, s)] for s in ACCOMP_STREAMS], dtype=np.int64)
        for key in [k for k in known if k[0] < t - self._keep]:
            del known[key]
        self._t += 1
        return out

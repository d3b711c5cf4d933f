"""Training: single process, or many through ``torchrun`` (DistributedDataParallel).

Every random choice of step s on rank r (which crops, which transpositions, dropout)
comes from seeds derived from (seed, rank, s), so a resumed run continues exactly as
the uninterrupted one would. The run folder holds:

- ``state.safetensors``: model + optimizer tensors, step, RNG and config as metadata
  (resume point; written every ``ckpt_every`` steps, atomically);
- ``model.safetensors`` / ``best.safetensors``: latest / best-validation weights
  (loadable by ``models.runtime.load_model``);
- ``log.jsonl``: one JSON object per logged step and per validation.

Attention uses the model's window, i.e. exactly the cache the streaming step keeps.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from models.atomic import atomic_path
from models.checkpoint import CHECKPOINT_VERSION, CheckpointError, save_model
from models.pattern import Pattern
from models.runtime import piece_meta, target_mask
from models.tokens import (
    ACCOMP_STREAMS,
    CHORD,
    CHORD_BASE,
    HOLD,
    MELODY,
    NOTE_BASE,
    NUM_STREAMS,
    PAD,
    REST,
    STREAMS,
    STYLES,
)
from models.transformer import ModelConfig, Transformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 2000
    batch_size: int = 16  # crops per step per process
    crop_frames: int = 256  # frames (16ths) per crop
    lr: float = 2e-3
    min_lr_ratio: float = 0.1  # cosine decay to lr * this
    warmup: int = 100
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    # relative sampling weight of each style's pieces (within a style: by length)
    style_weights: tuple[tuple[str, float], ...] = (("pop", 0.55), ("folk", 0.3), ("chorale", 0.15))
    stream_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # loss weight per stream
    transpose: bool = True  # random transposition over all 12 keys
    # Exposure-bias remedy: this fraction of crops gets a span of its accompaniment
    # *history* (model inputs, never targets, never the melody) moved to a wrong key, so
    # the model learns to follow the melody back instead of copying its own past.
    corrupt_prob: float = 0.0
    # The free-running failure that remains after that: the right key but a stale or
    # wrong *chord*, kept for the whole bar because teacher forcing taught "chords
    # persist". This fraction of the annotated chord segments in every crop gets its
    # chord input (and the voices sounding it) replaced by the previous segment's chord or
    # a random other root, while the target stays the true chord: the model must learn
    # to leave a chord the melody contradicts, within the segment.
    segment_corrupt_prob: float = 0.0
    # A singer who jumps key (a modulation, a second verse a tone up): this fraction of
    # crops is moved, from a bar line after its first two bars on, melody and band alike,
    # by a random 1..6 semitones up or down. Teacher forcing alone never shows the model a
    # melody leaving the key of all the band's history, so it kept that key for 12-13
    # beats after a tritone jump (ReaLchords' perturbation; docs/data-and-eval.md).
    key_jump_prob: float = 0.0
    # What the band hears right after such a jump, playing on its own: its own history is
    # still in the old key (it has not followed yet), while the melody has moved. Teacher
    # forcing feeds the *moved* band from the jump on, so the model learned to follow its
    # own history there, not the melody, and took 4-5 beats to follow a tritone jump.
    # For a random 0..jump_lag_steps steps from the jump, the band's input streams keep
    # the old key while the targets move (the melody inputs move at once).
    jump_lag_steps: int = 0
    # ... and the loss weight of the band's targets there (the few cells where the model
    # must follow the melody against its own history; ~5 % of a crop's cells).
    jump_lag_weight: float = 1.0
    # Closer still to the live band: its history after the jump is neither the old key's
    # band nor the moved one but what *it* played. With own_band_passes > 0, the band's
    # inputs in the lag's frames are replaced by the model's own samples (at temperature
    # own_band_temperature), drawn in that many parallel passes, each conditioned on the
    # previous pass's samples (pass 1 on the lagging band); the targets stay the moved
    # band. On-policy states with the data's targets (DAgger-style), no reward to hack.
    own_band_passes: int = 0
    own_band_temperature: float = 1.0
    # ... and this fraction of the crops without a jump gets such a span of the band's own
    # samples too (from a random bar line, 0..jump_lag_steps frames): a band drifted from
    # the song's chords, taught to come back to them.
    own_band_prob: float = 0.0
    # ReaLchords' signal on those own draws: a policy-gradient term (this weight) that
    # rewards each chord the band drew there for holding the pitch class the melody sounds
    # at the chord's step (which the band has not heard yet when it draws it: anticipation),
    # against the batch's mean reward. The MLE term on the song's targets keeps it musical.
    own_band_reward: float = 0.0
    # ... counted only where the melody's pitch class at the chord's step differs from the
    # latest one the chord hears (its step - the pattern's melody lag): the reward is then
    # for anticipating the melody, never for echoing the note it holds.
    own_band_reward_new_only: bool = False
    # A player who gives only chords (the arranger: a chord hand, no melody): this fraction
    # of crops has its melody replaced by rests throughout, inputs and targets, while the
    # band's targets stay the song's. On-policy training alone taught the band that no
    # melody means next to nothing to play (4 bass/keys onsets over four chords, not 12).
    melody_rest_prob: float = 0.0
    init_from: str | None = None  # warm start from this model checkpoint (see ``train``)
    # Distillation from an offline teacher (ReaLchords): a model checkpoint that hears the
    # melody's future (lookahead <= 0). Its accompaniment distributions on the same crops
    # (clean history, teacher-forced) are soft targets: loss = MLE + distill_weight * KL(teacher
    # || this model) per accompaniment cell, at temperature distill_temperature.
    teacher: str | None = None
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    # On-policy distillation: the teacher reads the band history this model was trained on
    # (its own draws after a jump, the corrupted history), not the clean crop, so its soft
    # targets say what to play from where this model's own band stands.
    distill_on_policy: bool = False
    eval_every: int = 200
    eval_crops_per_style: int = 32
    ckpt_every: int = 50
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.crop_frames < 2:
            raise ValueError("steps, batch_size must be >= 1 and crop_frames >= 2")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")
        if not 0.0 <= self.corrupt_prob <= 1.0:
            raise ValueError(f"corrupt_prob must be in [0, 1], got {self.corrupt_prob}")
        if not 0.0 <= self.segment_corrupt_prob <= 1.0:
            raise ValueError(f"segment_corrupt_prob must be in [0, 1], got {self.segment_corrupt_prob}")
        if not 0.0 <= self.key_jump_prob <= 1.0:
            raise ValueError(f"key_jump_prob must be in [0, 1], got {self.key_jump_prob}")
        if self.jump_lag_steps < 0:
            raise ValueError(f"jump_lag_steps must be >= 0, got {self.jump_lag_steps}")
        if not 0 < self.jump_lag_weight < 100:
            raise ValueError(f"jump_lag_weight must be in (0, 100), got {self.jump_lag_weight}")
        if not 0 <= self.own_band_passes <= 16:
            raise ValueError(f"own_band_passes must be in 0..16, got {self.own_band_passes}")
        if self.own_band_passes and not self.jump_lag_steps:
            raise ValueError("own_band_passes needs jump_lag_steps > 0 (it replaces the lagging band)")
        if not 0.0 <= self.own_band_prob <= 1.0 or (self.own_band_prob and not self.own_band_passes):
            raise ValueError(f"own_band_prob must be in [0, 1] and needs own_band_passes, got {self.own_band_prob}")
        if not 0.0 <= self.own_band_reward <= 10.0 or (self.own_band_reward and not self.own_band_passes):
            raise ValueError(f"own_band_reward must be in [0, 10] and needs own_band_passes: {self.own_band_reward}")
        if not 0.0 <= self.melody_rest_prob <= 1.0:
            raise ValueError(f"melody_rest_prob must be in [0, 1], got {self.melody_rest_prob}")
        if not 0 < self.own_band_temperature <= 4:
            raise ValueError(f"own_band_temperature must be in (0, 4], got {self.own_band_temperature}")
        if self.distill_weight < 0 or self.distill_temperature <= 0:
            raise ValueError("distill_weight must be >= 0 and distill_temperature > 0")
        if self.distill_weight > 0 and not self.teacher:
            raise ValueError("distill_weight > 0 needs a teacher checkpoint")
        if self.distill_on_policy and not self.distill_weight > 0:
            raise ValueError("distill_on_policy needs distill_weight > 0")
        if len(self.stream_weights) != NUM_STREAMS:
            raise ValueError(f"stream_weights needs {NUM_STREAMS} values")
        for s, w in self.style_weights:
            if s not in STYLES or w < 0:
                raise ValueError(f"bad style weight {s}={w}")

    def to_json(self) -> str:
        d = asdict(self)
        d["model"] = json.loads(self.model.to_json())
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        m = dict(d.pop("model", {}))
        if "pattern" in m:
            m["pattern"] = Pattern.from_dict({**Pattern().to_dict(), **m["pattern"]})
        if "vocab_sizes" in m:
            m["vocab_sizes"] = tuple(m["vocab_sizes"])
        if "style_weights" in d:
            sw = d["style_weights"]
            d["style_weights"] = tuple((k, float(v)) for k, v in (sw.items() if isinstance(sw, dict) else sw))
        if "stream_weights" in d:
            d["stream_weights"] = tuple(d["stream_weights"])
        return cls(model=ModelConfig(**m), **d)


# ---------------------------------------------------------------------------- batches
class Batcher:
    """Random bar-aligned crops of a piece list, as model rows (inputs, meta, targets,
    per-target loss weights)."""

    def __init__(self, pieces: list[Any], cfg: TrainConfig, teacher_pattern: Pattern | None = None):
        self.cfg = cfg
        self.pattern = cfg.model.pattern
        self.teacher_pattern = teacher_pattern  # also build the teacher's rows of each crop
        self.pieces = [p for p in pieces if len(p) >= 2]
        if not self.pieces:
            raise ValueError("no training pieces (every piece is empty or was skipped)")
        weights = dict(cfg.style_weights)
        by_style: dict[str, list[int]] = {}
        for i, p in enumerate(self.pieces):
            by_style.setdefault(p.style, []).append(i)
        probs = np.zeros(len(self.pieces))
        total_w = sum(weights.get(s, 0.0) for s in by_style) or 1.0
        for s, idx in by_style.items():
            lens = np.array([len(self.pieces[i]) for i in idx], dtype=np.float64)
            w = weights.get(s, 0.0) / total_w if total_w else 1.0 / len(by_style)
            probs[idx] = w * lens / lens.sum()
        if probs.sum() <= 0:  # no weighted style present: sample by length
            probs = np.array([len(p) for p in self.pieces], dtype=np.float64)
        self.probs = probs / probs.sum()
        self.downbeats = [np.flatnonzero(p.step_in_bar == 0) for p in self.pieces]
        self.rows = self.pattern.num_positions(cfg.crop_frames)

    def crop(self, rng: np.random.Generator, i: int, transpose: bool) -> tuple[Any, tuple[np.ndarray, int, int] | None]:
        """A random bar-aligned crop of piece ``i`` (moved to a random key and, with
        ``key_jump_prob``, jumping key; with ``melody_rest_prob``, its melody silenced)
        -> (crop, None or, when its band lags a jump, (the crop before the jump's tokens,
        jump frame, lag steps) for ``rows_of``)."""
        piece, lag = self._crop(rng, i, transpose)
        if transpose and self.cfg.melody_rest_prob > 0 and rng.random() < self.cfg.melody_rest_prob:
            piece = without_melody(piece)
        return piece, lag

    def _crop(
        self, rng: np.random.Generator, i: int, transpose: bool
    ) -> tuple[Any, tuple[np.ndarray, int, int] | None]:
        from models.data import Piece
        from models.data import transpose as transpose_piece

        p = self.pieces[i]
        T = self.cfg.crop_frames
        starts = self.downbeats[i]
        starts = starts[starts <= max(0, len(p) - T // 2)]
        a = int(rng.choice(starts)) if len(starts) else 0
        piece = Piece(p.name, p.style, p.meter, p.tokens[a : a + T], p.step_in_bar[a : a + T])
        if transpose:
            k = int(rng.integers(-6, 6))
            moved = transpose_piece(piece, k)
            piece = moved if moved is not None else piece
            if self.cfg.key_jump_prob > 0 and rng.random() < self.cfg.key_jump_prob:
                before = piece
                piece, bar = key_jump(piece, rng)
                if bar is not None and self.cfg.jump_lag_steps > 0:
                    lag = int(rng.integers(0, self.cfg.jump_lag_steps + 1))
                    return piece, (np.asarray(before.tokens), bar, lag)
            elif self.cfg.own_band_prob > 0 and rng.random() < self.cfg.own_band_prob:
                bars = np.flatnonzero(np.asarray(piece.step_in_bar) == 0)[1:-1]
                if len(bars):  # no jump: the "old key" is the piece itself
                    lag = int(rng.integers(0, self.cfg.jump_lag_steps + 1))
                    return piece, (np.asarray(piece.tokens), int(rng.choice(bars)), lag)
        return piece, None

    def rows_of(
        self, piece: Any, pattern: Pattern | None = None, lag: tuple[np.ndarray, int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """piece -> inputs (R, S), meta (R, 2), targets (R, S), loss weights (R, S) float32,
        padded to R rows (the pattern's positions for a whole crop; default: the model's
        pattern). lag: (tokens before a key jump, its frame, steps): the band's inputs
        lag the jump (``lagging_band``) and its targets there weigh ``jump_lag_weight``."""
        pattern = pattern or self.pattern
        inputs, targets = pattern.model_rows(np.asarray(piece.tokens, dtype=np.int64))
        cell_w: np.ndarray = np.ones(targets.shape, np.float32)
        if lag is not None:
            before, bar, steps = lag
            inputs = pattern.model_rows(lagging_band(before, piece.tokens, bar, steps))[0]
            w = np.ones(np.asarray(piece.tokens).shape, np.float32)
            w[bar : bar + steps, list(ACCOMP_STREAMS)] = self.cfg.jump_lag_weight
            cell_w = pattern.build(w, fill=1.0)
        meta = piece_meta(pattern, piece.style, piece.meter, np.asarray(piece.step_in_bar), len(inputs))
        n = len(inputs)
        R = pattern.num_positions(self.cfg.crop_frames)
        pad = R - n
        if pad > 0:
            inputs = np.concatenate([inputs, np.full((pad, inputs.shape[1]), PAD, np.int64)])
            targets = np.concatenate([targets, np.full((pad, targets.shape[1]), PAD, np.int64)])
            cell_w = np.concatenate([cell_w, np.ones((pad, cell_w.shape[1]), np.float32)])
            meta = np.concatenate([meta, np.repeat(meta[-1:], pad, axis=0)])
        return inputs[:R], meta[:R], targets[:R], cell_w[:R]

    def melody_at_chord(self, piece: Any) -> np.ndarray:
        """(R,) int64: for each row, the pitch class the melody sounds at the frame of the
        chord cell the row predicts (-1: a rest, or no chord cell there)."""
        mel = np.asarray(piece.tokens)[:, MELODY].astype(np.int64)
        pc = np.full(len(mel), -1, np.int64)
        cur = -1
        for t, tok in enumerate(mel):  # a held note sounds on; a rest ends it
            cur = (int(tok) - NOTE_BASE) % 12 if tok >= NOTE_BASE else (cur if tok == HOLD else -1)
            pc[t] = cur
        grid = np.full((len(mel), NUM_STREAMS), -1, np.int64)
        grid[:, CHORD] = pc
        if self.cfg.own_band_reward_new_only:
            lag = self.pattern.melody_lag()[CHORD]
            heard = np.concatenate([np.full(lag, -2, np.int64), pc[:-lag]]) if lag > 0 else pc
            grid[:, CHORD] = np.where(pc == heard[: len(pc)], -1, pc)
        seq = self.pattern.build(grid, fill=-1)[:, CHORD]
        out = np.full(self.rows, -1, np.int64)
        out[: min(self.rows, len(seq))] = seq[: self.rows]
        return out

    def batch(self, rng: np.random.Generator, size: int, transpose: bool = True) -> tuple[torch.Tensor, ...]:
        """(inputs (B, R, S), meta (B, R, 2), targets (B, R, S), loss weights (B, R, S),
        own-band input cells (B, R, S) bool: the band's inputs of a lag after a key jump,
        the melody's pitch class at each row's chord frame (B, R) int64 (-1: none),
        [teacher inputs, teacher meta])."""
        idx = rng.choice(len(self.pieces), size=size, p=self.probs)
        cropped = [self.crop(rng, int(i), transpose) for i in idx]
        crops = [c for c, _ in cropped]
        rows = [self.rows_of(c, lag=g) for c, g in cropped]
        if transpose and self.cfg.corrupt_prob > 0:
            for inputs, *_ in rows:
                if rng.random() < self.cfg.corrupt_prob:
                    corrupt_history(inputs, rng)
        if transpose and self.cfg.segment_corrupt_prob > 0:
            for inputs, *_ in rows:
                corrupt_chord_segments(inputs, rng, self.cfg.segment_corrupt_prob, self.pattern)
        out = tuple(torch.from_numpy(np.stack(x)) for x in zip(*rows))
        own = np.zeros((len(rows), self.rows, NUM_STREAMS), bool)
        for i, (_, g) in enumerate(cropped):
            if g is not None:
                own[i] = own_band_cells(self.pattern, self.cfg.crop_frames, g[1], g[2])
        out += (torch.from_numpy(own), torch.from_numpy(np.stack([self.melody_at_chord(c) for c in crops])))
        if self.teacher_pattern is not None:  # the teacher reads the clean crops
            t_rows = [self.rows_of(c, self.teacher_pattern) for c in crops]
            out += tuple(torch.from_numpy(np.stack(x)) for x in zip(*t_rows))[:2]
        return out


def step_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The generator of every random choice of ``step`` on ``rank``; its first draw seeds
    torch (dropout, own-band samples), the rest make the step's batch."""
    return np.random.default_rng([seed, rank, step])


class BatchStream(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """The batches of steps ``start``, ``start + 1``, ... made by DataLoader workers, each
    exactly as the training loop makes it in process (same seeds), so ``workers`` changes
    the speed of a run, never its numbers. Worker w of n makes steps start + w, + w + n, ...;
    the DataLoader hands them back in step order. Why: on a GPU the crops (numpy, ~1.5 ms
    each) are most of a step's time."""

    def __init__(self, batcher: Batcher, cfg: TrainConfig, rank: int, start: int):
        self.batcher, self.cfg, self.rank, self.start = batcher, cfg, rank, start

    def __iter__(self) -> Any:
        info = torch.utils.data.get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.start + w
        while step < self.cfg.steps:
            rng = step_rng(self.cfg.seed, self.rank, step)
            rng.integers(2**62)  # the loop's torch seed
            yield self.batcher.batch(rng, self.cfg.batch_size, self.cfg.transpose)
            step += n


def key_jump(piece: Any, rng: np.random.Generator) -> tuple[Any, int | None]:
    """(the piece with everything from a random bar line after its first two bars moved by
    1..6 semitones up or down (melody, chords and voices alike: the targets follow the
    jump), the frame it jumps at); unchanged and None when it has no such bar line or a
    pitch would leave 0..127."""
    from models.data import Piece
    from models.data import transpose as transpose_piece

    bars = np.flatnonzero(np.asarray(piece.step_in_bar) == 0)
    bars = bars[2:-1]  # two bars of the old key first; a jump on the last bar teaches nothing
    if not len(bars):
        return piece, None
    b = int(rng.choice(bars))
    k = int(rng.integers(1, 7)) * (1 if rng.random() < 0.5 else -1)
    tail = Piece(piece.name, piece.style, piece.meter, piece.tokens[b:], piece.step_in_bar[b:])
    moved = transpose_piece(tail, k)
    if moved is None:
        return piece, None
    tokens = np.concatenate([np.asarray(piece.tokens)[:b], np.asarray(moved.tokens)])
    out = Piece(piece.name, piece.style, piece.meter, tokens.astype(np.asarray(piece.tokens).dtype), piece.step_in_bar)
    return out, b


def without_melody(piece: Any) -> Any:
    """``piece`` with its melody stream all rests (the band's streams untouched): what
    the model hears from a player who gives only chords."""
    tokens = np.array(piece.tokens, copy=True)
    tokens[:, MELODY] = REST
    return replace(piece, tokens=tokens)


def lagging_band(before: np.ndarray, jumped: np.ndarray, bar: int, lag: int) -> np.ndarray:
    """(T, S) grid: ``jumped`` with the band's streams (chord, bass, tenor, alto) in frames
    ``bar .. bar + lag - 1`` taken from ``before`` (the crop before its jump): a band that
    has not yet followed the melody's jump. The melody is ``jumped``'s throughout."""
    grid = np.array(jumped, dtype=np.int64, copy=True)
    end = min(len(grid), bar + lag)
    grid[bar:end, list(ACCOMP_STREAMS)] = np.asarray(before)[bar:end, list(ACCOMP_STREAMS)]
    return grid


def own_band_cells(pattern: Pattern, T: int, bar: int, steps: int) -> np.ndarray:
    """(R, S) bool over the input rows of a T-frame crop: the band's cells of frames
    ``bar .. bar + steps - 1`` (input row i holds position i - 1), those ``own_band``
    replaces with the model's samples."""
    grid = np.zeros((T, pattern.num_streams), bool)
    grid[bar : min(T, bar + steps), list(ACCOMP_STREAMS)] = True
    seq = pattern.build(grid, fill=False)
    out = np.zeros_like(seq)
    out[1:] = seq[:-1]
    return out


@torch.no_grad()
def own_band(
    model: Transformer, inputs: torch.Tensor, meta: torch.Tensor, cells: torch.Tensor, passes: int, temperature: float
) -> torch.Tensor:
    """inputs (B, R, S) with the band's cells ``cells`` (B, R, S bool, see
    ``own_band_cells``) replaced by the model's own samples: ``passes`` parallel passes,
    each drawing every cell's token (at ``temperature``) given the previous pass's inputs;
    the sample for position i - 1 is input row i. Dropout is off while it samples."""
    if passes <= 0 or not bool(cells.any()):
        return inputs
    was_training = model.training
    model.eval()
    out = inputs.clone()
    for _ in range(passes):
        logits = model(out, meta).float() / temperature  # (B, R, S, V)
        drawn = torch.distributions.Categorical(logits=logits).sample()  # type: ignore[no-untyped-call]  # (B, R, S)
        nxt = torch.zeros_like(out)
        nxt[:, 1:] = drawn[:, :-1]
        out = torch.where(cells, nxt, out)
    model.train(was_training)
    return out


def own_chord_reward(
    logits: torch.Tensor, inputs: torch.Tensor, cells: torch.Tensor, melody_pc: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy-gradient loss on the band's own chord draws (see ``own_band_reward``):
    logits (B, R, S, V) of the pass that is trained, inputs (B, R, S) holding the draws
    (the draw for row r's target is input row r + 1), cells (B, R, S) the own-band input
    cells, melody_pc (B, R) the melody's pitch class at each row's chord frame (-1: none)
    -> (loss, mean reward) scalars; zero when no draw counts."""
    drawn = inputs[:, 1:, CHORD]  # (B, R - 1): the chord drawn for rows 0 .. R - 2
    mel = melody_pc[:, :-1]
    mask = cells[:, 1:, CHORD] & (mel >= 0) & (drawn >= CHORD_BASE)
    if not bool(mask.any()):
        zero = logits.new_zeros(())  # (logits hold -inf outside each vocabulary: no sum * 0)
        return zero, zero
    hit = _CHORD_HAS_PC.to(logits.device)[drawn.clamp(min=0), mel.clamp(min=0)]
    reward = torch.where(mask, hit, torch.zeros_like(hit))
    n = mask.sum()
    adv = torch.where(mask, reward - reward.sum() / n, torch.zeros_like(reward))
    logp = torch.log_softmax(logits[:, :-1, CHORD].float(), dim=-1).gather(-1, drawn.clamp(min=0)[..., None])[..., 0]
    loss = -(adv * torch.where(mask, logp, torch.zeros_like(logp))).sum() / n
    return loss, (reward.sum() / n).detach()


def _chord_pc_table() -> torch.Tensor:
    """(CHORD_VOCAB, 12) float: 1 where the chord token holds the pitch class."""
    from models.tokens import CHORD_VOCAB, chord_pitch_classes

    t = torch.zeros(CHORD_VOCAB, 12)
    for tok in range(CHORD_BASE, CHORD_VOCAB):
        for pc in chord_pitch_classes(tok):
            t[tok, pc] = 1.0
    return t


_CHORD_HAS_PC = _chord_pc_table()


def corrupt_history(inputs: np.ndarray, rng: np.random.Generator) -> None:
    """In place: over a random span of input rows, move the accompaniment streams' chord
    roots and note-ons by a random 1..11 semitones (as if the band had drifted to a wrong
    key). The melody column and the targets are untouched."""
    from models.tokens import ACCOMP_STREAMS, CHORD_BASE, NOTE_BASE, QUALITIES

    R = len(inputs)
    length = int(rng.integers(min(16, R), R + 1))
    a = int(rng.integers(0, R - length + 1))
    k = int(rng.integers(1, 12))
    span = inputs[a : a + length]
    for s in ACCOMP_STREAMS:
        col = span[:, s]
        if s == CHORD:
            on = col >= CHORD_BASE
            root, q = np.divmod(col[on] - CHORD_BASE, len(QUALITIES))
            col[on] = CHORD_BASE + ((root + k) % 12) * len(QUALITIES) + q
        else:
            on = col >= NOTE_BASE
            moved = col[on] + (k if k <= 6 else k - 12)
            col[on] = np.where((moved >= NOTE_BASE) & (moved < NOTE_BASE + 128), moved, col[on])


def chord_segments(chords: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) row ranges of runs of one real chord label (>= CHORD_BASE) in a column."""
    from models.tokens import CHORD_BASE

    c = np.asarray(chords)
    edges = np.flatnonzero(np.diff(c) != 0) + 1
    bounds = np.concatenate([[0], edges, [len(c)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if c[a] >= CHORD_BASE]


def corrupt_chord_segments(inputs: np.ndarray, rng: np.random.Generator, prob: float, pattern: Pattern) -> None:
    """In place: each chord segment of the input rows is, with probability ``prob``, given a
    wrong chord: half the time the previous segment's chord (a band that missed the
    change), else the same quality on a random other root. Note-ons of the voices sounding
    in that segment (their rows are shifted by the pattern's delays) move by the same root
    interval, so the corrupted history is self-consistent, as the band's own would be.
    The melody column and the targets are untouched. Needs a one-row-per-frame pattern
    (parallel or delay)."""
    from models.tokens import ACCOMP_STREAMS, CHORD_BASE, NOTE_BASE, QUALITIES

    if pattern.frame_size != 1:
        raise ValueError("chord-segment corruption needs a parallel or delay pattern")
    nq = len(QUALITIES)
    R = len(inputs)
    col = inputs[:, CHORD].copy()
    segs = chord_segments(col)
    for i, (a, b) in enumerate(segs):
        if rng.random() >= prob:
            continue
        root = (int(col[a]) - CHORD_BASE) // nq
        if i > 0 and segs[i - 1][1] == a and rng.random() < 0.5:
            new = int(col[a - 1])
        else:
            new = CHORD_BASE + ((root + int(rng.integers(1, 12))) % 12) * nq + (int(col[a]) - CHORD_BASE) % nq
        k = ((new - CHORD_BASE) // nq - root) % 12
        inputs[a:b, CHORD] = new
        k = k if k <= 6 else k - 12
        for s in ACCOMP_STREAMS:
            if s == CHORD:
                continue
            lag = pattern.offsets[s] - pattern.offsets[CHORD]
            sl = inputs[min(R, a + lag) : min(R, b + lag), s]
            on = sl >= NOTE_BASE
            moved = sl + k
            sl[:] = np.where(on & (moved >= NOTE_BASE) & (moved < NOTE_BASE + 128), moved, sl)


def fixed_valid_set(pieces: list[Any], cfg: TrainConfig) -> dict[str, tuple[torch.Tensor, ...]]:
    """Deterministic validation crops per style (no transposition)."""
    out = {}
    rng = np.random.default_rng(12345)
    for style in STYLES:
        ps = [p for p in pieces if p.style == style and len(p) >= 2]
        if not ps:
            continue
        b = Batcher(ps, replace(cfg, style_weights=((style, 1.0),)))
        out[style] = b.batch(rng, cfg.eval_crops_per_style, transpose=False)
    return out


def masked_nll(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (B, R, S, V), targets (B, R, S) -> nll (B, R, S) (0 where not a target), mask."""
    mask = torch.from_numpy(target_mask(targets.cpu().numpy())).to(logits.device)
    safe = torch.where(mask, targets, torch.ones_like(targets))
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, safe[..., None])[..., 0]
    return torch.where(mask, nll, torch.zeros_like(nll)), mask


def grid_index(pattern: Pattern, T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos, stream), each (T, S): ``x[:, pos, stream]`` takes row-level (B, R, S, ...) to
    grid cells (B, T, S, ...), the torch form of ``Pattern.revert``."""
    pos = torch.tensor([[pattern.position(t, s) for s in range(pattern.num_streams)] for t in range(T)], device=device)
    return pos, torch.arange(pattern.num_streams, device=device).expand(T, -1)


def rows_for(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    s_idx: tuple[torch.Tensor, ...],
    t_idx: tuple[torch.Tensor, ...],
    rows: int,
) -> torch.Tensor:
    """This model's input rows (B, R, S) (a position they lack from ``targets``) -> the same
    grid as another pattern's input rows (B, rows, S): BOS, then its positions, PAD where
    the grid has no cell. s_idx / t_idx: ``grid_index`` of the two patterns."""
    seq = torch.cat([inputs[:, 1:], targets[:, -1:]], dim=1)  # (B, R, S): position i at row i
    # a crop shorter than R rows has its last position only among the targets
    seq = torch.where(seq == PAD, targets, seq)
    grid = seq[:, s_idx[0], s_idx[1]]  # (B, T, S)
    B, _, S = inputs.shape
    out = torch.full((B, max(rows, int(t_idx[0].max()) + 2), S), PAD, dtype=inputs.dtype, device=inputs.device)
    out[:, t_idx[0] + 1, t_idx[1]] = grid  # input row i holds position i - 1
    return out[:, :rows]


def distill_kl(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """student/teacher logits (B, T, S, V) on the same grid cells, mask (B, T, S) ->
    KL(teacher || student) per cell (B, T, S), 0 where not masked. Ids outside a stream's
    vocabulary are -inf in both and count nothing."""
    ls = torch.log_softmax(student.float() / temperature, dim=-1)
    lt = torch.log_softmax(teacher.float() / temperature, dim=-1)
    pt = lt.exp()
    kl = torch.where(pt > 0, pt * (lt - ls), torch.zeros_like(pt)).sum(-1)
    return torch.where(mask, kl, torch.zeros_like(kl)) * temperature**2


# ---------------------------------------------------------------------------- state files
def save_state(
    path: Path, model: Transformer, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig, best: float
) -> None:
    """Model + optimizer tensors and the resume metadata in one safetensors file."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for idx, st in osd["state"].items():
        for name, val in st.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.random.get_rng_state()
    meta = {
        "format": "liveband-train-state",
        "version": CHECKPOINT_VERSION,
        "step": str(step),
        "best": repr(best),
        "train_config": cfg.to_json(),
        "param_groups": json.dumps(osd["param_groups"]),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: Path, model: Transformer, opt: torch.optim.Optimizer) -> tuple[int, float]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read training state ({exc})") from None
    if meta.get("format") != "liveband-train-state" or meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: not a training state of version {CHECKPOINT_VERSION}")
    saved_model = json.loads(meta["train_config"])["model"]
    if saved_model != json.loads(model.cfg.to_json()):
        raise CheckpointError(f"{path}: the run was started with a different model config")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, Any] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    torch.random.set_rng_state(tensors["rng.torch"])
    return int(meta["step"]), float(meta["best"])


# ---------------------------------------------------------------------------- loop
def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


@torch.no_grad()
def evaluate(
    model: Transformer, valid: dict[str, Any], device: torch.device, amp: Callable[[], AbstractContextManager[Any]]
) -> dict[str, Any]:
    """Mean NLL per target token on the fixed validation crops: per style, per stream,
    and the accompaniment-only mean."""
    model.eval()
    out: dict[str, Any] = {}
    tot = torch.zeros(NUM_STREAMS, dtype=torch.float64)
    cnt = torch.zeros(NUM_STREAMS, dtype=torch.float64)
    for style, (inputs, meta, targets, *_) in valid.items():
        s_tot = torch.zeros(NUM_STREAMS, dtype=torch.float64)
        s_cnt = torch.zeros(NUM_STREAMS, dtype=torch.float64)
        for a in range(0, len(inputs), 16):
            with amp():
                logits = model(inputs[a : a + 16].to(device), meta[a : a + 16].to(device))
            nll, mask = masked_nll(logits, targets[a : a + 16].to(device))
            s_tot += nll.sum((0, 1)).double().cpu()
            s_cnt += mask.sum((0, 1)).double().cpu()
        out[f"{style}/accomp"] = float(s_tot[1:].sum() / s_cnt[1:].sum().clamp(min=1))
        tot += s_tot
        cnt += s_cnt
    for s, name in enumerate(STREAMS):
        out[name] = float(tot[s] / cnt[s].clamp(min=1))
    out["accomp"] = float(tot[1:].sum() / cnt[1:].sum().clamp(min=1))
    out["all"] = float(tot.sum() / cnt.sum().clamp(min=1))
    model.train()
    return out


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (every rank must call this at the same point).
    A decision one rank takes alone (a clock, a bad loss) leaves the others waiting
    forever in DDP's next all-reduce; agreeing first makes every rank take it together."""
    if world <= 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def train(
    cfg: TrainConfig,
    corpus: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
    stop_at: int | None = None,
    init_from: str | Path | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Train on ``corpus`` ({"train": [Piece], "valid": [Piece]}) into ``out_dir``.

    Under torchrun (WORLD_SIZE > 1) each process trains on its own batches and DDP
    averages gradients (gloo on CPU, nccl on CUDA); rank 0 writes files and the bar.
    ``init_from``: a model checkpoint whose weights start a fresh run wherever names and
    shapes match (warm start, e.g. after adding a zero-initialised embedding).
    ``max_seconds`` / ``stop_at`` end the run early (after that much time / at that step)
    with a resumable state, as an interruption would; the schedule still follows
    ``cfg.steps``. ``workers`` > 0: that many DataLoader processes make the batches ahead
    (``BatchStream``; same numbers as 0). Returns a summary dict (final step, best validation, seconds).
    """
    import torch.distributed as dist
    from tqdm import tqdm

    rank, world, local_rank = _dist_info()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and world > 1:
        device = f"cuda:{local_rank}"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is not None:  # plain "cuda" is the current device already
        torch.cuda.set_device(dev)
    else:
        # Small ops on a shared CPU: OpenMP threads spin against each other and against
        # other processes, so each process gets its share of the cores less one (one on
        # two cores; MODEL_CARD.md, "Training", has what a second thread cost).
        torch.set_num_threads(int(os.environ.get("LIVEBAND_TRAIN_THREADS", max(1, (os.cpu_count() or 2) // world - 1))))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.safetensors"

    torch.manual_seed(cfg.seed)
    model = Transformer(cfg.model).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "emb" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        fused=dev.type in ("cpu", "cuda"),
    )
    step, best = 0, float("inf")
    init_from = init_from if init_from is not None else cfg.init_from
    if init_from is not None and not (resume and state_path.is_file()):
        from safetensors.torch import load_file

        src = load_file(str(init_from))
        own = model.state_dict()
        take = {k: v.float() for k, v in src.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(take, strict=False)
        log.info("warm start from %s: %d of %d tensors", init_from, len(take), len(own))
    if resume and state_path.is_file():
        step, best = load_state(state_path, model, opt)
        log.info("resumed from %s at step %d", state_path, step)
    elif resume:
        log.info("no %s to resume from; starting fresh", state_path)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    if dev.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        amp: Callable[[], AbstractContextManager[Any]] = lambda: torch.autocast("cuda", dtype=amp_dtype)  # noqa: E731
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    else:
        import contextlib

        amp = contextlib.nullcontext
        scaler = None

    teacher = None
    if cfg.teacher:
        from models.checkpoint import load_model_file

        teacher = load_model_file(cfg.teacher, dev)  # eval mode, float32
        teacher.requires_grad_(False)
        if teacher.cfg.num_streams != cfg.model.num_streams:
            raise CheckpointError(f"{cfg.teacher}: the teacher has another stream layout")
        T = cfg.crop_frames
        s_idx = grid_index(cfg.model.pattern, T, dev)
        t_idx = grid_index(teacher.cfg.pattern, T, dev)
        log.info(
            "distilling from %s (lookahead %d), weight %g",
            cfg.teacher,
            teacher.cfg.pattern.lookahead,
            cfg.distill_weight,
        )
    batcher = Batcher(corpus["train"], cfg, teacher.cfg.pattern if teacher is not None else None)
    stream = None
    if workers > 0 and step < cfg.steps:
        loader = torch.utils.data.DataLoader(
            BatchStream(batcher, cfg, rank, step),
            batch_size=None,
            num_workers=workers,
            prefetch_factor=4,
            pin_memory=dev.type == "cuda",
        )
        stream = iter(loader)
    valid = fixed_valid_set(corpus.get("valid", []), cfg) if rank == 0 else {}
    weights = torch.tensor(cfg.stream_weights, device=dev)
    logf: Any = open(out / "log.jsonl", "a") if rank == 0 else None  # rank 0 writes it
    bar = tqdm(
        total=cfg.steps, initial=step, disable=not progress or rank != 0, desc="train", unit="step", dynamic_ncols=True
    )
    t_start = time.time()
    last_val: dict[str, Any] = {}
    model.train()
    try:
        while step < cfg.steps:
            # each rank reads its own clock: stop when any rank's says so, all together
            stop = (max_seconds is not None and time.time() - t_start > max_seconds) or (
                stop_at is not None and step >= stop_at
            )
            if _any_rank(stop, world, dev):
                break
            rng = step_rng(cfg.seed, rank, step)
            torch.manual_seed(int(rng.integers(2**62)))
            made = next(stream) if stream is not None else batcher.batch(rng, cfg.batch_size, cfg.transpose)
            inputs, meta, targets, cell_w, own_cells, melody_pc, *t_rows = (x.to(dev, non_blocking=True) for x in made)
            if cfg.own_band_passes:
                inputs = own_band(model, inputs, meta, own_cells, cfg.own_band_passes, cfg.own_band_temperature)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            with amp():
                logits = ddp(inputs, meta)
            nll, mask = masked_nll(logits, targets)
            w = weights * cell_w * mask
            loss = (nll * weights * cell_w).sum() / w.sum().clamp(min=1)
            reward = None
            if cfg.own_band_reward > 0:
                pg, reward = own_chord_reward(logits, inputs, own_cells, melody_pc)
                loss = loss + cfg.own_band_reward * pg
            kl_mean = None
            if teacher is not None and cfg.distill_weight > 0:
                if cfg.distill_on_policy:
                    t_rows[0] = rows_for(inputs, targets, s_idx, t_idx, t_rows[0].shape[1])
                with torch.no_grad(), amp():
                    t_logits = teacher(*t_rows)
                cells = mask[:, s_idx[0], s_idx[1]]  # (B, T, S) grid targets
                cells[..., 0] = False  # the melody is not distilled
                kl = distill_kl(
                    logits[:, s_idx[0], s_idx[1]], t_logits[:, t_idx[0], t_idx[1]], cells, cfg.distill_temperature
                )
                kl_mean = (kl * weights).sum() / (weights * cells).sum().clamp(min=1)
                loss = loss + cfg.distill_weight * kl_mean
            lv = float(loss.detach())
            # before backward: a non-finite loss on any rank stops every rank here (DDP would
            # spread its gradients to all of them), and no weights are touched
            if _any_rank(not math.isfinite(lv), world, dev):
                raise FloatingPointError(
                    f"loss became non-finite at step {step + 1} on a rank "
                    f"(rank {rank}'s loss: {lv}); weights not updated"
                )
            opt.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                scaler.unscale_(opt)
            else:
                loss.backward()  # type: ignore[no-untyped-call]
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None and scaler.is_enabled():
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            step += 1
            bar.update(1)
            if rank == 0:
                bar.set_postfix(
                    loss=f"{lv:.3f}",
                    lr=f"{lr_at(step - 1, cfg):.2e}",
                    val=f"{last_val.get('accomp', float('nan')):.3f}",
                )
                if step % cfg.log_every == 0:
                    extra = {} if kl_mean is None else {"kl": float(kl_mean.detach())}
                    if reward is not None:
                        extra["own_chord_reward"] = float(reward)
                    logf.write(
                        json.dumps(
                            {
                                "step": step,
                                "loss": lv,
                                **extra,
                                "grad_norm": float(gnorm),
                                "lr": lr_at(step - 1, cfg),
                                "time": round(time.time() - t_start, 1),
                            }
                        )
                        + "\n"
                    )
                    logf.flush()
                if valid and (step % cfg.eval_every == 0 or step == cfg.steps):
                    last_val = evaluate(model, valid, dev, amp)
                    logf.write(json.dumps({"step": step, "valid": last_val}) + "\n")
                    logf.flush()
                    if last_val["accomp"] < best:
                        best = last_val["accomp"]
                        save_model(
                            model, out / "best.safetensors", extra={"step": str(step), "valid": json.dumps(last_val)}
                        )
                if step % cfg.ckpt_every == 0 or step == cfg.steps:
                    save_model(model, out / "model.safetensors", extra={"step": str(step)})
                    save_state(state_path, model, opt, step, cfg, best)
    finally:
        stream = None  # ends the DataLoader's workers (an early stop leaves them mid-stream)
        bar.close()
        if logf:
            logf.close()
        if world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    if rank == 0 and step % cfg.ckpt_every:
        save_model(model, out / "model.safetensors", extra={"step": str(step)})
        save_state(state_path, model, opt, step, cfg, best)
    return {
        "step": step,
        "best_valid_accomp": best,
        "last_valid": last_val,
        "seconds": round(time.time() - t_start, 1),
        "params": model.num_params(),
    }

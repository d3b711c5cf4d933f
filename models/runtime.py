"""The model room's public API for the engine, evaluation and the CLI.

- ``load_model(checkpoint=None, device="cpu") -> LoadedModel``
- ``load_accompanist(checkpoint=None, backend="torch-cpu") -> Accompanist``
- ``debug_model(seed=0) -> LoadedModel``: a tiny random model built in code, so tests of
  the engine and evaluation never need the shipped weights.

Backends: "torch-cpu", "torch-cuda", "onnx-cpu", "onnx-cuda" (``models.backends``). One
that cannot run here (no GPU, no onnxruntime) falls back along ``models.backends``' chain
with a one-line warning.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from models.backends import open_backend
from models.checkpoint import load_model_file
from models.contract import StepModel
from models.generate import PatternAccompanist, TorchStepModel
from models.pattern import Pattern
from models.tokens import CHORD, CHORD_UNKNOWN, NUM_STREAMS, PAD, VOCAB_SIZES, metric_id, style_id
from models.transformer import ModelConfig, Transformer

if TYPE_CHECKING:
    from models.data.piece import Piece

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default.safetensors"
# The offline teacher (hears the melody a beat ahead): what a render of a file plays by
# default; live play always loads a model with lookahead >= 1 (the engine refuses others).
OFFLINE_CHECKPOINT = DEFAULT_CHECKPOINT.with_name("teacher.safetensors")


def piece_meta(pattern: Pattern, style: str, meter: str, step_in_bar: np.ndarray, num_rows: int) -> np.ndarray:
    """(num_rows, 2) int64 meta of the model's input rows: row i predicts position i, whose
    frame's metric position it carries (frames past the end continue the bar count)."""
    from models.tokens import bar_steps

    frames = np.arange(num_rows) // pattern.frame_size - pattern.shift
    T = len(step_in_bar)
    sib_arr = np.asarray(step_in_bar, dtype=np.int64)
    last = int(sib_arr[T - 1]) if T else -1
    first = int(sib_arr[0]) if T else 0
    inside = sib_arr[np.clip(frames, 0, max(T - 1, 0))] if T else np.zeros_like(frames)
    sib = np.where(frames < T, inside, (last + frames - T + 1) % bar_steps(meter))
    # an offline pattern's first positions (frames before 0) count the bar backwards
    sib = np.where(frames < 0, (first + frames) % bar_steps(meter), sib)
    meta = np.empty((num_rows, 2), dtype=np.int64)
    meta[:, 0] = style_id(style)
    meta[:, 1] = [metric_id(meter, int(x)) for x in sib]
    return meta


def target_mask(targets: np.ndarray) -> np.ndarray:
    """(..., S) bool: which cells are prediction targets (not PAD, not an unknown chord,
    inside the stream's vocabulary)."""
    valid = targets != PAD
    valid[..., CHORD] &= targets[..., CHORD] != CHORD_UNKNOWN
    valid &= targets < np.asarray(VOCAB_SIZES)
    out: np.ndarray = valid
    return out


@dataclass
class LoadedModel:
    """A model with its config, ready for scoring and streaming."""

    model: Transformer
    config: ModelConfig
    device: torch.device
    source: str = "<in-memory>"

    @property
    def pattern(self) -> Pattern:
        return self.config.pattern

    @torch.no_grad()
    def cell_logits(self, piece: Piece) -> np.ndarray:
        """Teacher-forced logits of every grid cell: (T, S, MAX_VOCAB) float32, the logits
        the model gives cell (t, s) when it is predicted under the pattern (so for an
        accompaniment stream they depend on melody only up to t - lookahead)."""
        grid = np.asarray(piece.tokens, dtype=np.int64)
        T = grid.shape[0]
        pat = self.pattern
        inputs, _ = pat.model_rows(grid)
        meta = piece_meta(pat, piece.style, piece.meter, np.asarray(piece.step_in_bar), len(inputs))
        logits = self.model(
            torch.from_numpy(inputs)[None].to(self.device), torch.from_numpy(meta)[None].to(self.device)
        )[0]
        return pat.revert(logits.float().cpu().numpy(), T)

    @torch.no_grad()
    def token_nll(self, piece: Piece) -> np.ndarray:
        """Teacher-forced NLL (nats) of every cell of ``piece.tokens`` under the online
        restriction (the pattern lets accompaniment at t see melody only up to t - d).

        Returns (T, NUM_STREAMS) float64, NaN where a cell is not a target (PAD,
        CHORD_UNKNOWN). Equals what streaming the same tokens scores.
        """
        grid = np.asarray(piece.tokens, dtype=np.int64)
        T = grid.shape[0]
        if T == 0:
            return np.zeros((0, NUM_STREAMS))
        logits = torch.from_numpy(self.cell_logits(piece)).double()  # (T, S, V)
        logp = torch.log_softmax(logits, dim=-1).numpy()
        valid = target_mask(grid)
        safe = np.where(valid, grid, 1)
        nll = -np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
        nll[~valid] = np.nan
        return nll

    def step_model(self, backend: str = "torch-cpu") -> StepModel:
        """A fresh ``StepModel`` (own cache) on ``backend``; one that cannot run here falls
        back (``models.backends``) with a one-line warning. A load failure is raised."""
        return open_backend(backend, self._step_model_on, notify=_warn, retry_on=())[0]

    def _step_model_on(self, backend: str) -> StepModel:
        if backend.startswith("onnx"):
            from models.export import OnnxStepModel

            return OnnxStepModel.from_model(self.model, cuda=backend == "onnx-cuda", source=self.source)
        device = "cuda" if backend == "torch-cuda" else "cpu"
        return TorchStepModel(self.model, device)

    def accompanist(self, seed: int = 0, backend: str = "torch-cpu") -> PatternAccompanist:
        """A streaming ``Accompanist``. ``seed`` is kept for API stability: all randomness
        lives in the sampler the caller passes to ``advance``."""
        acc = PatternAccompanist(self.step_model(backend), self.pattern)
        acc.seed = seed
        return acc


def _warn(notice: str) -> None:
    warnings.warn(notice, stacklevel=4)


def load_model(checkpoint: str | Path | None = None, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint (None = the shipped default). Raises
    ``models.checkpoint.CheckpointError`` (a ValueError) with one line naming the file."""
    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"device {device} unavailable; using cpu", stacklevel=2)
        device = "cpu"
    model = load_model_file(path, device)
    return LoadedModel(model, model.cfg, torch.device(device), str(path))


def default_offline_checkpoint() -> Path:
    """The checkpoint an offline render uses when none is named: the shipped teacher, or
    the live default where no teacher is shipped."""
    return OFFLINE_CHECKPOINT if OFFLINE_CHECKPOINT.is_file() else DEFAULT_CHECKPOINT


def load_accompanist(
    checkpoint: str | Path | None = None, backend: str = "torch-cpu", seed: int = 0
) -> PatternAccompanist:
    """The engine's entry point: a streaming Accompanist for a checkpoint on a backend."""
    device = "cuda" if backend == "torch-cuda" and torch.cuda.is_available() else "cpu"
    return load_model(checkpoint, device).accompanist(seed=seed, backend=backend)


DEBUG_CONFIG = ModelConfig(n_layer=2, n_head=2, d_model=32, window=16, n_sink=2, dropout=0.0, pitch_classes=True)


def debug_model(seed: int = 0, config: ModelConfig = DEBUG_CONFIG) -> LoadedModel:
    """A tiny randomly initialised model (deterministic for ``seed``); never reads files."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Transformer(config).eval()
    finally:
        torch.random.set_rng_state(gen_state)
    return LoadedModel(model, config, torch.device("cpu"), f"<debug seed={seed}>")

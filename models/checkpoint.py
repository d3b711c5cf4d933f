"""Checkpoint files: safetensors only (loading never executes code).

A model checkpoint holds the weights and, as string metadata, ``format``
("liveband-model"), ``version`` (CHECKPOINT_VERSION) and ``config`` (ModelConfig JSON).
A training state file additionally holds the optimizer tensors (``optim/<i>/<name>``)
and the step, RNG states and optimizer hyperparameters as JSON metadata.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from models.transformer import ModelConfig, Transformer

CHECKPOINT_VERSION = "1"
FORMAT = "liveband-model"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def save_model(model: Transformer, path: str | Path, dtype: torch.dtype = torch.float32,
               extra: dict[str, str] | None = None) -> Path:
    """Write the weights (cast to ``dtype``) and config; atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "version": CHECKPOINT_VERSION, "config": model.cfg.to_json(), **(extra or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> Transformer:
    """Build the model a checkpoint describes and load its weights (float32, eval mode).

    Raises CheckpointError (one line naming the file and the problem) for a missing,
    corrupt, foreign, other-version or wrong-shape file.
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a LiveBand model checkpoint (format={meta.get('format')!r})")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r} is not supported "
            f"(this LiveBand reads version {CHECKPOINT_VERSION})")
    try:
        cfg = ModelConfig.from_json(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad model config in checkpoint ({exc})") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
    model = Transformer(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{path}: wrong shape for {k}: {tuple(state[k].shape)}, config expects {tuple(v.shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()

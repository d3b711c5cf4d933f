"""PESTO (Riou et al. 2023) with the shipped ``mir-1k_g7`` weights, streaming one 10 ms hop per call.

Front end: a variable-Q constant-Q transform (3 bins per semitone, 251 bins from just
below A0, Hann-windowed complex kernels of length ceil(Q * sr / (f + gamma / alpha)),
each normalised to unit L1 norm and its output scaled by sqrt(length), as in nnAudio /
librosa). Only magnitudes are used, so we keep the kernels as one (2 * 251, W) real
matrix and each hop is a single matrix-vector product over the last W samples.

Streaming alignment: every kernel is centred in the W-sample window, so a plain causal
window hears the past W/2 samples late (128 ms at 16 kHz). PESTO's streaming mode
("mirror") instead slides the window ``m`` samples into the future and fills those with
zeros: the analysis centre moves to W/2 - m samples before "now" at the cost of a
one-sided (half-zero) window for long kernels. ``lookahead_ms`` picks how much of that
delay to remove; 0 reproduces the offline CQT exactly.

Encoder (shapes from the checkpoint): layer norm over the 219 cropped bins, a 39-tap
conv to 40 channels, two residual 39-tap conv layers, 1x1 convs 40-30-30-10-3 with leaky
ReLU (0.3), a Toeplitz (shift-equivariant) linear layer to 384 outputs, softmax. Pitch is
the argmax-local weighted average of bin/3 semitones after rolling by the learnt shift.
Confidence is the shipped voicing classifier on the CQT energy.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.signal import get_window

from engine.pitch.tracker import HOP, TRACKER_RATE
from engine.pitch.onnxcache import open_session
from engine.pitch.weights import load_pesto_checkpoint, pesto_weights_path

_EPS32 = float(np.finfo(np.float32).eps)


def cqt_kernels(sr: int, fmin: float, n_bins: int, bins_per_semitone: int, gamma: float,
                center_bins: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (kernels (n_bins, W) complex64, lengths (n_bins,), freqs (n_bins,))."""
    bpo = 12 * bins_per_semitone
    if center_bins:
        fmin = fmin / 2 ** ((bins_per_semitone - 1) / (24 * bins_per_semitone))
    freqs = fmin * 2.0 ** (np.arange(n_bins) / bpo)
    if freqs[-1] > sr / 2:
        raise ValueError(f"CQT top bin {freqs[-1]:.0f} Hz is above Nyquist at {sr} Hz")
    alpha = 2.0 ** (1.0 / bpo) - 1.0
    q = 1.0 / alpha
    lengths = np.ceil(q * sr / (freqs + gamma / alpha))
    width = int(2 ** math.ceil(math.log2(lengths.max())))
    kernels = np.zeros((n_bins, width), np.complex64)
    for k, (f, ln) in enumerate(zip(freqs, lengths.astype(int))):
        # the same centring and time axis as the reference implementation
        start = int(math.ceil(width / 2 - ln / 2)) - (1 if ln % 2 == 1 else 0)
        t = np.r_[(-ln) // 2: ln // 2]
        sig = get_window("hann", ln, fftbins=True) * np.exp(2j * np.pi * f / sr * t) / ln
        kernels[k, start:start + ln] = sig / np.abs(sig).sum()
    return kernels, lengths, freqs


class PestoModel:
    """The PESTO encoder + voicing classifier in numpy/torch, built from the checkpoint.

    Thread: one thread at a time.
    """

    def __init__(self, threads: int = 1, backend: str = "onnx") -> None:
        import torch
        from torch import nn

        sd, self.hcqt, hp = load_pesto_checkpoint()
        self.bps = int(self.hcqt["bins_per_semitone"])
        n_in = int(hp["n_bins_in"])
        chans = [int(c) for c in hp["n_chan_layers"]]
        k = int(hp["prefilt_kernel_size"])
        slope = float(hp["a_lrelu"])
        n_pre = int(hp["n_prefilt_layers"]) - 1
        out_dim = int(hp["output_dim"])
        if hp.get("activation_fn", "leaky") != "leaky" or not hp.get("residual", False):
            raise ValueError("unexpected PESTO encoder configuration in the checkpoint")

        class Encoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.norm = nn.LayerNorm([1, n_in])
                self.conv1 = nn.Conv1d(1, chans[0], k, padding=k // 2)
                self.pre = nn.ModuleList(nn.Conv1d(chans[0], chans[0], k, padding=k // 2) for _ in range(n_pre))
                self.mix = nn.ModuleList(nn.Conv1d(a, b, 1) for a, b in zip(chans[:-1], chans[1:]))
                # Toeplitz linear: a 1-channel conv whose kernel spans in + out - 1 taps
                self.fc = nn.Conv1d(1, 1, n_in * chans[-1] + out_dim - 1, padding=out_dim - 1, bias=False)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                """x: (B, 1, 219) log-energy -> (B, 384) pitch distribution."""
                act = lambda v: nn.functional.leaky_relu(v, slope)   # noqa: E731
                x = act(self.conv1(self.norm(x)))
                for conv in self.pre:
                    x = act(conv(x)) + x
                for conv in self.mix:
                    x = act(conv(x))
                x = self.fc(x.flatten(1)[:, None, :])[:, 0, :]
                return torch.softmax(x, dim=-1)

        class Voicing(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv1d(1, 1, 39, stride=3)
                self.linear = nn.Linear(72, 1)

            def forward(self, energy: torch.Tensor) -> torch.Tensor:
                """energy: (B, 251) CQT power -> (B,) voicing confidence."""
                flat = energy.log().mean(-1, keepdim=True).exp() / energy.mean(-1, keepdim=True).clamp(min=1e-8)
                x = torch.relu(self.conv(energy[:, None, :])[:, 0, :])
                return torch.sigmoid(self.linear(torch.cat((x, flat), -1)))[:, 0]

        enc, voi = Encoder(), Voicing()
        mapping = {"norm.weight": "encoder.layernorm.weight", "norm.bias": "encoder.layernorm.bias",
                   "conv1.weight": "encoder.conv1.0.weight", "conv1.bias": "encoder.conv1.0.bias",
                   "fc.weight": "encoder.fc.weight"}
        for i in range(n_pre):
            for p in ("weight", "bias"):
                mapping[f"pre.{i}.{p}"] = f"encoder.prefilt_layers.{i}.0.{p}"
        for i in range(len(chans) - 1):
            for p in ("weight", "bias"):
                mapping[f"mix.{i}.{p}"] = f"encoder.conv_layers.{3 * i}.{p}"
        _load(enc, {a: sd[b] for a, b in mapping.items()})
        _load(voi, {f"{m}.{p}": sd[f"confidence.{m}.{p}"] for m in ("conv", "linear") for p in ("weight", "bias")})
        lo, hi = int(hp["crop"]["max_steps"]), int(hp["crop"]["min_steps"])   # (16, -16)

        h = self.hcqt
        kern, lengths, _ = cqt_kernels(TRACKER_RATE, float(h["fmin"]), int(h["n_bins"]), self.bps,
                                       float(h["gamma"]), bool(h.get("center_bins", True)))
        self.n_bins, self.width = kern.shape
        scale = np.sqrt(lengths)[:, None]   # librosa-style normalisation of the CQT output
        stacked = np.concatenate([kern.real * scale, kern.imag * scale]).astype(np.float32)
        n_bins = self.n_bins

        class Whole(nn.Module):
            """(B, W) audio windows -> (B, 384) pitch distribution, (B,) voicing."""

            def __init__(self) -> None:
                super().__init__()
                self.encoder, self.voicing = enc, voi
                self.register_buffer("kernels", torch.from_numpy(stacked.T.copy()))   # (W, 2 * bins)

            def forward(self, frames: torch.Tensor):
                c = frames @ self.kernels
                power = (c[:, :n_bins] ** 2 + c[:, n_bins:] ** 2).clamp(min=_EPS32 ** 2)
                # ln |cqt|^2: what the published model feeds its encoder (dB * ln10 / 10)
                log_energy = power.log()
                return self.encoder(log_energy[:, None, lo:hi]), self.voicing(power)

        self.torch_module = Whole().eval()
        self.roll = -round(float(sd["shift"]) * self.bps)
        self.out_dim = out_dim
        self._torch = torch
        self.backend = backend
        if backend == "onnx":
            sess = open_session(f"pesto-mir-1k_g7-{TRACKER_RATE}", pesto_weights_path(),
                                lambda: (self.torch_module, (torch.zeros(2, self.width),)),
                                ["frames"], ["activation", "confidence"], threads=threads)
            self._run = lambda x: sess.run(None, {"frames": x})
        elif backend == "torch":
            def run(x: np.ndarray):
                with torch.inference_mode():
                    a, c = self.torch_module(torch.from_numpy(x))
                return a.numpy(), c.numpy()
            self._run = run
        else:
            raise ValueError(f"backend must be 'onnx' or 'torch', got {backend!r}")

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames: (B, W) float32 audio windows -> (midi pitch (B,), confidence (B,))."""
        act, conf = self._run(np.ascontiguousarray(frames, np.float32))
        if act.shape[0] == 1:
            return np.array([_alwa_one(act[0], self.roll, self.bps)]), conf
        return reduce_alwa(np.roll(act, self.roll, axis=-1), self.bps), conf


def _load(module, arrays: dict[str, np.ndarray]) -> None:
    import torch

    own = module.state_dict()
    for k, v in arrays.items():
        if tuple(own[k].shape) != v.shape:
            raise ValueError(f"PESTO weight {k}: checkpoint shape {v.shape}, model expects {tuple(own[k].shape)}")
    module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})


def _alwa_one(act: np.ndarray, roll: int, bps: int) -> float:
    """reduce_alwa for one frame without copying: the same numbers as rolling the
    (384,) distribution by ``roll`` and reducing it (the live path's per-hop cost)."""
    n = act.shape[0]
    j = int(act.argmax())                      # index before the roll
    k = (j + roll) % n                         # index after it
    idx = np.clip(np.arange(k - bps + 1, k + bps), 0, n - 1)     # clipped like reduce_alwa
    w = act[(idx - roll) % n]
    return float((w * idx).sum() / max(float(w.sum()), 1e-12) / bps)


def reduce_alwa(act: np.ndarray, bps: int) -> np.ndarray:
    """(B, 128 * bps) distribution -> (B,) pitch in MIDI semitones: weighted mean of the
    argmax bin and its bps-1 neighbours each side."""
    centre = act.argmax(axis=-1)
    idx = np.clip(centre[:, None] + np.arange(-bps + 1, bps)[None, :], 0, act.shape[-1] - 1)
    w = np.take_along_axis(act, idx, axis=-1)
    return (w * idx).sum(-1) / np.maximum(w.sum(-1), 1e-12) / bps


class PestoTracker:
    """Streaming PESTO at 16 kHz, one 10 ms hop per ``process`` call.

    lookahead_ms: how far the analysis window reaches into the (zero-filled) future;
    see the module docstring. Thread: one thread at a time.
    """

    name = "pesto"

    def __init__(self, lookahead_ms: float = 100.0, threads: int = 1, backend: str = "onnx") -> None:
        self.model = PestoModel(threads=threads, backend=backend)
        self.width = self.model.width
        self.mirror = int(min(max(lookahead_ms, 0.0) * TRACKER_RATE / 1000, self.width // 2 - HOP))
        self.live = self.width - self.mirror                 # real samples per window
        self.delay_samples = self.width // 2 - self.mirror
        self._win = np.zeros((1, self.width), np.float32)    # [real past | zero future]

    def reset(self) -> None:
        self._win[:] = 0.0

    def process(self, hop: np.ndarray) -> tuple[float, float]:
        """hop: (160,) float32 at 16 kHz -> (f0 Hz, confidence)."""
        w = self._win[0, :self.live]
        w[:-HOP] = w[HOP:]
        w[-HOP:] = hop
        midi, conf = self.model(self._win)
        return float(440.0 * 2 ** ((midi[0] - 69) / 12)), float(conf[0])

    def batch(self, audio: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """audio: (N,) float32 at 16 kHz -> f0 (N // 160,), confidence (N // 160,)."""
        n = len(audio) // HOP
        padded = np.concatenate([np.zeros(self.live, np.float32), np.asarray(audio, np.float32)])
        f0 = np.empty(n)
        conf = np.empty(n)
        frames = np.zeros((batch_size, self.width), np.float32)
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            idx = (np.arange(s, e)[:, None] + 1) * HOP + np.arange(self.live)[None, :]
            frames[:e - s, :self.live] = padded[idx]
            midi, c = self.model(frames[:e - s])
            f0[s:e] = 440.0 * 2 ** ((midi - 69) / 12)
            conf[s:e] = c
        return f0, conf

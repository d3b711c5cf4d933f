"""PESTO (Riou et al. 2023), streaming one 10 ms hop per call.

Weights: ``sung`` (the default where ``engine/pitch/assets/pesto_sung.safetensors`` is
shipped): the published ``mir-1k_g7`` encoder fine-tuned on the generated sung corpus
(``liveband train-pitch``, docs/hum.md), same layers and shapes; or ``mir-1k_g7`` as
published.

Front end: a variable-Q constant-Q transform (3 bins per semitone, 251 bins from just
below A0, Hann-windowed complex kernels of length ceil(Q * sr / (f + gamma / alpha)),
each normalised to unit L1 norm and its output scaled by sqrt(length), as in nnAudio /
librosa). Only magnitudes are used, so the kernels are real matrices (real and imaginary
parts) and each hop is a matrix-vector product over the last W samples; bins are grouped
so that each group multiplies only the samples where its kernels are non-zero (high
bins have short kernels), which is exact and ~1/4 of the dense product.

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

Live path (``backend="onnx"``): onnxruntime runs the CQT, voicing and first conv layer;
numpy runs the two residual conv layers by FFT (``FftConvs``); onnxruntime runs the rest
(the Toeplitz layer as a matrix). ``backend="torch"`` runs the layers as published, and
the tests hold the two to the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import get_window

from engine.pitch.onnxcache import open_session
from engine.pitch.tracker import HOP, TRACKER_RATE
from engine.pitch.weights import default_pesto_weights, encoder_names, load_pesto_weights

_EPS32 = float(np.finfo(np.float32).eps)


def cqt_kernels(
    sr: int, fmin: float, n_bins: int, bins_per_semitone: int, gamma: float, center_bins: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        t = np.r_[(-ln) // 2 : ln // 2]
        sig = get_window("hann", ln, fftbins=True) * np.exp(2j * np.pi * f / sr * t) / ln
        kernels[k, start : start + ln] = sig / np.abs(sig).sum()
    return kernels, lengths, freqs


class PestoModel:
    """The PESTO encoder + voicing classifier in numpy/torch, built from the checkpoint.

    Thread: one thread at a time.
    """

    def __init__(
        self, threads: int = 1, backend: str = "onnx", lookahead_ms: float = 0.0, weights: str | None = None
    ) -> None:
        """lookahead_ms: how much of the window is zero-filled future (PestoTracker's).
        weights: 'sung' (fine-tuned on sung clips, the default when shipped), 'mir-1k_g7'
        (as published) or a fine-tuned .safetensors path (see engine.pitch.weights)."""
        import torch
        from torch import nn

        self.weights = weights or default_pesto_weights()
        sd, self.hcqt, hp, weights_file = load_pesto_weights(self.weights)
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

            def front(self, x: torch.Tensor) -> torch.Tensor:
                """x: (B, 1, 219) log-energy -> (B, 40, 219) first conv layer's output."""
                return nn.functional.leaky_relu(self.conv1(self.norm(x)), slope)

            def features(self, x: torch.Tensor) -> torch.Tensor:
                """x: (B, 1, 219) log-energy -> (B, 657): what the Toeplitz layer reads."""
                x = self.front(x)
                for conv in self.pre:
                    x = nn.functional.leaky_relu(conv(x), slope) + x
                return self.back(x)

            def back(self, x: torch.Tensor) -> torch.Tensor:
                """(B, 40, 219) after the residual layers -> (B, 657) after the 1x1 convs."""
                for conv in self.mix:
                    x = nn.functional.leaky_relu(conv(x), slope)
                return x.flatten(1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                """x: (B, 1, 219) log-energy -> (B, 384) pitch distribution (as published)."""
                x = self.fc(self.features(x)[:, None, :])[:, 0, :]
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
        mapping = encoder_names(n_pre, len(chans) - 1)
        _load(enc, {a: sd[b] for a, b in mapping.items()})
        _load(voi, {f"{m}.{p}": sd[f"confidence.{m}.{p}"] for m in ("conv", "linear") for p in ("weight", "bias")})
        lo, hi = int(hp["crop"]["max_steps"]), int(hp["crop"]["min_steps"])  # (16, -16)

        h = self.hcqt
        kern, lengths, _ = cqt_kernels(
            TRACKER_RATE,
            float(h["fmin"]),
            int(h["n_bins"]),
            self.bps,
            float(h["gamma"]),
            bool(h.get("center_bins", True)),
        )
        self.n_bins, self.width = kern.shape
        # the window's last `mirror` samples are the zero-filled future (see the module
        # docstring): the model takes only the `live` real samples
        self.mirror = int(min(max(lookahead_ms, 0.0) * TRACKER_RATE / 1000, self.width // 2 - HOP))
        self.live = self.width - self.mirror
        scale = np.sqrt(lengths)[:, None]  # librosa-style normalisation of the CQT output
        kern = (kern * scale)[:, : self.live]
        groups = support_groups(kern)
        toeplitz = toeplitz_matrix(sd["encoder.fc.weight"].reshape(-1), n_in * chans[-1], out_dim)

        class Whole(nn.Module):
            """(B, live) audio windows -> (B, 384) pitch distribution, (B,) voicing."""

            toeplitz: torch.Tensor  # a buffer (register_buffer below)

            def __init__(self) -> None:
                super().__init__()
                self.encoder, self.voicing = enc, voi
                # Each group of neighbouring bins multiplies only the columns where its
                # widest kernel is non-zero (kernels are centred; high bins are short):
                # the same sums as the dense (live, 2 * bins) product at ~1/4 of its cost.
                self.groups = [(c0, c1) for _, _, c0, c1 in groups]
                for g, (b0, b1, c0, c1) in enumerate(groups):
                    part = np.concatenate([kern[b0:b1, c0:c1].real, kern[b0:b1, c0:c1].imag]).T
                    self.register_buffer(f"kern{g}", torch.from_numpy(np.ascontiguousarray(part, np.float32)))
                # the Toeplitz layer as one (in, out) matrix: a 1-channel conv this long is
                # ~4x slower in onnxruntime than the same sums as a matrix product
                self.register_buffer("toeplitz", torch.from_numpy(toeplitz))

            def front(self, frames: torch.Tensor):
                """(B, live) audio -> (B, 40, 219) first conv layer's output, (B,) voicing."""
                power = self.power(frames)
                return self.encoder.front(power.log()[:, None, lo:hi]), self.voicing(power)

            def power(self, frames: torch.Tensor) -> torch.Tensor:
                powers = []
                for g, (c0, c1) in enumerate(self.groups):
                    c = frames[:, c0:c1] @ getattr(self, f"kern{g}")
                    half = c.shape[1] // 2
                    powers.append(c[:, :half] ** 2 + c[:, half:] ** 2)
                return torch.cat(powers, dim=1).clamp(min=_EPS32**2)

            def forward(self, frames: torch.Tensor):
                power = self.power(frames)
                # ln |cqt|^2: what the published model feeds its encoder (dB * ln10 / 10)
                x = self.encoder.features(power.log()[:, None, lo:hi])
                return torch.softmax(x @ self.toeplitz, dim=-1), self.voicing(power)

        class Front(nn.Module):
            """What onnxruntime runs live before the FFT convs: CQT, voicing, first conv."""

            def __init__(self, whole: Whole) -> None:
                super().__init__()
                self.whole = whole

            def forward(self, frames: torch.Tensor):
                return self.whole.front(frames)

        class Back(nn.Module):
            """... and after them: 1x1 convs, Toeplitz layer, softmax."""

            def __init__(self, whole: Whole) -> None:
                super().__init__()
                self.whole = whole

            def forward(self, h: torch.Tensor):
                return torch.softmax(self.whole.encoder.back(h) @ self.whole.toeplitz, dim=-1)

        self.torch_module = Whole().eval()
        self.roll = -round(float(sd["shift"]) * self.bps)
        self.out_dim = out_dim
        self._torch = torch
        self.backend = backend
        if backend == "onnx":
            # the tag names the graph's part, layout and window: a cached export of
            # another part, layout or window must never be reused
            front = Front(self.torch_module).eval()
            back = Back(self.torch_module).eval()
            # ... and the weights: their name here, their bytes (the file's hash) in the cache key
            tag = "pesto-" + ("file" if self.weights.endswith(".safetensors") else self.weights)
            s_front = open_session(
                f"{tag}-{TRACKER_RATE}-front-live{self.live}",
                weights_file,
                lambda: (front, (torch.zeros(2, self.live),)),
                ["frames"],
                ["features", "confidence"],
                threads=threads,
            )
            s_back = open_session(
                f"{tag}-{TRACKER_RATE}-back",
                weights_file,
                lambda: (back, (torch.zeros(2, chans[0], n_in),)),
                ["features"],
                ["activation"],
                threads=threads,
            )
            convs = FftConvs(enc.pre, slope)

            def run_onnx(x: np.ndarray):
                h, conf = s_front.run(None, {"frames": x})
                return s_back.run(None, {"features": convs(h)})[0], conf

            self._run = run_onnx
        elif backend == "torch":

            def run(x: np.ndarray):
                with torch.inference_mode():
                    a, c = self.torch_module(torch.from_numpy(x))
                return a.numpy(), c.numpy()

            self._run = run
        else:
            raise ValueError(f"backend must be 'onnx' or 'torch', got {backend!r}")

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """frames: (B, live) float32 audio (the real part of each window) -> (midi pitch
        (B,), confidence (B,))."""
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


class FftConvs:
    """The encoder's residual 40-channel, 39-tap conv layers in numpy, by FFT (overlap-save).

    Why: as direct convolutions these two layers are 27 M multiply-adds per frame, 2/3 of
    the whole model's time in onnxruntime. Here each is cut into blocks of ``n_fft``
    bins; per block a real FFT, a complex (40 x 40) channel mix per frequency and an
    inverse FFT (~5x fewer operations). Short blocks keep the kernel spectra small
    (33 x 40 x 40 complex, 420 kB a layer; one 256-point block would need 1.6 MB): on
    this shared machine memory traffic per hop costs as much as arithmetic. Results
    equal the direct convolution to float32 rounding. (scipy's FFT is faster than
    numpy's on these short rows; no BLAS call here is large enough to start OpenBLAS
    threads.)

    Thread: one thread at a time.
    """

    n_fft = 64

    def __init__(self, convs, slope: float) -> None:
        self.slope = float(slope)
        self.layers = []
        for conv in convs:
            w = conv.weight.detach().numpy().astype(np.float64)  # (out, in, k)
            # conv1d is a cross-correlation: out[n] = sum_j w[j] x[n + j - pad]; in a
            # block of n_fft inputs the first n_fft - k + 1 outputs do not wrap around
            spec = np.conj(np.fft.rfft(w, n=self.n_fft, axis=-1))  # (out, in, F)
            self.layers.append(
                (
                    np.ascontiguousarray(spec.transpose(2, 1, 0), np.complex64),  # (F, in, out)
                    conv.bias.detach().numpy().astype(np.float32),
                    int(conv.padding[0]),
                    w.shape[-1],
                )
            )

    def __call__(self, h: np.ndarray) -> np.ndarray:
        """h: (B, 40, L) first-layer output -> (B, 40, L) after the residual layers."""
        import scipy.fft

        b, c, n = h.shape
        # work channel-last, (L, B, C): blocks are gathered along the first axis, the FFTs
        # run along it and the channel mix is one (blocks * B, C) @ (C, C) product per
        # frequency, with no transposed copies in between
        x = np.ascontiguousarray(h.transpose(2, 0, 1))
        for spec_t, bias, pad, k in self.layers:
            step = self.n_fft - k + 1  # valid outputs per block
            blocks = -(-n // step)
            xp = np.zeros((blocks * step + k - 1, b, c), np.float32)
            xp[pad : pad + n] = x
            idx = np.arange(self.n_fft)[:, None] + step * np.arange(blocks)[None, :]
            seg = scipy.fft.rfft(xp[idx], axis=0)  # (F, blocks, B, C)
            y = np.matmul(seg.reshape(seg.shape[0], blocks * b, c), spec_t)
            out = scipy.fft.irfft(y, n=self.n_fft, axis=0)[:step]  # (step, blocks * B, C)
            v = out.reshape(step, blocks, b, c).transpose(1, 0, 2, 3).reshape(blocks * step, b, c)[:n] + bias
            x = np.maximum(v, self.slope * v) + x  # leaky ReLU (0 < slope < 1), residual
        return np.ascontiguousarray(x.transpose(1, 2, 0))


def support_groups(kern: np.ndarray, overhead: int = 20000) -> list[tuple[int, int, int, int]]:
    """(bins, W) kernels -> [(bin_lo, bin_hi, col_lo, col_hi)] covering all bins in order,
    each group's columns spanning every non-zero of its bins, chosen (dynamic programming)
    to minimise multiplies plus ``overhead`` per group (one more small matrix product)."""
    nz = np.abs(kern) > 0
    n = kern.shape[0]
    lo = np.array([int(np.argmax(r)) if r.any() else 0 for r in nz])
    hi = np.array([len(r) - int(np.argmax(r[::-1])) if r.any() else 1 for r in nz])
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, int)
    for b in range(1, n + 1):
        for a in range(b):
            cost = best[a] + (b - a) * (hi[a:b].max() - lo[a:b].min()) + overhead
            if cost < best[b]:
                best[b], cut[b] = cost, a
    out, b = [], n
    while b > 0:
        a = int(cut[b])
        out.append((a, b, int(lo[a:b].min()), int(hi[a:b].max())))
        b = a
    return out[::-1]


def toeplitz_matrix(w: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """A 1-channel conv with kernel w (n_in + n_out - 1 taps, n_out - 1 zeros padded each
    side) as an (n_in, n_out) matrix: y[o] = sum_n x[n] w[n + n_out - 1 - o]."""
    if len(w) != n_in + n_out - 1:
        raise ValueError("Toeplitz kernel length must be n_in + n_out - 1")
    idx = np.arange(n_in)[:, None] + (n_out - 1) - np.arange(n_out)[None, :]
    return np.ascontiguousarray(np.asarray(w, np.float32)[idx])


def _alwa_one(act: np.ndarray, roll: int, bps: int) -> float:
    """reduce_alwa for one frame without copying: the same numbers as rolling the
    (384,) distribution by ``roll`` and reducing it (the live path's per-hop cost)."""
    n = act.shape[0]
    j = int(act.argmax())  # index before the roll
    k = (j + roll) % n  # index after it
    idx = np.clip(np.arange(k - bps + 1, k + bps), 0, n - 1)  # clipped like reduce_alwa
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

    def __init__(
        self, lookahead_ms: float = 100.0, threads: int = 1, backend: str = "onnx", weights: str | None = None
    ) -> None:
        """weights: see PestoModel ('sung' when shipped, else 'mir-1k_g7')."""
        self.model = PestoModel(threads=threads, backend=backend, lookahead_ms=lookahead_ms, weights=weights)
        self.width = self.model.width
        self.mirror = self.model.mirror
        self.live = self.model.live  # real samples per window
        self.delay_samples = self.width // 2 - self.mirror
        self._win = np.zeros((1, self.live), np.float32)  # the real past; the future is implied zeros

    def reset(self) -> None:
        self._win[:] = 0.0

    def process(self, hop: np.ndarray) -> tuple[float, float]:
        """hop: (160,) float32 at 16 kHz -> (f0 Hz, confidence)."""
        w = self._win[0]
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
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            idx = (np.arange(s, e)[:, None] + 1) * HOP + np.arange(self.live)[None, :]
            frames = padded[idx]
            midi, c = self.model(frames)
            f0[s:e] = 440.0 * 2 ** ((midi - 69) / 12)
            conf[s:e] = c
        return f0, conf

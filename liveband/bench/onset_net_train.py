"""Training of the onset net (``engine.pitch.onset_net``) on generated sung clips (issue 18).

Data: fresh sung clips from the corpus's own generator (``liveband.bench.sung_corpus``)
with voice, phonation, syllable, tempo, condition and vibrato drawn at random per clip;
seeds from ``SEED_BASE``, apart from the bench's dev (1000-1041) and held-out (5000-5041)
seeds and from the PESTO fine-tune's (20000-40000+). Each clip goes through the live
front end (``HumTracker``'s DC block and resampler) and ``FrameFeatures`` frame by frame,
so training sees exactly what the live net sees.

Targets per 5 ms frame (its newest sample): the class of the note sounding there by the
corpus's truth (0: none; a note runs from its vowel onset to its voicing's end) and
whether a note began in the last ``ONSET_S``. Loss: cross-entropy plus half the onset
output's binary cross-entropy, on random 1.5 s crops, AdamW with a cosine schedule.

It lives beside the benches because it is built on their synthetic corpora, which the
running app never imports (tests/test_layering.py); ``liveband train-onset-net`` runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.pitch.onset_net import FRAME, LOWEST, N_CLASSES, N_FEATURES, SR, FrameFeatures
from engine.pitch.resample import StreamResampler

SEED_BASE = 200000
CHUNK = 800
ONSET_S = 0.03
VOICES = ("male", "female", "child")
PHONATIONS = ("modal", "breathy", "pressed")
TEMPOS = (60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0)
VIBRATO = (20.0, 50.0, 80.0, 100.0)


@dataclass(frozen=True)
class OnsetNetConfig:
    clips: int = 1600
    seed: int = 0  # the crops drawn and the initial weights (the clips are fixed)
    hidden_in: int = 192
    hidden: int = 128
    minutes: float = 25.0  # training time (the schedule runs to it)
    lr: float = 2e-3
    batch: int = 32
    crop_frames: int = 300

    def __post_init__(self) -> None:
        if self.clips < 1 or self.hidden_in < 1 or self.hidden < 1 or self.batch < 1 or self.crop_frames < 10:
            raise ValueError("clips, sizes, batch and crop must be positive (crop >= 10 frames)")
        if not self.minutes > 0 or not self.lr > 0:
            raise ValueError("minutes and lr must be positive")


def clip_specs(n: int) -> list:
    """``n`` sung-clip specs drawn at random: seeds SEED_BASE, SEED_BASE + 1, ..., each
    run of CHUNK drawn from a generator seeded with its first seed."""
    from liveband.bench.sung_corpus import CONDITIONS, SYLLABLES, SungSpec

    syllables = list(SYLLABLES) + ["mix", "mix"]
    out = []
    for start in range(SEED_BASE, SEED_BASE + n, CHUNK):
        rng = np.random.default_rng(start)
        for s in range(start, min(start + CHUNK, SEED_BASE + n)):
            out.append(
                SungSpec(
                    s,
                    str(rng.choice(VOICES)),
                    str(rng.choice(PHONATIONS)),
                    str(rng.choice(syllables)),
                    float(rng.choice(TEMPOS)),
                    14,
                    str(rng.choice(CONDITIONS)),
                    float(rng.choice(VIBRATO)),
                )
            )
    return out


def clip_frames(audio: np.ndarray, rate: int) -> np.ndarray:
    """A clip through the live front end -> (frames, N_FEATURES) float32."""
    a = float(np.exp(-2 * np.pi * 30.0 / rate))
    from scipy.signal import lfilter

    x = lfilter([1.0, -1.0], [1.0, -a], np.asarray(audio, np.float64)).astype(np.float32)
    y = StreamResampler(rate, SR).process(x)
    ff = FrameFeatures()
    n = len(y) // FRAME
    out = np.empty((n, N_FEATURES), np.float32)
    for i in range(n):
        out[i] = ff.push(y[i * FRAME : (i + 1) * FRAME])
    return out


def clip_targets(notes: list[tuple[int, float, float]], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (class per frame (frames,) int64, onset target (frames,) float32)."""
    t = (np.arange(frames) + 1) * FRAME / SR
    cls = np.zeros(frames, np.int64)
    onset = np.zeros(frames, np.float32)
    for pitch, on, off in notes:
        k = int(np.clip(pitch - LOWEST + 1, 1, N_CLASSES - 1))
        cls[(t >= on) & (t < off)] = k
        onset[(t >= on) & (t < on + ONSET_S)] = 1.0
    return cls, onset


def make_data(cfg: OnsetNetConfig, log: Callable[[str], None]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from liveband.bench.sung_corpus import make_sung

    data = []
    t0 = time.time()
    for k, spec in enumerate(clip_specs(cfg.clips)):
        clip = make_sung(spec)
        x = clip_frames(clip.audio, clip.sample_rate)
        data.append((x, *clip_targets(clip.notes, len(x))))
        if (k + 1) % 100 == 0:
            log(f"clips {k + 1}/{cfg.clips} ({time.time() - t0:.0f} s)")
    return data


def build(cfg: OnsetNetConfig):
    import torch
    from torch import nn

    class Net(nn.Module):
        """The layers ``engine.pitch.onset_net.OnsetNet`` runs (same names)."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Sequential(nn.Linear(N_FEATURES, cfg.hidden_in), nn.ReLU())
            self.gru = nn.GRU(cfg.hidden_in, cfg.hidden, batch_first=True)
            self.cls = nn.Linear(cfg.hidden, N_CLASSES)
            self.ons = nn.Linear(cfg.hidden, 1)

        def forward(self, x):  # (B, T, N_FEATURES) -> (B, T, N_CLASSES), (B, T)
            y, _ = self.gru(self.inp(x))
            return self.cls(y), self.ons(y)[..., 0]

    torch.manual_seed(cfg.seed)
    return Net()


def train(cfg: OnsetNetConfig, out: Path, log: Callable[[str], None], init: Path | None = None) -> dict:
    """Make the data, train for ``cfg.minutes``, write the weights (safetensors, via a
    temporary file renamed into place) -> a small report."""
    import torch
    from safetensors.torch import load_file, save_file
    from torch import nn

    data = make_data(cfg, log)
    net = build(cfg)
    if init is not None:
        net.load_state_dict(load_file(str(init)))
    opt = torch.optim.AdamW(net.parameters(), cfg.lr, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    xs = [torch.from_numpy(d[0]) for d in data]
    cs = [torch.from_numpy(d[1]) for d in data]
    os_ = [torch.from_numpy(d[2]) for d in data]
    total = cfg.minutes * 60
    t0 = time.time()
    step = 0
    loss_v = acc = 0.0
    while (elapsed := time.time() - t0) < total:
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * elapsed / total)) + 5e-5
        idx = rng.integers(0, len(xs), cfg.batch)
        starts = [int(rng.integers(0, max(1, len(xs[i]) - cfg.crop_frames))) for i in idx]
        m = min(min(len(xs[i]) - s, cfg.crop_frames) for i, s in zip(idx, starts))
        xb = torch.stack([xs[i][s : s + m] for i, s in zip(idx, starts)])
        cb = torch.stack([cs[i][s : s + m] for i, s in zip(idx, starts)])
        ob = torch.stack([os_[i][s : s + m] for i, s in zip(idx, starts)])
        logits, onset = net(xb)
        loss = nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES), cb.reshape(-1))
        loss = loss + 0.5 * nn.functional.binary_cross_entropy_with_logits(onset, ob)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        loss_v, acc = float(loss.item()), float((logits.argmax(-1) == cb).float().mean().item())
        if step % 200 == 0:
            log(f"step {step} ({elapsed:.0f} s): loss {loss_v:.4f}, frame accuracy {acc:.4f}")
    tmp = out.with_name(out.name + ".tmp")
    save_file({k: v.detach().contiguous().float() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(out)
    return {"steps": step, "clips": cfg.clips, "last_loss": round(loss_v, 4), "last_frame_accuracy": round(acc, 4)}

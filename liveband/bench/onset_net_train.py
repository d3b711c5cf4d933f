"""Training of the onset net (``engine.pitch.onset_net``) on generated sung clips (issue 18).

Data: fresh sung clips from the corpus's own generator (``liveband.bench.sung_corpus``)
with voice, phonation, syllable, tempo, condition and vibrato drawn at random per clip;
seeds from ``SEED_BASE``, apart from the bench's dev (1000-1041) and held-out (5000-5041)
seeds and from the PESTO fine-tune's (20000-40000+). Beside them, hums from the other
synthesiser (``liveband.bench.synth_hum``: sine harmonics through a fixed vowel, where
the sung corpus has a glottal pulse through changing formants), seeds from
``HUM_SEED_BASE`` (the hum bench's are 1-4, 21 and 101-112), with register, tempo, vowel,
scoops, vibrato, level, noise and reverb drawn at random: a net trained on one voice
learns that voice (docs/hum.md, hum29). ``hum_mix`` of each batch's crops are hums. Each clip goes through the live
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
from typing import Any

import numpy as np

from engine.pitch.live import DcBlock
from engine.pitch.onset_net import FRAME, LOWEST, N_CLASSES, N_FEATURES, SR, FrameFeatures
from engine.pitch.resample import StreamResampler

SEED_BASE = 200000
CHUNK = 800
HUM_SEED_BASE = 300000
HUM_CHUNK = 400
ONSET_S = 0.03
VOICES = ("male", "female", "child")
PHONATIONS = ("modal", "breathy", "pressed")
TEMPOS = (60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0)
VIBRATO = (20.0, 50.0, 80.0, 100.0)


@dataclass(frozen=True)
class OnsetNetConfig:
    clips: int = 1600
    hum_clips: int = 800
    hum_mix: float = 0.35  # the share of each batch's crops drawn from the hums
    seed: int = 0  # the crops drawn and the initial weights (the clips are fixed)
    hidden_in: int = 192
    hidden: int = 128
    minutes: float = 25.0  # training time (the schedule runs to it)
    lr: float = 2e-3
    batch: int = 32
    crop_frames: int = 300

    def __post_init__(self) -> None:
        if self.hum_clips < 0 or not 0.0 <= self.hum_mix < 1.0 or (self.hum_mix > 0 and self.hum_clips == 0):
            raise ValueError("hum_clips must be >= 0 and hum_mix in [0, 1) (0 without hums)")
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


def hum_clip_specs(n: int) -> list:
    """``n`` hum specs drawn at random (48 kHz, as a microphone delivers): seeds
    HUM_SEED_BASE, HUM_SEED_BASE + 1, ..., each run of HUM_CHUNK drawn from a generator
    seeded with its first seed."""
    from liveband.bench.synth_hum import VOWELS, HumSpec

    out = []
    for start in range(HUM_SEED_BASE, HUM_SEED_BASE + n, HUM_CHUNK):
        rng = np.random.default_rng(start)
        for s in range(start, min(start + HUM_CHUNK, HUM_SEED_BASE + n)):
            snr = float(rng.choice([0, 0, 0, 25, 20, 15, 10, 5]))  # 0: clean
            rt60 = float(rng.uniform(0.3, 1.2)) if rng.random() < 0.3 else None
            register = str(rng.choice(["male", "female"]))
            tempo = float(rng.choice(TEMPOS))
            vowel = str(rng.choice(list(VOWELS)))
            out.append(
                HumSpec(
                    s,
                    register,
                    tempo,
                    14,
                    noise_snr_db=snr or None,
                    reverb_rt60=rt60,
                    vowel=vowel,
                    sample_rate=48000,
                    scoop_prob=float(rng.uniform(0.15, 0.6)),
                    vibrato_cents=float(rng.uniform(10, 80)),
                    level_db=float(rng.uniform(-30, -8)),
                )
            )
    return out


def clip_frames(audio: np.ndarray, rate: int) -> np.ndarray:
    """A clip through the live front end -> (frames, N_FEATURES) float32."""
    y = StreamResampler(rate, SR).process(DcBlock(rate).process(np.asarray(audio, np.float32)))
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


def make_data(
    cfg: OnsetNetConfig, log: Callable[[str], None]
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """-> (sung clips, hums), each clip (features, classes, onset targets)."""
    from liveband.bench.sung_corpus import make_sung
    from liveband.bench.synth_hum import make_hum

    sung: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    hums: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    t0 = time.time()
    todo: list[tuple[Any, Callable[[Any], Any], list]] = [(spec, make_sung, sung) for spec in clip_specs(cfg.clips)]
    todo += [(spec, make_hum, hums) for spec in hum_clip_specs(cfg.hum_clips)]
    for k, (spec, make, into) in enumerate(todo):
        clip = make(spec)
        x = clip_frames(clip.audio, clip.sample_rate)
        into.append((x, *clip_targets(clip.notes, len(x))))
        if (k + 1) % 100 == 0:
            log(f"clips {k + 1}/{len(todo)} ({time.time() - t0:.0f} s)")
    return sung, hums


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

    sung, hums = make_data(cfg, log)
    data = sung + hums
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
        n_hum = int(rng.binomial(cfg.batch, cfg.hum_mix)) if hums else 0
        idx = np.concatenate([rng.integers(len(sung), len(data), n_hum), rng.integers(0, len(sung), cfg.batch - n_hum)])
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
    return {
        "steps": step,
        "clips": cfg.clips,
        "hum_clips": cfg.hum_clips,
        "last_loss": round(loss_v, 4),
        "last_frame_accuracy": round(acc, 4),
    }

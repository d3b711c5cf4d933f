"""Supervised fine-tuning of PESTO's encoder on the generated sung corpus (issue 18).

Why: the hum tracker's misses on sung input are PESTO's own (its pitch in a note's first
~30 ms, and at 0-2 dB local SNR within 50 cents on only ~36 % of hops); rules downstream
cannot recover them. PESTO was trained self-supervised on MIR-1K; here the same encoder
(same layers and shapes, so the ONNX live path and its cost stay as they are) is trained
on clips whose f0 is known exactly, heard through the exact live front end.

Input: each clip goes through ``HumTracker``'s own chain (DC block, streaming resampler,
10 ms hops) and PESTO's streaming CQT with the tracker's look-ahead, so every training
frame is what the live tracker computes at that hop. Only the CQT (fixed kernels) is
computed once per clip; the encoder trains on its log power.

Target: the truth f0 ``pitch_at_ms`` before the hop's newest sample, as a Gaussian over
the 384 output bins after PESTO's learnt shift (the bins its ALWA readout reads);
cross-entropy, hops in a note's first ``onset_ms`` weighted ``onset_weight``. The default
is the window's analysis centre (28 ms back). Naming the pitch nearer "now" (10 or 20 ms
back, where the live path refines it on the newest 20 ms) was tried: no better on the
dev bench, and at 10 ms worse at 5 dB (the long low-frequency kernels cannot resolve it).
The voicing head (113 weights) then learns the truth voicing at the newest sample by
binary cross-entropy, so quiet voiced hops in noise clear the gate more often.

Data: fresh dev-style sung clips (the corpus's own generator and conditions, seeds from
``FRESH_SEED_BASE``, disjoint from dev's 1000-1041 and held-out's 5000-5041) and a few
hum-corpus clips (seeds from ``HUM_SEED_BASE``, not the bench's 1-4 / 101-112), so the
old corpus is not forgotten. The dev clips themselves are left out by default
(``use_dev``) so that the dev bench still measures, and may tune, without having been
trained on. Validation: further fresh clips (``VAL_SEED_BASE``). Held-out clips are
never generated here.

It lives beside the benches because it is built on their synthetic corpora, which the
running app never imports (tests/test_layering.py); ``liveband train-pitch`` runs it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.pitch.tracker import HOP

FRESH_SEED_BASE = 20000
VAL_SEED_BASE = 40000
HUM_SEED_BASE = 30000
HELDOUT_SEEDS = range(5000, 5100)  # sung_corpus.specs('heldout'): base 5000, never used here


@dataclass(frozen=True)
class FinetuneConfig:
    seed: int = 0
    fresh_clips: int = 200  # new dev-style sung clips
    use_dev: bool = False  # also train on the 42 dev clips (then dev no longer tunes anything)
    hum_clips: int = 16  # hum-corpus-style clips (keeps the old corpus's voice in view)
    val_clips: int = 24
    epochs: int = 2
    batch: int = 64
    lr: float = 5e-4  # Adam, cosine-decayed to 0 (2e-4 learnt less)
    # truth f0 this long before the hop's newest sample: 28 ms is the window's analysis
    # centre at the tracker's 100 ms look-ahead (10 and 20 ms tried: no better on dev)
    pitch_at_ms: float = 28.0
    onset_ms: float = 30.0  # a note's first ms whose hops weigh ...
    onset_weight: float = 3.0  # ... this much more
    sigma_bins: float = 1.0  # the target's Gaussian width, in output bins (1/3 semitone)
    train_voicing: bool = True
    voicing_epochs: int = 4
    lookahead_ms: float = 100.0  # PestoTracker's default
    # the weights training starts from: 'mir-1k_g7' (as published), 'sung' (the shipped
    # fine-tune: a second round) or a .safetensors path
    init: str = "mir-1k_g7"
    # conditions drawn once more each beside the corpus's 7 (the tracker's misses are at low SNR)
    extra_conditions: tuple[str, ...] = ("snr5", "snr10")
    tempos: tuple[float, ...] = (60, 80, 100, 120, 140, 160, 180)  # BPM drawn from (fast: short notes)

    def __post_init__(self) -> None:
        from liveband.bench.sung_corpus import CONDITIONS

        if self.epochs < 0 or self.batch < 1 or not self.lr > 0:
            raise ValueError("epochs >= 0, batch >= 1 and lr > 0 are required")
        if self.fresh_clips < 0 or self.hum_clips < 0 or self.val_clips < 0:
            raise ValueError("clip counts must be >= 0")
        if self.init not in ("mir-1k_g7", "sung") and not self.init.endswith(".safetensors"):
            raise ValueError("init must be 'mir-1k_g7', 'sung' or a .safetensors file")
        if any(c not in CONDITIONS for c in self.extra_conditions):
            raise ValueError(f"extra conditions must be among {', '.join(CONDITIONS)}")
        if not self.tempos or any(not 40 <= t <= 240 for t in self.tempos):
            raise ValueError("tempos must be 40-240 BPM (at least one)")


@dataclass
class HopSet:
    """Per-hop training data: the CQT log power and the truth."""

    logpow: np.ndarray  # (H, 251) float32, ln |cqt|^2 as the live tracker computes it
    midi: np.ndarray  # (H,) float32 truth pitch at the target time, NaN where unvoiced
    voiced: np.ndarray  # (H,) bool, truth voicing at the hop's newest sample
    weight: np.ndarray  # (H,) float32, onset hops weighted up
    cond: np.ndarray  # (H,) object: the clip's condition ("clean", "snr5", "hum", ...)

    @staticmethod
    def concat(parts: list["HopSet"]) -> "HopSet":
        return HopSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in HopSet.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.midi)


class _Recorder:
    """A stand-in tracker that keeps the 16 kHz hops HumTracker hands it (the live chain's
    output) and names no pitch; ``HumTracker`` then gives each hop's clock time."""

    name = "pesto"

    def __init__(self, delay_samples: int) -> None:
        self.delay_samples = delay_samples
        self.hops: list[np.ndarray] = []

    def reset(self) -> None:
        self.hops.clear()

    def process(self, hop: np.ndarray) -> tuple[float, float]:
        self.hops.append(np.array(hop, np.float32))
        return 0.0, 0.0

    def batch(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - unused
        raise NotImplementedError


def live_hops(audio: np.ndarray, rate: int, delay_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """A clip through the live chain -> (16 kHz audio (H * HOP,), input-clock time in s of
    each hop's newest sample (H,)), fed in 5 ms blocks as the bench does."""
    from engine.pitch.live import HumTracker

    rec = _Recorder(delay_samples)
    ht = HumTracker(rec, input_rate=rate, use_periodicity=False, keep_history=False, onset_net=False)
    block = max(1, rate // 200)
    for i in range(0, len(audio), block):
        ht.feed(audio[i : i + block])
    times = np.array([ht._hop_to_clock(h) / ht.clock_rate for h in range(len(rec.hops))])
    return (np.concatenate(rec.hops) if rec.hops else np.zeros(0, np.float32)), times


def clip_hops(model, clip, cfg: FinetuneConfig, cond: str) -> HopSet:
    """One clip (SungClip or HumClip) -> its HopSet, via the exact live front end."""
    import torch

    audio16, t_now = live_hops(clip.audio, clip.sample_rate, model.width // 2 - model.mirror)
    n = len(t_now)
    padded = np.concatenate([np.zeros(model.live, np.float32), audio16])
    idx = (np.arange(n)[:, None] + 1) * HOP + np.arange(model.live)[None, :]
    with torch.inference_mode():
        chunks = [torch.from_numpy(padded[idx[s : s + 512]]) for s in range(0, n, 512)]
        power = torch.cat([model.torch_module.power(c) for c in chunks])
    t_p = t_now - cfg.pitch_at_ms / 1000
    f0 = clip.f0_at(np.clip(t_p, 0, None)) * (t_p >= 0)
    midi = np.where(f0 > 0, 69 + 12 * np.log2(np.maximum(f0, 1e-3) / 440.0), np.nan).astype(np.float32)
    voiced = (clip.f0_at(t_now) > 0) & (t_now >= 0)
    weight = np.ones(n, np.float32)
    for _, on, _off in clip.notes:
        weight[(t_p >= on) & (t_p < on + cfg.onset_ms / 1000)] = cfg.onset_weight
    return HopSet(power.log().numpy().astype(np.float32), midi, voiced, weight, np.full(n, cond, object))


def training_clips(cfg: FinetuneConfig, part: str) -> list[tuple[object, str]]:
    """'train' -> dev + fresh sung + hum clips; 'val' -> fresh sung clips (other seeds).
    Each as (spec, condition label); make them with ``make_clip``."""
    from liveband.bench import sung_corpus
    from liveband.bench.synth_hum import HumSpec

    rng = np.random.default_rng(cfg.seed + (0 if part == "train" else 7919))
    out: list[tuple[object, str]] = []
    if part == "train" and cfg.use_dev:
        out += [(s, s.condition) for s in sung_corpus.specs("dev")]
    count, base = (cfg.fresh_clips, FRESH_SEED_BASE) if part == "train" else (cfg.val_clips, VAL_SEED_BASE)
    # the low-SNR conditions, where the tracker fails, twice as often as the others
    conds = list(sung_corpus.CONDITIONS) + list(cfg.extra_conditions)
    for i in range(count):
        seed = base + 1000 * cfg.seed + i
        if seed in HELDOUT_SEEDS:
            raise ValueError("fresh seeds must not meet the held-out seeds")
        spec = sung_corpus.SungSpec(
            seed,
            str(rng.choice(list(sung_corpus.REGISTERS))),
            str(rng.choice(list(sung_corpus.PHONATION))),
            str(rng.choice(list(sung_corpus.SYLLABLES) + ["mix"])),
            float(rng.choice(list(cfg.tempos))),
            14,
            str(rng.choice(conds)),
            float(rng.choice([20, 50, 80, 100])),
        )
        out.append((spec, spec.condition))
    if part == "train":
        for i in range(cfg.hum_clips):
            noisy = i % 3 == 1
            room = i % 3 == 2
            hs = HumSpec(
                HUM_SEED_BASE + 1000 * cfg.seed + i,
                "male" if i % 2 else "female",
                float(rng.choice([80, 110, 140])),
                9,
                noise_snr_db=15 if noisy else (25 if room else None),
                reverb_rt60=0.5 if room else None,
                vowel=str(rng.choice(["mm", "ah"])),
                sample_rate=48000,
            )
            out.append((hs, "hum"))
    return out


def make_clip(spec: object):
    from liveband.bench import sung_corpus
    from liveband.bench.synth_hum import HumSpec, make_hum

    if isinstance(spec, HumSpec):
        return make_hum(spec)
    return sung_corpus.make_sung(spec)  # type: ignore[arg-type]


def build_hops(model, cfg: FinetuneConfig, part: str, log: Callable[[str], None] = print) -> HopSet:
    specs = training_clips(cfg, part)
    parts = []
    t0 = time.monotonic()
    for k, (spec, cond) in enumerate(specs):
        parts.append(clip_hops(model, make_clip(spec), cfg, cond))
        if (k + 1) % 20 == 0 or k + 1 == len(specs):
            log(f"{part}: {k + 1}/{len(specs)} clips, {sum(map(len, parts))} hops, {time.monotonic() - t0:.0f} s")
    return HopSet.concat(parts)


def soft_targets(midi: np.ndarray, roll: int, n_out: int, sigma: float) -> np.ndarray:
    """(B,) MIDI -> (B, n_out) Gaussian targets over PESTO's output bins *before* its
    roll: output bin j reads as MIDI (j + roll) / bins_per_semitone (3)."""
    centre = 3.0 * midi - roll
    j = np.arange(n_out)[None, :]
    g = np.exp(-0.5 * ((j - centre[:, None]) / sigma) ** 2)
    return (g / g.sum(-1, keepdims=True)).astype(np.float32)


def encoder_logits(enc, logpow):
    """(B, 251) log power -> (B, 384) logits (the live path's softmax input)."""
    x = logpow[:, None, 16:-16]  # PESTO's crop (checked against the checkpoint in PestoModel)
    return enc.fc(enc.features(x)[:, None, :])[:, 0, :]


def hop_accuracy(model, hops: HopSet, batch: int = 512) -> dict[str, float]:
    """Share of voiced hops whose ALWA pitch is within 50 cents of the truth, per
    condition, and on onset hops alone (the number this training is for)."""
    import torch

    from engine.pitch.pesto import reduce_alwa

    enc = model.torch_module.encoder
    sel = np.flatnonzero(~np.isnan(hops.midi))
    est = np.empty(len(sel))
    with torch.inference_mode():
        for s in range(0, len(sel), batch):
            i = sel[s : s + batch]
            act = torch.softmax(encoder_logits(enc, torch.from_numpy(hops.logpow[i])), -1).numpy()
            est[s : s + batch] = reduce_alwa(np.roll(act, model.roll, axis=-1), model.bps)
    ok = np.abs(est - hops.midi[sel]) < 0.5
    out = {"all": float(ok.mean())}
    onset = hops.weight[sel] > 1
    out["onset"] = float(ok[onset].mean()) if onset.any() else math.nan
    for c in sorted(set(hops.cond[sel])):
        out[str(c)] = float(ok[hops.cond[sel] == c].mean())
    return {k: round(v, 4) for k, v in out.items()}


def voicing_rates(model, hops: HopSet, threshold: float = 0.65) -> dict[str, float]:
    """Share of truly voiced / unvoiced hops whose voicing confidence clears the gate."""
    import torch

    with torch.inference_mode():
        conf = model.torch_module.voicing(torch.from_numpy(hops.logpow).exp()).numpy()
    on = conf >= threshold
    snr5 = hops.cond == "snr5"
    out = {}
    for name, sel in (
        ("voiced", hops.voiced),
        ("unvoiced", ~hops.voiced),
        ("voiced_snr5", hops.voiced & snr5),
        ("unvoiced_snr5", ~hops.voiced & snr5),
    ):
        out[name] = round(float(on[sel].mean()), 4) if sel.any() else math.nan
    return out


def train_encoder(model, train: HopSet, cfg: FinetuneConfig, log: Callable[[str], None] = print) -> list[float]:
    """Cross-entropy fine-tuning of ``model``'s encoder in place; -> mean loss per epoch."""
    import torch

    enc = model.torch_module.encoder
    sel = np.flatnonzero(~np.isnan(train.midi))
    gen = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-len(sel) // cfg.batch)
    # cosine decay to 0: the last steps settle instead of jittering around the optimum
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    losses = []
    enc.train()
    for epoch in range(cfg.epochs):
        order = gen.permutation(sel)
        total, n, t0 = 0.0, 0, time.monotonic()
        for b, s in enumerate(range(0, len(order), cfg.batch)):
            i = np.sort(order[s : s + cfg.batch])
            loss = encoder_step(model, opt, train, i, cfg)
            sched.step()
            total += loss * len(i)
            n += len(i)
            if (b + 1) % 200 == 0:
                log(f"epoch {epoch + 1}: {n}/{len(order)} hops, loss {total / n:.4f}, {time.monotonic() - t0:.0f} s")
        losses.append(total / max(1, n))
        log(f"epoch {epoch + 1} done: loss {losses[-1]:.4f}")
    enc.eval()
    return losses


def encoder_step(model, opt, hops: HopSet, i: np.ndarray, cfg: FinetuneConfig) -> float:
    """One optimiser step on hops ``i`` (all voiced); -> the batch's loss before the step."""
    import torch

    enc = model.torch_module.encoder
    x = torch.from_numpy(hops.logpow[i])
    target = torch.from_numpy(soft_targets(hops.midi[i], model.roll, model.out_dim, cfg.sigma_bins))
    w = torch.from_numpy(hops.weight[i])
    logp = torch.log_softmax(encoder_logits(enc, x), -1)
    loss = ((-(target * logp).sum(-1)) * w).sum() / w.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_voicing(model, train: HopSet, cfg: FinetuneConfig, log: Callable[[str], None] = print) -> None:
    """Binary cross-entropy on the voicing head (113 weights: a strided conv over the CQT
    power and a linear layer); voiced and unvoiced hops weigh the same in total."""
    import torch

    voi = model.torch_module.voicing
    opt = torch.optim.Adam(voi.parameters(), lr=1e-3)
    power = torch.from_numpy(train.logpow).exp()
    y = torch.from_numpy(train.voiced.astype(np.float32))
    pos = float(y.mean())
    w = torch.where(y > 0, 0.5 / max(pos, 1e-3), 0.5 / max(1 - pos, 1e-3))
    gen = np.random.default_rng(cfg.seed + 1)
    voi.train()
    for epoch in range(cfg.voicing_epochs):
        total = 0.0
        for s in range(0, len(y), 512):
            i = torch.from_numpy(np.sort(gen.permutation(len(y))[:512]))
            p = voi(power[i]).clamp(1e-6, 1 - 1e-6)
            loss = -(w[i] * (y[i] * p.log() + (1 - y[i]) * (1 - p).log())).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        log(f"voicing epoch {epoch + 1}: loss {total / max(1, len(y) // 512):.4f}")
    voi.eval()


def trained_tensors(model, cfg: FinetuneConfig) -> dict[str, np.ndarray]:
    """The trained weights under the checkpoint's own names (``weights.load_pesto_sung``
    lays them over the shipped checkpoint)."""
    from engine.pitch.weights import ENCODER_NAMES

    enc = model.torch_module.encoder
    own = {k: v.detach().numpy().astype(np.float32) for k, v in enc.state_dict().items()}
    out = {ENCODER_NAMES[k]: own[k] for k in ENCODER_NAMES}
    # the voicing head too when trained, or when it came from a fine-tuned start (left out,
    # the loader would lay the published head under the started-from one)
    if cfg.train_voicing or cfg.init != "mir-1k_g7":
        for k, v in model.torch_module.voicing.state_dict().items():
            out[f"confidence.{k}"] = v.detach().numpy().astype(np.float32)
    return out


def run(cfg: FinetuneConfig, out: Path, log: Callable[[str], None] = print) -> dict:
    """Build the hop sets, fine-tune, report per-hop accuracy before/after, write ``out``."""
    import torch

    from engine.pitch.pesto import PestoModel
    from engine.pitch.weights import save_pesto_sung

    torch.manual_seed(cfg.seed)
    model = PestoModel(backend="torch", lookahead_ms=cfg.lookahead_ms, weights=cfg.init)
    train = build_hops(model, cfg, "train", log)
    val = build_hops(model, cfg, "val", log)
    report: dict = {"train_hops": len(train), "val_hops": len(val)}
    report["val_before"] = hop_accuracy(model, val)
    report["voicing_before"] = voicing_rates(model, val)
    log(f"val before: {report['val_before']} {report['voicing_before']}")
    report["loss"] = train_encoder(model, train, cfg, log)
    if cfg.train_voicing:
        train_voicing(model, train, cfg, log)
    report["val_after"] = hop_accuracy(model, val)
    report["voicing_after"] = voicing_rates(model, val)
    log(f"val after: {report['val_after']} {report['voicing_after']}")
    save_pesto_sung(out, trained_tensors(model, cfg), {"config": repr(cfg)})
    return report

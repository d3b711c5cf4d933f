"""A regenerable corpus of voice-like hums with exact truth (notes and frame pitch).

Each clip is built from a seeded random melody: a glottal-like harmonic source (spectral
tilt, jitter), a pitch contour with onset scoops, delayed vibrato and slow drift,
formant resonances for a hummed/sung vowel, breath noise, note-to-note level changes,
re-articulated repeated notes, and optionally background noise and room reverb. The
truth is exact: note onsets/offsets/pitches and the f0 of every sample.

Nothing is stored: ``corpus()`` regenerates identical clips from the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve, lfilter

MAJOR = (0, 2, 4, 5, 7, 9, 11)
# (F1, F2, F3) Hz: a closed-mouth hum "mm", "oo", "ah"
VOWELS = {"mm": (280, 1000, 2400), "oo": (320, 800, 2400), "ah": (700, 1200, 2600)}


@dataclass(frozen=True)
class HumSpec:
    seed: int
    register: str = "male"  # "male" (A2-C4 tonic area) or "female" (A3-C5)
    tempo: float = 100.0  # BPM; notes are 8ths to dotted quarters
    n_notes: int = 10
    noise_snr_db: float | None = None  # background noise, None for clean
    reverb_rt60: float | None = None  # seconds of room reverb, None for dry
    vowel: str = "mm"
    sample_rate: int = 16000
    scoop_prob: float = 0.35
    vibrato_cents: float = 35.0
    level_db: float = -14.0  # average note peak level, dBFS


@dataclass
class HumClip:
    spec: HumSpec
    audio: np.ndarray  # (N,) float32 in -1..1
    sample_rate: int
    notes: list[tuple[int, float, float]]  # (midi pitch, onset s, offset s), truth
    f0: np.ndarray  # (N,) Hz per sample, 0 where unvoiced
    name: str = field(default="")

    def f0_at(self, times_s: np.ndarray) -> np.ndarray:
        """Truth f0 (Hz, 0 = unvoiced) at the given times."""
        idx = np.clip((np.asarray(times_s) * self.sample_rate).astype(int), 0, len(self.f0) - 1)
        return self.f0[idx]


def _resonator(x: np.ndarray, f: float, bw: float, sr: int) -> np.ndarray:
    r = np.exp(-np.pi * bw / sr)
    a = [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
    return lfilter([1.0 - r], a, x)


def _melody(rng: np.random.Generator, spec: HumSpec) -> list[tuple[int, float, float, float]]:
    """-> (pitch, onset s, offset s, level dB) with gaps, legato and repeated notes."""
    tonic = int(rng.integers(45, 52)) if spec.register == "male" else int(rng.integers(57, 64))
    scale = [tonic + o + 12 * k for k in (-1, 0, 1) for o in MAJOR]
    lo, hi = tonic - 3, tonic + 14
    scale = [p for p in scale if lo <= p <= hi]
    beat = 60.0 / spec.tempo
    t = 0.3 + rng.uniform(0, 0.1)
    idx = int(np.argmin([abs(p - tonic - 4) for p in scale]))
    notes: list[tuple[int, float, float, float]] = []
    for n in range(spec.n_notes):
        step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3], p=[0.1, 0.2, 0.15, 0.1, 0.2, 0.1, 0.06, 0.05, 0.04]))
        idx = int(np.clip(idx + step, 0, len(scale) - 1))
        dur = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0], p=[0.3, 0.3, 0.2, 0.1, 0.1]))
        dur = max(dur, 0.16)
        # repeated notes must be re-articulated: a gap; other notes: legato or gap
        gap = float(rng.choice([0.0, 0.05, 0.12]))
        if notes and scale[idx] == notes[-1][0]:
            gap = max(gap, 0.08)
        t += gap
        level = spec.level_db + float(rng.uniform(-5, 4))
        if gap == 0.0 and notes:
            # legato: the previous note runs right into this one (no dip in level)
            notes[-1] = (notes[-1][0], notes[-1][1], t, notes[-1][3])
        notes.append((scale[idx], t, t + dur - 0.03, level))
        t += dur
    return notes


def make_hum(spec: HumSpec) -> HumClip:
    """Synthesize one clip from its spec (deterministic for a given seed)."""
    rng = np.random.default_rng(spec.seed)
    sr = spec.sample_rate
    notes = _melody(rng, spec)
    total = notes[-1][2] + 0.5
    n = int(total * sr)
    cents = np.zeros(n)  # pitch contour in cents re A4... as midi * 100
    amp = np.zeros(n)
    voiced = np.zeros(n, bool)
    for k, (p, on, off, lev) in enumerate(notes):
        a, b = int(on * sr), int(off * sr)
        t = np.arange(b - a) / sr
        c = np.full(b - a, 100.0 * p)
        legato = k > 0 and notes[k - 1][2] == on
        legato_next = k + 1 < len(notes) and notes[k + 1][1] == off
        if rng.random() < spec.scoop_prob or legato:
            depth = -rng.uniform(60, 160) if not legato else 100.0 * (notes[k - 1][0] - p) * 0.5
            tau = rng.uniform(0.015, 0.03)
            c += depth * np.exp(-t / tau)
        vib_rate = rng.uniform(4.8, 6.2)
        fade = np.clip((t - 0.18) / 0.15, 0, 1)
        c += spec.vibrato_cents * rng.uniform(0.6, 1.2) * fade * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 6.28))
        drift = np.cumsum(rng.normal(0, 0.4, b - a))
        c += np.clip(drift, -12, 12) + rng.uniform(-12, 12)  # slightly out of tune, as people hum
        cents[a:b] = c
        att = rng.uniform(0.012, 0.025) if not legato else 1e-3
        rel = 0.03 if not legato_next else 1e-3
        env = np.minimum(1.0, t / att) * np.minimum(1.0, (t[-1] - t) / rel + 1e-9)
        if legato:  # glide the level from the previous note's instead of jumping
            env *= np.interp(t, [0, 0.04], [10 ** ((notes[k - 1][3] - lev) / 20), 1.0])
        env *= 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)  # swell
        amp[a:b] = 10 ** (lev / 20) * env
        voiced[a:b] = True
    f0 = np.where(voiced, 440.0 * 2 ** ((cents / 100.0 - 69) / 12), 0.0)
    # glottal-like source: harmonics with -12 dB/octave tilt and a little jitter
    jitter = 1.0 + 0.003 * lfilter([1.0], [1.0, -0.99], rng.normal(0, 0.1, n))
    phase = 2 * np.pi * np.cumsum(np.where(voiced, f0, 100.0) * jitter) / sr
    src = np.zeros(n)
    fsafe = np.where(voiced, f0, 100.0)
    for h in range(1, 40):
        mask = h * fsafe < 0.45 * sr
        if not mask.any():
            break
        src += mask * np.sin(h * phase) / h**1.7
    f1, f2, f3 = VOWELS[spec.vowel]
    voice = _resonator(src, f1, 80, sr) * 1.0 + _resonator(src, f2, 120, sr) * 0.5 + _resonator(src, f3, 200, sr) * 0.25
    voice /= np.max(np.abs(voice)) + 1e-9
    breath = lfilter([1, -0.9], [1], rng.normal(0, 1, n)) * 0.03
    x = (voice + breath) * amp
    if spec.reverb_rt60:
        ir_len = int(spec.reverb_rt60 * sr)
        ir = rng.normal(0, 1, ir_len) * np.exp(-6.9 * np.arange(ir_len) / ir_len)
        ir[0] = 0.0
        wet = fftconvolve(x, ir)[:n]
        x = x + 0.35 * wet * np.sqrt(np.sum(x**2) / (np.sum(wet**2) + 1e-12))
    if spec.noise_snr_db is not None:
        noise = lfilter([1.0], [1.0, -0.95], rng.normal(0, 1, n))  # brownish room noise
        noise += rng.normal(0, 0.3, n)
        sig_p = np.mean(x[voiced] ** 2)
        noise *= np.sqrt(sig_p / (np.mean(noise**2) * 10 ** (spec.noise_snr_db / 10)))
        x = x + noise
    peak = np.max(np.abs(x))
    if peak > 0.95:
        x *= 0.95 / peak
    name = (
        f"{spec.register}-{spec.tempo:.0f}bpm-s{spec.seed}"
        + (f"-snr{spec.noise_snr_db:.0f}" if spec.noise_snr_db is not None else "")
        + (f"-rt{spec.reverb_rt60:.1f}" if spec.reverb_rt60 else "")
    )
    return HumClip(
        spec, x.astype(np.float32), sr, [(p, on, off) for p, on, off, _ in notes], f0.astype(np.float32), name
    )


def make_speech_like(seed: int, seconds: float = 4.0, sample_rate: int = 16000) -> np.ndarray:
    """Talking, not humming: short syllables with gliding pitch, changing vowels and
    consonant noise bursts. (N,) float32. A tracker should not turn this into a melody."""
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = int(seconds * sr)
    x = np.zeros(n)
    t = 0.1
    base = rng.uniform(100, 200)
    while t < seconds - 0.3:
        dur = rng.uniform(0.08, 0.22)
        a, b = int(t * sr), int((t + dur) * sr)
        tt = np.arange(b - a) / sr
        f = base * 2 ** ((rng.uniform(-3, 3) + rng.uniform(-6, 6) * tt / dur) / 12)  # glide
        ph = 2 * np.pi * np.cumsum(f) / sr
        src = sum(np.sin(h * ph) / h**1.5 for h in range(1, 25))
        f1, f2, _ = VOWELS[str(rng.choice(list(VOWELS)))]
        syl = _resonator(src, f1 * rng.uniform(0.8, 1.3), 90, sr) + 0.5 * _resonator(
            src, f2 * rng.uniform(0.8, 1.4), 130, sr
        )
        env = np.sin(np.pi * tt / dur) ** 0.7
        x[a:b] += syl / (np.max(np.abs(syl)) + 1e-9) * env * 10 ** (rng.uniform(-20, -10) / 20)
        cons = int(rng.uniform(0.02, 0.06) * sr)
        if b + cons < n:
            x[b : b + cons] += rng.normal(0, 0.03, cons) * rng.uniform(0, 1)
        t += dur + rng.uniform(0.02, 0.12)
    return x.astype(np.float32)


def corpus(kind: str = "quick", sample_rate: int = 16000) -> list[HumClip]:
    """'quick': 4 short clips for tests; 'bench': 12 clips over registers, tempos,
    vowels, clean / noisy / reverberant."""
    specs: list[HumSpec] = []
    if kind == "quick":
        specs = [
            HumSpec(1, "male", 100, 8, sample_rate=sample_rate),
            HumSpec(2, "female", 120, 8, vowel="oo", sample_rate=sample_rate),
            HumSpec(3, "male", 90, 8, noise_snr_db=15, reverb_rt60=0.4, sample_rate=sample_rate),
            HumSpec(4, "female", 130, 8, noise_snr_db=12, vowel="ah", sample_rate=sample_rate),
        ]
    elif kind == "bench":
        # 12 clips, ~100 notes: both registers, three tempos, hummed "mm" and sung "ah",
        # clean / noisy (15 dB SNR) / room (0.5 s reverb + 25 dB SNR)
        seed = 100
        for reg in ("male", "female"):
            for tempo, cond, vowel in (
                (80, "clean", "mm"),
                (110, "clean", "ah"),
                (140, "clean", "mm"),
                (80, "noisy", "ah"),
                (110, "room", "mm"),
                (140, "noisy", "mm"),
            ):
                seed += 1
                specs.append(
                    HumSpec(
                        seed,
                        reg,
                        tempo,
                        9,
                        vowel=vowel,
                        sample_rate=sample_rate,
                        noise_snr_db=15 if cond == "noisy" else (25 if cond == "room" else None),
                        reverb_rt60=0.5 if cond == "room" else None,
                    )
                )
    else:
        raise ValueError("corpus kind must be 'quick' or 'bench'")
    return [make_hum(s) for s in specs]

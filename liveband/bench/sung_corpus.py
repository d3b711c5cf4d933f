"""A harder, regenerable corpus of sung lines with exact truth, for `liveband bench pitch`.

It is built to be unlike ``liveband.bench.synth_hum`` (the corpus the segmenter was tuned
on) so a score here says how the tracker meets real singing, not one synthesiser:

- a second voice model: a Rosenberg glottal-flow pulse train (differentiated for lip
  radiation) with per-voice open quotient and aspiration noise gated by the glottal
  opening (modal, breathy, pressed), through a cascade of formant resonators whose
  vowel changes per syllable (the hum corpus adds sine harmonics through a fixed vowel);
- syllables: vowels ("ah", "oo", "ee"), and consonant onsets "da"/"ta"/"la"/"doo":
  a plosive closure and burst (voiced or aspirated) or a liquid's level and F1 dip;
- melodies: fast passages (notes of 80-200 ms), grace notes and turns, repeated notes
  re-articulated with and without a gap, wide leaps, tempo 60-180 BPM, child / female /
  male ranges, vibrato up to +-100 cents on long notes, scoops and detuning;
- degradations: noise at 20/10/5 dB SNR, room reverb (RT60 0.3-1.2 s), a cheap laptop
  microphone's band-pass, an 8 kHz headset.

Truth: a note starts where its pitched vowel starts (after a consonant's closure and
burst; for a legato note, where the glide from the last note's pitch begins) and ends
where its voicing ends.
``split()`` gives the development clips and the held-out clips (disjoint seeds); nothing
is stored, every clip regenerates from its spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, resample_poly

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# (F1, F2, F3, F4) Hz for an adult male; female x1.12, child x1.25
VOWELS = {
    "ah": (730, 1090, 2440, 3400),
    "oo": (300, 870, 2240, 3300),
    "ee": (300, 2200, 2950, 3600),
    "oh": (500, 900, 2400, 3350),
}
SYLLABLES = ("ah", "oo", "da", "ta", "la", "doo")
# voice -> (tonic MIDI range, formant scale, open quotient, aspiration level)
REGISTERS = {"male": ((43, 50), 1.0), "female": ((55, 62), 1.12), "child": ((62, 68), 1.25)}
PHONATION = {"modal": (0.55, 0.02), "breathy": (0.75, 0.12), "pressed": (0.38, 0.01)}
CONDITIONS = ("clean", "snr20", "snr10", "snr5", "room", "laptop", "headset8k")


@dataclass(frozen=True)
class SungSpec:
    seed: int
    register: str = "female"  # "male", "female", "child"
    phonation: str = "modal"  # "modal", "breathy", "pressed"
    syllable: str = "da"  # one of SYLLABLES; "mix" picks per note
    tempo: float = 120.0  # BPM, 60-180
    n_notes: int = 14
    condition: str = "clean"  # one of CONDITIONS
    vibrato_cents: float = 50.0  # peak depth on long notes (up to 100)
    sample_rate: int = 48000

    def __post_init__(self) -> None:
        if self.register not in REGISTERS or self.phonation not in PHONATION:
            raise ValueError(f"unknown register/phonation {self.register!r}/{self.phonation!r}")
        if self.syllable not in SYLLABLES + ("mix",):
            raise ValueError(f"unknown syllable {self.syllable!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}")
        if not 40.0 <= self.tempo <= 220.0:
            raise ValueError(f"tempo must be 40-220 BPM, got {self.tempo}")

    @property
    def name(self) -> str:
        return f"{self.register}-{self.phonation}-{self.syllable}-{self.tempo:.0f}bpm-{self.condition}-s{self.seed}"


@dataclass
class SungClip:
    spec: SungSpec
    audio: np.ndarray  # (N,) float32 in -1..1 at ``sample_rate``
    sample_rate: int  # 8000 for the headset condition, else spec.sample_rate
    notes: list[tuple[int, float, float]]  # (MIDI pitch, onset s, offset s), truth
    f0: np.ndarray  # (N,) Hz per sample at ``sample_rate``, 0 where unvoiced
    name: str = field(default="")

    @property
    def clean(self) -> bool:
        return self.spec.condition == "clean"

    def f0_at(self, times_s: np.ndarray) -> np.ndarray:
        idx = np.clip((np.asarray(times_s) * self.sample_rate).astype(int), 0, len(self.f0) - 1)
        return self.f0[idx]


@dataclass
class _Note:
    pitch: int
    on: float  # truth onset (vowel start), s
    off: float  # truth offset, s
    syllable: str
    legato: bool  # joined to the previous note with no consonant and no gap
    dip: bool = False  # a re-articulation by a level dip only (same pitch, no gap)
    level_db: float = -14.0


def _melody(rng: np.random.Generator, spec: SungSpec) -> list[_Note]:
    lo_t, hi_t = REGISTERS[spec.register][0]
    tonic = int(rng.integers(lo_t, hi_t + 1))
    mode = MAJOR if rng.random() < 0.7 else MINOR
    scale = sorted({tonic + o + 12 * k for k in (-1, 0, 1, 2) for o in mode})
    scale = [p for p in scale if tonic - 5 <= p <= tonic + 17]
    beat = 60.0 / spec.tempo
    idx = int(np.argmin([abs(p - tonic - 4) for p in scale]))
    notes: list[_Note] = []
    t = 0.35 + float(rng.uniform(0, 0.1))
    durs = np.array([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0])  # in beats
    dur_p = np.array([0.18, 0.25, 0.12, 0.2, 0.1, 0.08, 0.07])
    while len(notes) < spec.n_notes:
        r = rng.random()
        group: list[tuple[int, float]] = []  # (scale index step, seconds)
        if r < 0.12 and len(notes) + 2 <= spec.n_notes:
            # grace note: a quick neighbour (60-100 ms) into the main note
            g = float(rng.uniform(0.08, 0.1))
            group = [(int(rng.choice([-1, 1])), g), (0, max(0.2, beat * float(rng.choice([1.0, 1.5]))))]
            group[1] = (-group[0][0], group[1][1])
        elif r < 0.2 and len(notes) + 4 <= spec.n_notes:
            # turn: upper, main, lower, main in quick notes
            q = max(0.08, min(0.2, beat / 4))
            group = [(1, q), (-1, q), (-1, q), (1, max(0.2, beat))]
        elif r < 0.32:
            # repeated note
            group = [(0, max(0.1, beat * float(rng.choice([0.5, 1.0]))))]
        elif r < 0.4:
            # wide leap (a fifth to an octave and a third)
            group = [(int(rng.choice([-7, -5, -4, 4, 5, 7, 9])), max(0.15, beat * float(rng.choice(durs))))]
        else:
            step = int(rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]))
            group = [(step, max(0.08, beat * float(rng.choice(durs, p=dur_p / dur_p.sum()))))]
        for step, dur in group:
            if len(notes) >= spec.n_notes:
                break
            idx = int(np.clip(idx + step, 0, len(scale) - 1))
            pitch = scale[idx]
            syl = spec.syllable if spec.syllable != "mix" else str(rng.choice(SYLLABLES))
            repeated = bool(notes) and notes[-1].pitch == pitch
            vowel_only = syl in ("ah", "oo")
            short = dur < 0.2
            # vowels run legato; a repeated vowel note is re-articulated by a dip or a gap
            legato = bool(notes) and vowel_only and not repeated and rng.random() < (0.85 if short else 0.6)
            dip = bool(notes) and vowel_only and repeated and rng.random() < 0.5
            if notes and not legato and not dip:
                gap = float(rng.choice([0.0, 0.03, 0.06])) if not vowel_only else float(rng.choice([0.04, 0.08]))
                if syl in ("da", "ta", "doo"):
                    gap = max(gap, 0.0)  # the consonant's closure is inside the note's slot
                t += gap
            lvl = -14.0 + float(rng.uniform(-6, 4))
            n = _Note(pitch, t, t + dur, syl, legato, dip, lvl)
            if notes and (legato or dip):
                notes[-1].off = t
            notes.append(n)
            t += dur
    # each note sounds a little short of its slot unless the next one joins it
    for k, n in enumerate(notes):
        joined = k + 1 < len(notes) and (notes[k + 1].legato or notes[k + 1].dip)
        if not joined:
            n.off = n.on + max(0.06, (n.off - n.on) * float(rng.uniform(0.8, 0.95)))
    return notes


def _rosenberg(phase: np.ndarray, oq: float) -> np.ndarray:
    """Glottal flow over one period; phase in [0, 1): rise for 2/3 of the open phase,
    fall for 1/3, then closed."""
    tp, tn = oq * 2 / 3, oq / 3
    g = np.zeros_like(phase)
    a = phase < tp
    g[a] = 0.5 * (1 - np.cos(np.pi * phase[a] / tp))
    b = (phase >= tp) & (phase < tp + tn)
    g[b] = np.cos(0.5 * np.pi * (phase[b] - tp) / tn)
    return g


def _resonate(x: np.ndarray, f: np.ndarray, bw: float, sr: int) -> np.ndarray:
    """A two-pole resonator whose centre follows ``f`` (per sample), run in 5 ms pieces."""
    out = np.empty_like(x)
    zi = np.zeros(2)
    piece = max(1, sr // 200)
    r = np.exp(-np.pi * bw / sr)
    for i in range(0, len(x), piece):
        fc = float(f[min(len(f) - 1, i + piece // 2)])
        a = [1.0, -2 * r * np.cos(2 * np.pi * fc / sr), r * r]
        out[i : i + piece], zi = lfilter([1.0 - r], a, x[i : i + piece], zi=zi)
    return out


def make_sung(spec: SungSpec) -> SungClip:
    """Synthesize one clip from its spec (deterministic for a given seed)."""
    rng = np.random.default_rng(spec.seed)
    sr = spec.sample_rate
    notes = _melody(rng, spec)
    n = int((notes[-1].off + 0.6) * sr)
    cents = np.full(n, np.nan)
    amp = np.zeros(n)
    burst = np.zeros(n)  # consonant noise envelope
    vowel_at = np.zeros(n, int)  # index into VOWELS per sample
    vowel_names = list(VOWELS)
    f1_dip = np.ones(n)  # "l": F1 pulled down
    for k, nt in enumerate(notes):
        a, b = int(nt.on * sr), int(nt.off * sr)
        t = np.arange(b - a) / sr
        c = np.full(b - a, 100.0 * nt.pitch) + float(rng.uniform(-20, 20))
        dur = nt.off - nt.on
        prev = notes[k - 1] if k else None
        if nt.legato and prev is not None:
            tau = float(rng.uniform(0.008, 0.02))
            c += 100.0 * (prev.pitch - nt.pitch) * np.exp(-t / tau)
        elif rng.random() < 0.35:
            c -= float(rng.uniform(40, 140)) * np.exp(-t / float(rng.uniform(0.012, 0.03)))  # scoop
        if dur > 0.3:
            depth = spec.vibrato_cents * float(rng.uniform(0.6, 1.0))
            fade = np.clip((t - 0.15) / 0.2, 0, 1)
            c += depth * fade * np.sin(2 * np.pi * float(rng.uniform(5.0, 6.8)) * t + float(rng.uniform(0, 6.3)))
        c += np.clip(np.cumsum(rng.normal(0, 0.3, b - a)), -10, 10)
        cents[a:b] = c
        att = 0.002 if nt.legato else float(rng.uniform(0.01, 0.03))
        env = np.minimum(1.0, t / att) * np.minimum(1.0, (dur - t) / 0.025 + 1e-9)
        env *= 1.0 + 0.1 * np.sin(2 * np.pi * float(rng.uniform(0.5, 2)) * t)
        if nt.dip:
            # re-articulated on the same pitch: a glottal dip of ~12-18 dB over 40-70 ms
            w = float(rng.uniform(0.04, 0.07))
            depth = 10 ** (-float(rng.uniform(12, 18)) / 20)
            env *= 1 - (1 - depth) * np.exp(-(((t - 0.0) / (w / 2)) ** 2))
        if nt.syllable == "la" and k:
            w = float(rng.uniform(0.04, 0.07))
            dipv = 10 ** (-float(rng.uniform(8, 14)) / 20)
            shape = np.exp(-((t / (w / 2)) ** 2))
            env *= 1 - (1 - dipv) * shape
            f1_dip[a:b] = 1 - 0.45 * shape
        amp[a:b] = 10 ** (nt.level_db / 20) * env
        vname = {"ah": "ah", "oo": "oo", "da": "ah", "ta": "ah", "la": "ah", "doo": "oo"}[nt.syllable]
        if nt.syllable == "ah" and rng.random() < 0.3:
            vname = str(rng.choice(["oh", "ee"]))
        vowel_at[a:b] = vowel_names.index(vname)
        if nt.syllable in ("da", "ta", "doo"):
            # closure (silence) then burst, placed before the vowel onset
            clo = float(rng.uniform(0.025, 0.05))
            bl = float(rng.uniform(0.006, 0.012)) if nt.syllable != "ta" else float(rng.uniform(0.02, 0.04))
            c0 = max(0, int((nt.on - clo - bl) * sr))
            b0 = int((nt.on - bl) * sr)
            amp[c0:a] = 0.0
            cents[c0:a] = np.nan
            burst[b0:a] = 10 ** ((nt.level_db - float(rng.uniform(6, 12))) / 20) * np.exp(
                -np.arange(a - b0) / max(1.0, (a - b0) / 3)
            )
    voiced = ~np.isnan(cents)
    f0 = np.where(voiced, 440.0 * 2 ** ((np.nan_to_num(cents) / 100.0 - 69) / 12), 0.0)
    # glottal source: Rosenberg pulses, differentiated (lip radiation), with jitter/shimmer
    oq, asp = PHONATION[spec.phonation]
    jitter = 1.0 + 0.004 * lfilter([1.0], [1.0, -0.98], rng.normal(0, 0.1, n))
    ph = np.cumsum(np.where(voiced, f0, 120.0) * jitter) / sr
    frac = ph - np.floor(ph)
    flow = _rosenberg(frac, oq)
    src = np.diff(flow, prepend=0.0) * sr / 2000.0
    src += asp * flow * rng.normal(0, 1, n)  # aspiration while the glottis is open
    scale = REGISTERS[spec.register][1]
    fm = np.array([VOWELS[v] for v in vowel_names])[vowel_at] * scale  # (n, 4)
    fm[:, 0] *= f1_dip
    # smooth the formant tracks (coarticulation, ~20 ms)
    kernel = np.ones(int(0.02 * sr)) / int(0.02 * sr)
    for j in range(4):
        fm[:, j] = np.convolve(fm[:, j], kernel, mode="same")
    x = src
    for j, bw in enumerate((90, 110, 170, 250)):  # a cascade, as in a formant synthesiser
        x = _resonate(x, fm[:, j], bw, sr)
    # unit level where voiced (a peak would follow the odd closure click instead)
    voice = x / (3.0 * np.sqrt(np.mean(x[voiced] ** 2)) + 1e-9)
    cons = lfilter([1, -0.5], [1], rng.normal(0, 1, n)) * burst
    out = voice * amp + cons
    out = _degrade(out, voiced, rng, spec)
    rate = sr
    if spec.condition == "headset8k":
        b, a_ = butter(6, 3400 / (sr / 2))
        out = resample_poly(lfilter(b, a_, out), 1, sr // 8000)
        f0 = f0[:: sr // 8000][: len(out)]
        rate = 8000
    peak = float(np.max(np.abs(out)))
    if peak > 0.95:
        out *= 0.95 / peak
    truth = [(nt.pitch, nt.on, nt.off) for nt in notes]
    return SungClip(spec, out.astype(np.float32), rate, truth, f0.astype(np.float32), spec.name)


def _degrade(x: np.ndarray, voiced: np.ndarray, rng: np.random.Generator, spec: SungSpec) -> np.ndarray:
    sr = spec.sample_rate
    cond = spec.condition
    snr: float | None
    if cond == "room":
        rt60 = float(rng.uniform(0.3, 1.2))
        ir_len = int(rt60 * sr)
        ir = rng.normal(0, 1, ir_len) * np.exp(-6.9 * np.arange(ir_len) / ir_len)
        ir[0] = 0.0
        wet = fftconvolve(x, ir)[: len(x)]
        x = x + 0.4 * wet * np.sqrt(np.sum(x**2) / (np.sum(wet**2) + 1e-12))
        snr = 30.0
    elif cond == "laptop":
        b, a = butter(2, [250 / (sr / 2), 5000 / (sr / 2)], btype="band")
        x = lfilter(b, a, x) * 1.5
        x = np.tanh(3 * x) / 3  # a cheap preamp's soft clipping
        snr = 25.0
    else:
        snr = {"snr20": 20.0, "snr10": 10.0, "snr5": 5.0}.get(cond)
    if snr is not None:
        noise = lfilter([1.0], [1.0, -0.9], rng.normal(0, 1, len(x))) + rng.normal(0, 0.5, len(x))
        sig_p = float(np.mean(x[voiced] ** 2)) if voiced.any() else 1e-6
        noise *= np.sqrt(sig_p / (np.mean(noise**2) * 10 ** (snr / 10)))
        x = x + noise
    return x


def specs(part: str) -> list[SungSpec]:
    """'dev' (tune on these) or 'heldout' (report, never tune): the same grid of voices,
    syllables, tempos and conditions, with disjoint seeds."""
    if part not in ("dev", "heldout"):
        raise ValueError("part must be 'dev' or 'heldout'")
    rng = np.random.default_rng(11 if part == "dev" else 29)
    base = 1000 if part == "dev" else 5000
    out = []
    i = 0
    for cond in CONDITIONS:
        for reg, phon, syl in (
            ("male", "modal", "da"),
            ("female", "breathy", "ah"),
            ("child", "pressed", "la"),
            ("female", "modal", "mix"),
            ("male", "breathy", "doo"),
            ("female", "pressed", "ta"),
        ):
            tempo = float(rng.choice([60, 80, 100, 120, 140, 160, 180]))
            vib = float(rng.choice([20, 50, 80, 100]))
            out.append(SungSpec(base + i, reg, phon, syl, tempo, 14, cond, vib))
            i += 1
    return out


def corpus(part: str) -> list[SungClip]:
    return [make_sung(s) for s in specs(part)]

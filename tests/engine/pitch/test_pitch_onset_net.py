"""The onset net: a learned front end that names a sung note from its first 10-30 ms.

Its features, its shipped weights on sung clips it was never trained on, the namer's
rules, and the segmenter's handling of its guesses (confirm, replace, withdraw)."""

import numpy as np
import pytest

from engine.pitch.live import HumTracker
from engine.pitch.onset_net import (
    FRAME,
    LAGS,
    LOWEST,
    N_BINS,
    N_CLASSES,
    SR,
    WEIGHTS_PATH,
    FrameFeatures,
    NetNamer,
    OnsetNet,
)
from engine.pitch.segmenter import NoteSegmenter, SegmenterConfig
from liveband.bench.pitch import first_heard_onsets
from liveband.bench.pitch_metrics import match_onsets
from liveband.bench.sung_corpus import SungSpec, make_sung


def _probs(cls: int, p: float) -> np.ndarray:
    out = np.full(N_CLASSES, (1 - p) / (N_CLASSES - 1))
    out[cls] = p
    return out


def _cls(midi: int) -> int:
    return midi - LOWEST + 1


# -- features -------------------------------------------------------------------------
def test_the_periodicity_features_peak_at_the_voice_period():
    ff = FrameFeatures()
    t = np.arange(SR // 5) / SR
    for f0 in (110.0, 220.0, 440.0):
        ff.reset()
        x = 0.3 * np.sign(np.sin(2 * np.pi * f0 * t)) * (np.abs(np.sin(2 * np.pi * f0 * t)) ** 0.5)
        for i in range(0, len(x) - FRAME + 1, FRAME):
            feats = ff.push(x[i : i + FRAME])
        lag = SR / f0
        for w in range(2):
            acf = feats[w * N_BINS : (w + 1) * N_BINS]
            # the first lag where it repeats fully is the period (not a multiple of it)
            best = int(np.argmin(np.abs(LAGS - lag)))
            assert acf[best] > 0.95
            assert acf[int(np.argmin(np.abs(LAGS - lag / 2)))] < 0.5


def test_silence_gives_no_periodicity_and_a_floor_level():
    ff = FrameFeatures()
    for _ in range(10):
        feats = ff.push(np.zeros(FRAME))
    assert np.all(np.isfinite(feats))
    assert np.abs(feats[: 2 * N_BINS]).max() < 1e-6
    assert feats[2 * N_BINS] < -1.5  # -120 dBFS, scaled


# -- weights --------------------------------------------------------------------------
def test_the_shipped_weights_load():
    net = OnsetNet.load()
    p, onset = net.step(np.zeros(2 * N_BINS + 5, np.float32))
    assert p.shape == (N_CLASSES,) and abs(p.sum() - 1) < 1e-6 and 0 <= onset <= 1


def test_damaged_or_foreign_weights_are_refused_with_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="cannot read onset net weights"):
        OnsetNet.load(bad)
    from safetensors.numpy import load_file, save_file

    w = load_file(str(WEIGHTS_PATH))
    w.pop("cls.bias")
    missing = tmp_path / "missing.safetensors"
    save_file(w, str(missing))
    with pytest.raises(ValueError, match="lack"):
        OnsetNet.load(missing)
    w = load_file(str(WEIGHTS_PATH))
    w["inp.0.weight"] = w["inp.0.weight"][:, :10].copy()
    shaped = tmp_path / "shaped.safetensors"
    save_file(w, str(shaped))
    with pytest.raises(ValueError, match="wrong shapes"):
        OnsetNet.load(shaped)


def _sung(seed: int, **kw):
    spec = SungSpec(seed, **{"register": "female", "syllable": "da", "tempo": 100.0, "condition": "clean", **kw})
    return make_sung(spec)


def _named_by_the_net(clip, namer: NetNamer) -> tuple[list, list]:
    """The net and ``namer`` over a clip -> (every guess as (pitch, seconds), the guesses
    at a true onset (within 50 ms, dated 15 ms back) with its pitch as (truth, guess))."""
    from liveband.bench.onset_net_train import clip_frames

    net = OnsetNet.load()
    named = []
    for i, x in enumerate(clip_frames(clip.audio, clip.sample_rate)):
        pitch = namer.step(*net.step(x))
        if pitch is not None:
            named.append((pitch, (i + 1) * FRAME / SR))
    truth = clip.notes
    pairs = match_onsets([on for _, on, _ in truth], [t - 0.015 for _, t in named])
    return named, [(truth[i], named[j]) for i, j in pairs if named[j][0] == truth[i][0]]


def test_the_net_names_unseen_sung_notes_soon_after_they_begin():
    # seeds far from the training clips (200000 and up) and the bench's
    clip = _sung(777, register="male", syllable="mix", n_notes=14)
    _, right = _named_by_the_net(clip, NetNamer(change_prob=0.9, change_frames=1))
    assert len(right) >= 0.8 * len(clip.notes)
    assert np.median([t - on for (_, on, _), (_, t) in right]) < 0.045


def test_the_net_names_the_other_synthesisers_hums_too():
    # a net that learnt one voice fails the other: the hum corpus's synthesiser (sine
    # harmonics through a fixed vowel), a seed apart from its training hums (300000 and up)
    # and the hum bench's
    from liveband.bench.synth_hum import HumSpec, make_hum

    clip = make_hum(HumSpec(777, "female", 110.0, 14, vowel="ah", sample_rate=48000))
    named, right = _named_by_the_net(clip, NetNamer())
    assert len(right) >= 0.85 * len(clip.notes) and len(named) <= len(clip.notes) + 2
    assert np.median([t - on for (_, on, _), (_, t) in right]) < 0.045


# -- the namer (pure logic) -----------------------------------------------------------
def test_the_namer_names_a_note_on_its_first_sure_frame_and_once():
    n = NetNamer(on_prob=0.9)
    assert n.step(_probs(0, 0.99), 0.0) is None
    assert n.step(_probs(_cls(60), 0.6), 0.2) is None  # unsure
    assert n.step(_probs(_cls(60), 0.95), 0.9) == 60
    assert all(n.step(_probs(_cls(60), 0.99), 0.1) is None for _ in range(20))


def test_the_namer_counts_how_long_it_has_heard_a_note_before_naming_it():
    n = NetNamer(on_prob=0.9)
    n.step(_probs(0, 0.9), 0.0)
    assert n.sounding == 0
    for _ in range(3):  # in noise: a note sounds, which one is unsure
        assert n.step(_probs(_cls(60), 0.4), 0.3) is None
    assert n.step(_probs(_cls(60), 0.95), 0.9) == 60 and n.sounding == 4
    n.step(_probs(0, 0.9), 0.0)
    assert n.sounding == 0


def test_the_namer_follows_a_legato_change_and_a_rest():
    n = NetNamer(on_prob=0.9, change_prob=0.9, change_frames=1, off_frames=2)
    assert n.step(_probs(_cls(60), 0.95), 0.9) == 60
    assert n.step(_probs(_cls(62), 0.8), 0.1) is None  # not sure yet
    assert n.step(_probs(_cls(62), 0.95), 0.1) == 62
    assert n.step(_probs(0, 0.9), 0.0) is None
    assert n.step(_probs(0, 0.9), 0.0) is None  # the note has ended
    assert n.step(_probs(_cls(62), 0.95), 0.9) == 62  # the same pitch again, after a rest


def test_the_namer_hears_a_re_articulation_by_its_attack_only():
    n = NetNamer(on_prob=0.9, attack_min_frames=4)
    assert n.step(_probs(_cls(57), 0.95), 0.9) == 57
    for _ in range(3):
        assert n.step(_probs(_cls(57), 0.95), 0.1) is None
    assert n.step(_probs(_cls(57), 0.95), 0.1) is None
    assert n.step(_probs(_cls(57), 0.95), 0.8) == 57  # a new attack on the same pitch
    assert n.step(_probs(_cls(57), 0.95), 0.9) is None  # ... heard once


# -- the segmenter's handling of a guess ----------------------------------------------
def _seg() -> NoteSegmenter:
    return NoteSegmenter(SegmenterConfig(early_cents=0.0, hint_lag_hops=1.5))


def _voiced(seg: NoteSegmenter, midi: float, hops: int) -> list:
    out = []
    for _ in range(hops):
        out += seg.step(440.0 * 2 ** ((midi - 69) / 12), 0.95, -20.0)
    return out


def test_a_guess_is_announced_at_once_and_kept_when_the_rules_agree():
    seg = _seg()
    for _ in range(10):
        seg.step(0.0, 0.0, -90.0)
    ev = seg.hint(64, 9.5)
    assert ev == [("on", 64, 8.0, ev[0][3])]
    later = _voiced(seg, 64.05, 12)
    assert not any(k == "off" for k, *_ in later)  # confirmed, still sounding
    assert seg.note is not None and seg.note.pitch == 64 and not seg.note.provisional


def test_a_wrong_guess_is_replaced_from_the_same_onset():
    seg = _seg()
    for _ in range(10):
        seg.step(0.0, 0.0, -90.0)
    seg.hint(63, 9.5)
    later = _voiced(seg, 65.0, 12)
    assert ("off", 63, 8.0, 0) in later  # withdrawn where it began
    ons = [e for e in later if e[0] == "on"]
    assert ons and ons[0][1] == 65 and ons[0][2] == 8.0


def test_a_guess_the_gate_never_hears_is_withdrawn():
    seg = _seg()
    for _ in range(10):
        seg.step(0.0, 0.0, -90.0)
    seg.hint(60, 9.5)
    out = []
    for _ in range(12):
        out += seg.step(0.0, 0.0, -90.0)
    assert out == [("off", 60, 8.0, 0)]
    assert seg.note is None and not seg.notes


def test_a_guess_ends_a_sounding_note_of_another_pitch_but_not_its_own():
    seg = _seg()
    for _ in range(5):
        seg.step(0.0, 0.0, -90.0)
    _voiced(seg, 60.0, 15)
    assert seg.note is not None and seg.note.pitch == 60
    assert seg.hint(60, seg.hop + 0.5) == []
    ev = seg.hint(62, seg.hop + 0.5)
    assert [k for k, *_ in ev] == ["off", "on"] and ev[1][1] == 62


def test_a_guess_is_dated_by_the_level_rise_as_the_rules_date_a_note():
    def guessed(level_date: bool) -> float:
        seg = NoteSegmenter(SegmenterConfig(early_cents=0.0, hint_lag_hops=1.5, hint_level_date=level_date))
        for _ in range(10):
            seg.step(0.0, 0.0, -90.0)
        for _ in range(3):  # the level is up (a consonant, a breathy start) before a pitch is sure
            seg.step(100.0, 0.0, -20.0)
        ev = seg.hint(64, seg.hop + 0.5)
        assert [k for k, *_ in ev] == ["on"]
        return ev[0][2]

    rose_at = 9.0  # the last quiet hop: the 20 ms level window spans 2 hops
    assert guessed(True) == rose_at
    assert guessed(False) == 12.5 - 1.5


def test_a_guess_is_dated_from_where_the_net_first_heard_a_note_sounding():
    def guessed(sounding_hops: float) -> float:
        cfg = SegmenterConfig(early_cents=0.0, hint_lag_hops=1.5, hint_sounding_hops=15.0, hint_level_date=False)
        seg = NoteSegmenter(cfg)
        for _ in range(13):
            seg.step(100.0, 0.0, -40.0)
        ev = seg.hint(64, seg.hop + 0.5, 0.98, sounding_hops)
        assert [k for k, *_ in ev] == ["on"]
        return ev[0][2]

    assert guessed(6.0) == 12.5 - 6.0  # sure only 60 ms on (a quiet note in noise)
    assert guessed(1.0) == 12.5 - 1.5  # sure at once: the usual lag
    assert guessed(20.0) == 12.5 - 1.5  # longer than a note's uncertain start: not believed


def test_a_legato_guess_is_dated_by_the_net_not_by_an_old_rise():
    seg = NoteSegmenter(SegmenterConfig(early_cents=0.0, hint_lag_hops=1.5))
    for _ in range(5):
        seg.step(0.0, 0.0, -90.0)
    _voiced(seg, 60.0, 15)  # the level rose at hop 5; a note sounds
    ev = seg.hint(62, seg.hop + 0.5)
    assert [k for k, *_ in ev] == ["off", "on"] and ev[1][2] == seg.hop + 0.5 - 1.5


# -- the live chain -------------------------------------------------------------------
def _run(ht: HumTracker, clip, block: int):
    for i in range(0, len(clip.audio), block):
        ht.feed(clip.audio[i : i + block])
    ht.feed(np.zeros(clip.sample_rate // 5, np.float32))
    ht.finish()
    return first_heard_onsets(ht.emitted, clip.sample_rate)[0]


def _latency(first, clip, clock_rate):
    truth = clip.notes
    pairs = match_onsets([on for _, on, _ in truth], [ev.time / clock_rate for ev, _ in first])
    return [at - truth[i][1] for i, j in pairs for ev, at in [first[j]] if ev.pitch == truth[i][0]]


def test_the_net_brings_sung_notes_out_sooner_than_the_rules_alone():
    clip = _sung(778, syllable="ah", n_notes=12)
    blk = clip.sample_rate // 200
    with_net = _latency(
        _run(HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True, onset_net=True), clip, blk),
        clip,
        clip.sample_rate,
    )
    rules = _latency(
        _run(HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True, onset_net=False), clip, blk),
        clip,
        clip.sample_rate,
    )
    assert len(with_net) >= len(clip.notes) - 2  # found, with the right pitch
    assert np.median(with_net) < np.median(rules) - 0.004


def test_the_net_hears_the_same_frames_whatever_the_block_size():
    clip = _sung(779, n_notes=8)
    a = HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True, onset_net=True)
    b = HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True, onset_net=True)
    _run(a, clip, 240)
    _run(b, clip, 1021)
    evs = lambda ht: [(e.pitch, e.on, e.time) for e, _ in ht.emitted]  # noqa: E731
    assert evs(a) == evs(b) and any(e[1] for e in evs(a))


def test_near_the_noise_floor_a_guess_needs_the_stricter_probability():
    seg = NoteSegmenter(SegmenterConfig(early_cents=0.0, hint_floor_db=8.0, hint_noisy_prob=0.995))
    for _ in range(200):  # steady noise at -40 dBFS: the floor climbs to it
        seg.step(100.0, 0.0, -40.0)
    seg.step(100.0, 0.0, -36.0)  # a quiet voice, 4 dB above the floor
    assert seg.hint(60, seg.hop + 0.5, 0.98) == []
    assert [k for k, *_ in seg.hint(60, seg.hop + 0.5, 0.999)] == ["on"]
    loud = NoteSegmenter(SegmenterConfig(early_cents=0.0, hint_floor_db=8.0, hint_noisy_prob=0.995))
    for _ in range(200):
        loud.step(100.0, 0.0, -40.0)
    loud.step(100.0, 0.0, -20.0)  # 20 dB above it: any guess the namer makes
    assert [k for k, *_ in loud.hint(60, loud.hop + 0.5, 0.98)] == ["on"]

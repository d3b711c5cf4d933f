"""The one sampler: pitch drawn sharper than the strike, a fixed key obeyed, and the plain
sampler (``make_sampler``) the same decoding with the controls off."""

import numpy as np

from models.sampling import ControlledSampler, make_sampler
from models.tokens import BASS, CHORD, HOLD, NOTE_BASE, VOCAB_SIZES, chord_pitch_classes, chord_token


def bass_logits() -> np.ndarray:
    x = np.full(VOCAB_SIZES[BASS], -2.0, np.float32)
    x[HOLD] = 0.5
    x[NOTE_BASE + 40] = 1.0  # the likely pitch (E2)
    x[NOTE_BASE + 41 : NOTE_BASE + 60] = 0.0  # a long tail of plausible ones
    return x


def test_pitches_are_drawn_sharper_than_the_strike_and_the_rhythm_keeps_its_rate():
    s = ControlledSampler(seed=0, temperature=0.9, density=0.5, harmony_follow=0.0)
    draws = np.array([s(BASS, bass_logits()) for _ in range(4000)])
    onsets = draws[draws >= NOTE_BASE]
    # onset probability at T = 0.9 with no sharpening: the tail's mass counts fully
    z = bass_logits().astype(np.float64) / 0.9
    p = np.exp(z - z.max())
    p /= p.sum()
    assert abs(len(onsets) / len(draws) - p[NOTE_BASE:].sum()) < 0.03
    # pitch at T/3: the likely pitch wins far more often than softmax(z / 0.9) would give it
    plain = p[NOTE_BASE + 40] / p[NOTE_BASE:].sum()
    assert np.mean(onsets == NOTE_BASE + 40) > plain + 0.3


def test_a_fixed_key_steers_notes_and_chords_into_its_scale():
    scale = frozenset({6, 8, 10, 11, 1, 3, 5})  # F# major
    logits = np.zeros(VOCAB_SIZES[BASS], np.float32)
    chords = np.zeros(VOCAB_SIZES[CHORD], np.float32)
    s = ControlledSampler(seed=1, temperature=1.0, density=1.0, harmony_follow=0.0)
    free = [s(BASS, logits) for _ in range(2000)]
    s.set_key(scale)
    fixed = [s(BASS, logits) for _ in range(2000)]
    in_key = lambda toks: np.mean([(t - NOTE_BASE) % 12 in scale for t in toks if t >= NOTE_BASE])  # noqa: E731
    assert in_key(free) < 0.7 and in_key(fixed) > 0.95
    c_major, fs_major = chord_token(0, "maj"), chord_token(6, "maj")
    picks = [s(CHORD, chords) for _ in range(3000)]
    assert picks.count(fs_major) > 5 * max(1, picks.count(c_major))
    s.set_key(None)
    assert in_key([s(BASS, logits) for _ in range(2000)]) < 0.7  # free again


def test_harmony_follow_changes_which_pitches_not_how_often_the_band_strikes():
    logits = bass_logits()
    rates, shares = {}, {}
    for hf in (0.0, 1.0):
        s = ControlledSampler(seed=4, temperature=0.9, density=0.5, harmony_follow=hf)
        for _ in range(8):
            s.observe_melody(NOTE_BASE + 67)  # the player sings G
        draws = np.array([s(BASS, logits) for _ in range(4000)])
        onsets = draws[draws >= NOTE_BASE]
        rates[hf] = len(onsets) / len(draws)
        shares[hf] = np.mean((onsets - NOTE_BASE) % 12 == 7)
    assert abs(rates[1.0] - rates[0.0]) < 0.03, rates
    assert shares[1.0] > shares[0.0] + 0.3, shares


def test_a_voice_rarely_rubs_a_semitone_against_the_melody_note_sounding():
    # flat logits over the bass's notes: without clash avoidance every pitch class other
    # than the sung one is drawn alike; with it, the two a semitone from the sung E (D#
    # and F, also its major 7th and minor 9th) are drawn far less than the others
    logits = np.full(VOCAB_SIZES[BASS], -2.0, np.float32)
    logits[NOTE_BASE + 36 : NOTE_BASE + 60] = 0.0
    s = ControlledSampler(seed=5, temperature=0.9, density=1.0, harmony_follow=0.025)  # a slight follow
    for _ in range(8):
        s.observe_melody(NOTE_BASE + 64)  # the player holds E
    pcs = np.array([(t - NOTE_BASE) % 12 for t in (s(BASS, logits) for _ in range(6000)) if t >= NOTE_BASE])
    rub = np.isin(pcs, (3, 5)).sum() / 2  # per pitch class
    other = (~np.isin(pcs, (3, 4, 5))).sum() / 9
    assert other > 50, other
    assert rub < 0.1 * other, (rub, other)


def _reference_split_temperature(temperature, seed, pitch_temperature=None, chord_temperature=None):
    """The plain decoding written out with softmaxes (what ``make_sampler`` was before it
    became the controlled sampler with the controls off), drawing from the same stream."""
    from models.contract import CHORD_TEMPERATURE_SHARE, PITCH_TEMPERATURE_SHARE
    from models.tokens import MELODY

    rng = np.random.default_rng(seed)
    pt = temperature * PITCH_TEMPERATURE_SHARE if pitch_temperature is None else pitch_temperature
    ct = temperature * CHORD_TEMPERATURE_SHARE if chord_temperature is None else chord_temperature

    def softmax(z, t):
        z = z / t
        z = z - z[np.isfinite(z)].max()
        p = np.exp(z)
        return p / p.sum()

    def sample(stream, logits):
        z = np.asarray(logits, dtype=np.float64)[: VOCAB_SIZES[stream]]
        p = softmax(z, ct if stream == CHORD and ct > 0 else temperature)
        if stream not in (CHORD, MELODY) and pt > 0:
            p[NOTE_BASE:] = p[NOTE_BASE:].sum() * softmax(z[NOTE_BASE:], pt)
        return int(rng.choice(len(p), p=p / p.sum()))

    return sample


def test_the_plain_sampler_is_the_controlled_one_with_the_controls_off_and_keeps_its_draws():
    from models.sampling import greedy
    from models.tokens import MELODY, NUM_STREAMS

    assert isinstance(make_sampler(0.9, 3), ControlledSampler)
    assert make_sampler(0.0, 3) is greedy
    rng = np.random.default_rng(7)
    for args in ((0.9, 3), (0.5, 4, 0.3), (1.2, 5, 0.0, 0.0), (0.9, 6, None, 0.9)):
        plain, ref = make_sampler(*args), _reference_split_temperature(*args)
        for t in range(600):
            stream = t % NUM_STREAMS
            logits = (rng.normal(0, 2, VOCAB_SIZES[stream])).astype(np.float32)
            logits[rng.random(VOCAB_SIZES[stream]) < 0.2] = -np.inf
            if stream == MELODY:
                logits[0] = 0.0
            assert plain(stream, logits) == ref(stream, logits), (args, t)
    # the controls at their neutral settings are the plain sampler, draw for draw
    neutral, plain = ControlledSampler(9, 0.8, density=0.5, harmony_follow=0.0), make_sampler(0.8, 9)
    logits = bass_logits()
    for _ in range(500):
        neutral.observe_melody(NOTE_BASE + 64)
        assert neutral(BASS, logits) == plain(BASS, logits)


def test_a_model_that_hears_ahead_follows_the_last_beat_not_the_last_bar():
    # a bar of C major arpeggio, then a beat and a half of an F# major one (a key jump): an
    # offline model has heard the new notes around the step it draws, so its chord follows them;
    # the live band keeps a bar's memory (it anticipates through melody recall instead)
    old = [NOTE_BASE + p for p in (60, 64, 67, 72)]
    new = [NOTE_BASE + p for p in (66, 70, 73, 78)]
    melody = [t for p in old * 2 for t in (p, HOLD)] + [t for p in new[:3] for t in (p, HOLD)]
    flat = np.zeros(VOCAB_SIZES[CHORD], np.float32)
    shares = {}
    for ahead in (0, 4):
        s = ControlledSampler(seed=0, temperature=1.0, harmony_follow=1.0)
        s.set_recall(None)
        s.set_hears_ahead(ahead)
        for t in melody:
            s.observe_melody(t)
        draws = [s(CHORD, flat) for _ in range(400)]
        shares[ahead] = (draws.count(chord_token(6, "maj")), draws.count(chord_token(0, "maj")))
    assert shares[0][0] < 80, shares  # a bar's memory: F# major in under a fifth of the draws
    assert shares[4][0] > 360 and shares[4][1] < 4, shares  # about a beat: F# major, not C


def _chord_logits(*tokens: int) -> np.ndarray:
    """Chord logits where the model weighs these chord tokens alike and no others."""
    x = np.full(VOCAB_SIZES[CHORD], -np.inf, np.float32)
    x[list(tokens)] = 5.0
    return x


def test_the_voices_favour_the_chord_tones_the_model_is_surest_of():
    # the model is torn between C major and A minor: C and E are tones of either, G or A of
    # only one; whichever chord the band draws, its voices sound the shared tones far more
    # than the one the model doubts (without the belief all three tones are alike)
    chords = _chord_logits(chord_token(0, "maj"), chord_token(9, "min"))
    notes = np.full(VOCAB_SIZES[BASS], -2.0, np.float32)
    notes[NOTE_BASE + 36 : NOTE_BASE + 60] = 0.0
    s = ControlledSampler(seed=2, temperature=0.9, density=1.0, harmony_follow=1.0)
    shared = doubted = 0
    for _ in range(3000):
        pcs = set(chord_pitch_classes(s(CHORD, chords)))
        t = s(BASS, notes)
        if t >= NOTE_BASE and (t - NOTE_BASE) % 12 in pcs:
            if (t - NOTE_BASE) % 12 in (0, 4):
                shared += 1
            else:
                doubted += 1
    assert shared > 1000, shared
    assert doubted < 0.1 * shared / 2, (shared, doubted)  # per tone, a tenth or less


def test_the_band_strikes_more_where_the_model_is_sure_of_its_chord_and_keeps_its_density():
    # a bar sure of C major, then a bar torn between C major and F# major (no tone in
    # common), and again: with harmony-follow the band strikes more readily in the sure
    # bars than in the torn ones; with it off, alike. A model sure all the time strikes as
    # often as the density gives (sure against its own usual, not a fixed level).
    sure = _chord_logits(chord_token(0, "maj"))
    torn = _chord_logits(chord_token(0, "maj"), chord_token(6, "maj"))
    notes = np.full(VOCAB_SIZES[BASS], -4.0, np.float32)
    notes[HOLD] = 2.5  # a voice that strikes about 3 steps in 5 on its own
    notes[NOTE_BASE + 40 : NOTE_BASE + 60] = 0.0

    def strike_rates(hf: float, torn_bars: bool) -> dict[str, float]:
        s = ControlledSampler(seed=3, temperature=0.9, density=0.5, harmony_follow=hf)
        hits: dict[str, list[bool]] = {"sure": [], "torn": []}
        for step in range(4000):
            bar = "torn" if torn_bars and (step // 16) % 2 else "sure"
            s(CHORD, torn if bar == "torn" else sure)
            if step >= 800:  # past the running mean's first bars
                hits[bar].append(s(BASS, notes) >= NOTE_BASE)
        return {k: float(np.mean(v)) for k, v in hits.items() if v}

    off, on = strike_rates(0.0, True), strike_rates(1.0, True)
    assert abs(off["sure"] - off["torn"]) < 0.04, off
    assert on["sure"] > on["torn"] + 0.3, on
    always = strike_rates(1.0, False)["sure"]
    assert abs(always - off["sure"]) < 0.05, (always, off)

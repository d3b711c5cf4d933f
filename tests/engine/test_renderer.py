"""Tokens -> part events; the groove engine; the sampler's controls."""

import numpy as np
import pytest

from engine import parts as P
from engine.events import NOTE_OFF, NOTE_ON
from engine.groove import CRASH, KICK, TOM_HIGH, Groove
from engine.renderer import EventLog, PartRenderer, pad_voicing
from engine.styles import load_styles
from models.sampling import ControlledSampler
from models.tokens import (
    ALTO,
    BASS,
    CHORD,
    CHORD_NONE,
    HOLD,
    MAX_VOCAB,
    NOTE_BASE,
    NOTE_VOCAB,
    REST,
    chord_token,
    note_on,
)

C = chord_token(0, "maj")
F = chord_token(5, "maj")


def run(frames, style="chorale", every=1, **kw):
    """Render frames at steps 0, every, 2*every, ... (times 100 samples apart)."""
    log = EventLog()
    r = PartRenderer([log], style, "4/4", **kw)
    for k, fr in enumerate(frames):
        r.render_step(k * every, k * 100, np.array(fr), (k * every) % 16)
    return log.events, r


def on(ch, log):
    return [(t, d1) for t, kind, c, d1, d2 in log if kind == NOTE_ON and c == ch]


def off(ch, log):
    return [(t, d1) for t, kind, c, d1, d2 in log if kind == NOTE_OFF and c == ch]


def test_bass_strikes_holds_and_rests_on_its_steps():
    ev, _ = run(
        [(C, note_on(36), REST, REST), (C, HOLD, REST, REST), (C, note_on(43), REST, REST), (C, REST, REST, REST)]
    )
    assert on(P.BASS.channel, ev) == [(0, 36), (200, 43)]
    assert off(P.BASS.channel, ev) == [(200, 36), (300, 43)]


def test_keys_voices_sharing_a_pitch_release_only_when_both_let_go():
    ev, _ = run(
        [
            (C, REST, note_on(60), note_on(64)),
            (C, REST, HOLD, note_on(60)),
            (C, REST, REST, HOLD),
            (C, REST, REST, REST),
        ]
    )
    ch = P.KEYS.channel
    assert on(ch, ev) == [(0, 60), (0, 64), (100, 60)]
    # the re-strike releases 60 first; tenor letting go at step 2 leaves alto's 60 sounding
    assert off(ch, ev) == [(100, 64), (100, 60), (300, 60)]


def test_pad_voices_the_chord_and_keeps_common_tones():
    assert pad_voicing(C) == [55, 60, 64] and pad_voicing(CHORD_NONE) == []
    ev, _ = run(
        [(C, REST, REST, REST), (C, REST, REST, REST), (F, REST, REST, REST), (CHORD_NONE, REST, REST, REST)], every=4
    )
    ch = P.PAD.channel
    assert on(ch, ev) == [(0, 55), (0, 60), (0, 64), (200, 57), (200, 65)]  # F: 57 60 65; 60 stays
    assert off(ch, ev) == [(200, 55), (200, 64), (300, 57), (300, 60), (300, 65)]
    # between beats the pad waits: a chord flicker on a 16th does not re-voice it
    ev, _ = run([(C, REST, REST, REST), (F, REST, REST, REST), (C, REST, REST, REST)])
    assert on(ch, ev) == [(0, 55), (0, 60), (0, 64)]


def test_events_are_time_ordered_and_downbeats_are_accented():
    frames = [(C, note_on(36) if k % 2 == 0 else HOLD, REST, REST) for k in range(16)]
    ev, _ = run(frames, style="pop", density=0.5)
    times = [e[0] for e in ev]
    assert times == sorted(times)
    vel = {t: d2 for t, kind, c, d1, d2 in ev if kind == NOTE_ON and c == P.BASS.channel}
    assert vel[0] > vel[400] > vel[200] and vel[400] > vel[600]


def test_mute_releases_the_part_and_solo_silences_the_others():
    log = EventLog()
    r = PartRenderer([log], "pop", "4/4")
    r.render_step(0, 0, np.array((C, note_on(36), note_on(60), REST)), 0)
    r.muted.add("bass")
    r.render_step(1, 100, np.array((C, note_on(38), HOLD, REST)), 1)
    assert (100, 36) in off(P.BASS.channel, log.events) and (100, 38) not in on(P.BASS.channel, log.events)
    r.muted.clear()
    r.soloed.add("bass")
    r.render_step(2, 200, np.array((F, note_on(41), note_on(65), REST)), 2)
    assert (200, 41) in on(P.BASS.channel, log.events)
    assert not [e for e in log.events if e[0] == 200 and e[1] == NOTE_ON and e[2] != P.BASS.channel]


def test_a_late_step_plays_nothing_new():
    log = EventLog()
    r = PartRenderer([log], "pop", "4/4")
    r.render_step(0, 0, np.array((C, note_on(36), REST, REST)), 0)
    n = len(log.events)
    r.render_step(1, 100, np.array((F, note_on(41), note_on(60), REST)), 1, late=True)
    assert not [e for e in log.events[n:] if e[1] == NOTE_ON]


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8"])
def test_every_shipped_pattern_fits_its_bar(meter):
    steps = {"4/4": 16, "3/4": 12, "6/8": 12}[meter]
    for style in load_styles().styles.values():
        for variants in style.drum_pattern(meter).values():
            assert all(len(v) == steps for v in variants), style.name


def test_groove_intensity_fills_and_styles():
    g = Groove("pop", "4/4", seed=1)

    def bar(inten, b=0):
        return [g.hits(b * 16 + i, inten) for i in range(16)]

    quiet = sum(len(h) for h in bar(0.1))
    busy = sum(len(h) for h in bar(0.9))
    assert busy > quiet > 0
    assert any(k == KICK for k, _ in bar(0.5)[0])
    fill_bar = bar(0.5, b=3)  # 4th bar: fill in its last beat
    assert any(k == TOM_HIGH for k, _ in fill_bar[12]) and not any(k == TOM_HIGH for k, _ in fill_bar[4])
    assert any(k == CRASH for k, _ in g.hits(4 * 16, 0.5))  # crash on the next phrase's downbeat
    assert Groove("chorale", "4/4").silent and Groove("chorale", "4/4").hits(0, 1.0) == []
    assert Groove("folk", "3/4").hits(0, 0.1) == []  # folk drums wait for some intensity
    a, b = Groove("pop", "6/8", seed=5), Groove("pop", "6/8", seed=5)
    assert [a.hits(i, 0.6) for i in range(48)] == [b.hits(i, 0.6) for i in range(48)]


def _flat_note_logits():
    x = np.full(NOTE_VOCAB, -np.inf, np.float32)
    x[[REST, HOLD]] = 0.0
    x[NOTE_BASE + 48 : NOTE_BASE + 72] = 0.0
    return x


def test_harmony_follow_pulls_the_band_toward_the_players_notes():
    def in_chord_share(hf):
        s = ControlledSampler(seed=0, temperature=1.0, harmony_follow=hf)
        for p in (60, 64, 67, 60):
            s.observe_melody(note_on(p))
        toks = [s(BASS, _flat_note_logits()) for _ in range(600)]
        notes = [t - NOTE_BASE for t in toks if t >= NOTE_BASE]
        return np.mean([n % 12 in (0, 4, 7) for n in notes])

    assert in_chord_share(1.0) > 0.8 > 0.4 > in_chord_share(0.0)


def test_density_trades_holds_for_onsets_and_low_temperature_is_greedy():
    def onset_share(d):
        s = ControlledSampler(seed=0, density=d, harmony_follow=0.0)
        return np.mean([s(ALTO, _flat_note_logits()) >= NOTE_BASE for _ in range(600)])

    assert onset_share(1.0) > onset_share(0.5) > onset_share(0.0)
    s = ControlledSampler(seed=0, temperature=0.05, harmony_follow=0.0)
    x = np.full(MAX_VOCAB, -np.inf, np.float32)
    x[C], x[F] = 2.0, 1.0
    assert all(s(CHORD, x) == C for _ in range(50))


def test_the_sampler_is_deterministic_for_a_seed_and_survives_broken_logits():
    a, b = ControlledSampler(seed=9), ControlledSampler(seed=9)
    x = _flat_note_logits()
    assert [a(BASS, x) for _ in range(30)] == [b(BASS, x) for _ in range(30)]
    nan = np.full(NOTE_VOCAB, np.nan, np.float32)
    assert a(BASS, nan) == REST
    with pytest.raises(ValueError, match="temperature"):
        ControlledSampler(temperature=0.0)

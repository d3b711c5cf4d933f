"""Arranger mode: held notes below the split read as the model's chords (inversions,
sevenths, slash basses, one- and two-finger chords), and the shipped model's band plays
the chord a left hand strikes from the next 16th step, its bass and keys striking only
that chord's tones, while the notes above the split stay the melody."""

import numpy as np
import pytest

from engine import parts as P
from engine.arranger import Arranger, check_split, recognise, slash_name
from engine.clock import Clock
from engine.events import NOTE_OFF, NOTE_ON
from engine.generator import StreamingGenerator
from engine.renderer import EventLog, PartRenderer
from models.sampling import ControlledSampler
from models.tokens import chord_name, chord_pitch_classes, chord_token, is_note_on, note_name

SR = 48000


@pytest.mark.parametrize(
    "pitches, name",
    [
        ((60, 64, 67), "C"),
        ((64, 67, 72), "C"),
        ((55, 60, 64), "C"),  # root position, inversions
        ((57, 60, 64), "Am"),
        ((60, 63, 67), "Cm"),
        ((47, 50, 53, 55), "G7"),  # G7 over B
        ((60, 64, 67, 70), "C7"),
        ((60, 64, 67, 71), "Cmaj7"),
        ((57, 60, 64, 67), "Amin7"),
        ((48, 57, 64, 67), "C6"),
        ((60, 63, 66, 70), "Cm7b5"),
        ((60, 63, 66, 69), "Cdim7"),
        ((60, 64, 68), "Caug"),
        ((48, 53, 55), "Csus4"),
        ((48, 50, 55), "Csus2"),
        ((60, 63, 66), "Cdim"),
        ((58, 60, 64, 67), "C7"),  # C/Bb
        ((60, 64, 67, 70, 74), "C7"),
        ((60, 64, 70), "C7"),  # a ninth folds in; no fifth needed
        ((53,), "F"),
        ((48, 55), "C"),
        ((48, 51), "Cm"),
        ((55, 60), "C"),
        ((48, 57), "Am"),  # 1-2 fingers
    ],
)
def test_held_notes_read_as_the_models_chords(pitches, name):
    assert chord_name(recognise(pitches)) == name


def test_what_is_no_chord_and_how_a_slash_chord_is_named():
    assert recognise(()) is None and recognise((60, 61, 62)) is None and recognise((60, 66)) is None
    assert slash_name(recognise((52, 55, 60)), 52 % 12) == "C/E"
    assert slash_name(chord_token(0, "maj"), 0) == "C" and note_name(54) == "F#3" and note_name(60) == "C4"
    for bad in (0, 128, 54.5, "x", None):
        with pytest.raises(ValueError, match="split point"):
            check_split(bad)


def test_chord_notes_of_one_step_are_read_together_and_the_chord_outlasts_the_fingers():
    clock = Clock(SR, 120.0, "4/4")
    arr = Arranger(54, clock)
    step = clock.step_time(1) - clock.step_time(0)
    t = clock.step_time(4) + step // 5  # three keys 20 % into step 4, a few ms apart
    assert not arr.note(t, 72, True)  # above the split: the melody's
    for i, p in enumerate((36, 40, 43)):
        assert arr.note(t + i * 100, p, True)
    assert arr.token_at(4) is None  # step 4's keys are read when step 5 is committed
    assert arr.token_at(5) == chord_token(0, "maj") and arr.chords == 1  # one chord, not three
    for p in (36, 40, 43):
        arr.note(clock.step_time(6), p, False)
    assert arr.token_at(7) == chord_token(0, "maj") and arr.held() == frozenset()  # chord memory
    for p in (45, 48, 52):  # A C E: A minor
        arr.note(clock.step_time(8), p, True)
    assert arr.token_at(9) == chord_token(9, "min") and arr.name() == "Am"
    arr.note(clock.step_time(9), 45, False)  # lifting one finger changes nothing
    assert arr.token_at(10) == chord_token(9, "min")
    for p in (48, 52):
        arr.note(clock.step_time(11), p, False)
    # a hand spread across a step boundary (10 ms a key) is one chord, not a dyad then a chord
    edge = clock.step_time(12) + step // 2 - SR // 100
    for i, p in enumerate((43, 47, 50, 53)):
        arr.note(edge + i * SR // 100, p, True)
    assert arr.token_at(13) == chord_token(7, "7") and [r[2] for r in arr.readings][-1] == chord_token(7, "7")
    assert arr.chords == 3
    arr.clear()
    assert arr.token_at(14) is None
    arr.set_split(40)
    assert not arr.note(clock.step_time(15), 48, True)
    assert not arr.note(clock.step_time(16), 48, False)  # a melody note's release stays the melody's
    assert arr.note(clock.step_time(16), 36, True) and arr.note(clock.step_time(16), 36, False)  # a chord key


CHORDS = [
    ((36, 40, 43), "C"),
    ((45, 48, 52), "Am"),
    ((45, 48, 53), "F"),
    ((47, 50, 53, 43), "G7"),
    ((40, 43, 48), "C"),
    ((50, 53, 45, 48), "Dmin7"),
    ((43, 47, 50, 53), "G7"),
    ((36, 40, 43, 46), "C7"),
]


@pytest.fixture(scope="module")
def live_model():
    from models.runtime import load_accompanist

    return load_accompanist()  # the shipped live checkpoint (hears the melody a step late)


@pytest.mark.parametrize("style", ["pop", "blues"])
def test_the_real_band_plays_the_left_hands_chord_from_the_next_step_in_chord_tones(live_model, style):
    clock = Clock(SR, 120.0, "4/4")
    log = EventLog()
    renderer = PartRenderer([log], style, "4/4", seed=5)
    now = [0]
    gen = StreamingGenerator(
        live_model,
        clock,
        renderer,
        style=style,
        sampler=ControlledSampler(5),
        lead_ms=50.0,
        clock_source=lambda: now[0],
    )
    arr = Arranger(54, clock)
    gen.set_chord_source(arr)
    step = clock.step_time(1) - clock.step_time(0)
    played = {}  # step the chord was struck in -> token
    for i, (keys, name) in enumerate(CHORDS):
        s = 3 + 10 * i  # not on bar lines, a little into the step
        played[s] = (
            keys,
            chord_token(
                *{
                    "C": (0, "maj"),
                    "Am": (9, "min"),
                    "F": (5, "maj"),
                    "G7": (7, "7"),
                    "Dmin7": (2, "min7"),
                    "C7": (0, "7"),
                }[name]
            ),
        )
    melody = {s: 67 + (s % 5) for s in range(0, 90, 4)}  # a melody above the split meanwhile
    held: tuple = ()
    for k in range(0, 90):
        for at in (clock.step_time(k) - int(0.05 * SR), clock.step_time(k) + int(0.3 * step)):
            now[0] = max(0, at)
            gen.pump()
        t = clock.step_time(k) + int(0.3 * step)  # what the player strikes in step k
        if k in played:
            for p in held:
                arr.note(t, p, False)
            held = played[k][0]
            for j, p in enumerate(held):
                assert arr.note(t + 40 * j, p, True)
        if k in melody:
            assert not arr.note(t, melody[k], True)
            gen.melody_event(t, melody[k], True)
            gen.melody_event(t + step * 3, melody[k], False)
    frames = {f[0]: f for f in gen.recent}
    stream = {k: frames[k][1] for k in frames}
    starts = sorted(played)
    for i, (a, b) in enumerate(zip(starts, starts[1:] + [89])):
        tok = played[a][1]
        # struck during step a -> the band's chord from step a + 1 (not before) until the next one
        if i:
            assert stream[a] == played[starts[i - 1]][1]
        assert all(stream[k] == tok for k in range(a + 1, b + 1)), (
            style,
            a,
            chord_name(tok),
            [chord_name(stream[k]) for k in range(a, b + 1)],
        )
    # the melody above the split reached the band as melody, not as chords
    assert any(is_note_on(f[5]) for f in frames.values())
    # every bass and keys onset is a tone of the chord stream at its step
    onsets = [e for e in log.events if e[1] == NOTE_ON and e[2] in (P.BASS.channel, P.KEYS.channel)]
    checked = 0
    for t, _, ch, pitch, _ in onsets:
        k = clock.step_at(t)
        if k > starts[0] and k in stream:
            assert pitch % 12 in chord_pitch_classes(stream[k]), (style, k, ch, pitch, chord_name(stream[k]))
            checked += 1
    assert checked >= 8
    assert arr.late == 0 and gen.metrics().late_steps == 0
    # the pad voices each chord on the step it starts (not the next beat), and no bass or
    # keys note held over from the chord before clashes with it there
    for a in starts:
        tones = chord_pitch_classes(played[a][1])
        pad = {
            e[3] % 12 for e in log.events if e[1] == NOTE_ON and e[2] == P.PAD.channel and clock.step_at(e[0]) == a + 1
        }
        assert pad and pad <= tones, (style, a, pad)
        held = {P.BASS.channel: set(), P.KEYS.channel: set()}
        for t, kind, ch, pitch, _ in log.events:
            if t >= clock.step_time(a + 2):
                break
            if ch in held and kind in (NOTE_ON, NOTE_OFF):
                (held[ch].add if kind == NOTE_ON else held[ch].discard)(pitch)
        assert all(p % 12 in tones for ch in held for p in held[ch]), (style, a, held)
    np.testing.assert_equal(arr.chords, len(CHORDS))
    assert [(clock.step_at(t), k, tok) for t, k, tok in arr.readings] == [(a, a + 1, played[a][1]) for a in starts]

"""The piano roll's notes (liveband.session_roll): notes in steps of the band's clock,
open notes reaching 'now', planned notes marked, the band's tentative plan and the chord shown."""

from __future__ import annotations

from engine import parts as P
from engine.clock import Clock
from engine.events import ALL_OFF, CONTROL, NOTE_OFF, NOTE_ON
from liveband.session_roll import Roll, chord_at
from models.tokens import chord_name

RATE = 48000


def roll_at_120() -> tuple[Roll, Clock]:
    clock = Clock(RATE, 120.0, "4/4", 0, start_sample=0)  # a 16th = 6000 samples
    r = Roll()
    r.reset(clock)
    return r, clock


def test_a_note_is_placed_in_steps_and_an_open_one_reaches_now():
    r, clock = roll_at_120()
    ch = P.BASS.channel
    r.push(clock.step_time(2), NOTE_ON, ch, 40, 100)
    r.push(clock.step_time(4), NOTE_OFF, ch, 40, 0)
    r.push(clock.step_time(6), NOTE_ON, P.MELODY.channel, 72, 90)
    notes = r.notes_since(0.0, now_step=8.0)
    assert notes == [("bass", 40, 2.0, 4.0, False, False), ("melody", 72, 6.0, 8.0, False, False)]


def test_notes_ended_before_the_window_are_left_out_and_future_ones_are_planned():
    r, clock = roll_at_120()
    ch = P.KEYS.channel
    r.push(clock.step_time(0), NOTE_ON, ch, 60, 100)
    r.push(clock.step_time(1), NOTE_OFF, ch, 60, 0)
    r.push(clock.step_time(12), NOTE_ON, ch, 64, 100)
    assert r.notes_since(4.0, now_step=8.0) == [("keys", 64, 12.0, 12.0, True, False)]


def test_all_off_ends_every_open_note_of_its_channel_only():
    r, clock = roll_at_120()
    r.push(clock.step_time(0), NOTE_ON, P.KEYS.channel, 60, 100)
    r.push(clock.step_time(0), NOTE_ON, P.KEYS.channel, 64, 100)
    r.push(clock.step_time(0), NOTE_ON, P.BASS.channel, 36, 100)
    r.push(clock.step_time(3), ALL_OFF, P.KEYS.channel)
    ends = {(part, pitch): end for part, pitch, _s, end, *_ in r.notes_since(0.0, now_step=5.0)}
    assert ends == {("keys", 60): 3.0, ("keys", 64): 3.0, ("bass", 36): 5.0}


def test_without_a_clock_or_for_other_events_nothing_is_drawn():
    r = Roll()
    assert r.push(0, NOTE_ON, P.KEYS.channel, 60, 100)  # an EventSink always accepts
    r2, clock = roll_at_120()
    r2.push(clock.step_time(0), CONTROL, P.KEYS.channel, 7, 100)
    r2.push(clock.step_time(0), NOTE_ON, 15, 60, 100)  # a channel no part plays on
    assert r.notes_since(0.0, 4.0) == [] and r2.notes_since(0.0, 4.0) == []


def test_the_chord_shown_is_the_last_one_at_or_before_the_step():
    frames = [(0, 1), (8, 30), (16, 55)]
    assert chord_at(frames, 9.5, "") == chord_name(30, None)
    assert chord_at(frames, -1.0, "") == ""
    assert chord_at(frames, 16.0, "not a key") == chord_name(55, None)


def test_a_hummed_note_taken_back_where_it_began_is_not_drawn():
    # the hum tracker announces a note early and replaces it from the same onset (off at
    # its own start, then the right pitch): only the replacement is a note
    r, clock = roll_at_120()
    ch = P.MELODY.channel
    r.push(clock.step_time(2), NOTE_ON, ch, 61, 90)
    r.take_back(ch, 61)
    r.push(clock.step_time(2), NOTE_ON, ch, 62, 90)
    r.push(clock.step_time(5), NOTE_OFF, ch, 62, 0)
    assert r.notes_since(0.0, now_step=8.0) == [("melody", 62, 2.0, 5.0, False, False)]


def test_the_plan_becomes_tentative_notes_from_the_first_step_not_committed():
    import numpy as np

    from engine.band_plan import Plan
    from liveband.session_roll import plan_notes
    from models.tokens import CHORD_BASE, HOLD, REST, chord_token, note_on

    c, g = chord_token(0, "maj"), chord_token(7, "maj")
    assert c >= CHORD_BASE
    frames = np.array(
        [
            [c, HOLD, note_on(60), REST],  # step 10
            [c, note_on(43), HOLD, REST],  # 11: the bass moves
            [g, HOLD, REST, note_on(67)],  # 12: G, tenor stops, alto strikes
            [g, REST, REST, HOLD],
        ]
    )  # 13: the bass rests
    plan = Plan(10, frames, (36, None, None), frozenset({"bass", "keys", "pad"}))
    notes = plan_notes(plan, 10)
    assert all(n[4] and n[5] for n in notes)  # planned and tentative
    got = {(n[0], n[1], n[2], n[3]) for n in notes}
    assert {
        ("bass", 36, 10.0, 11.0),
        ("bass", 43, 11.0, 13.0),
        ("keys", 60, 10.0, 12.0),
        ("keys", 67, 12.0, 14.0),
    } <= got
    assert {n[1] % 12 for n in notes if n[0] == "pad" and n[2] == 10.0} == {0, 4, 7}
    assert {n[1] % 12 for n in notes if n[0] == "pad" and n[2] == 12.0} == {7, 11, 2}
    # a step later the plan is shown from the next uncommitted step; a muted part not at all
    later = plan_notes(Plan(10, frames, (36, None, None), frozenset({"keys"})), 11)
    assert {(n[0], n[1], n[2], n[3]) for n in later} == {("keys", 60, 11.0, 12.0), ("keys", 67, 12.0, 14.0)}
    assert plan_notes(None, 0) == []

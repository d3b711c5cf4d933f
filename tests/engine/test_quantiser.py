"""The melody quantiser: nearest-grid rounding, monophony, committed frames, late events."""

import pytest

from engine.clock import Clock
from engine.quantiser import Quantiser
from models.tokens import HOLD, REST, note_on

SPS = 6000  # 120 BPM at 48 kHz


def tokens(q, n, start=0):
    return [q.token_for(k) for k in range(start, start + n)]


def test_onsets_round_to_the_nearest_step_ties_to_the_later_one():
    q = Quantiser(Clock(48000, 120))
    q.note(2999, 60, True)  # nearer step 0
    q.note(SPS + 2999, 60, False)  # release nearer step 1
    q.note(2 * SPS + 3000, 62, True)  # exact tie between steps 2 and 3: later
    q.note(5 * SPS, 62, False)
    assert tokens(q, 6) == [note_on(60), REST, REST, note_on(62), HOLD, REST]


def test_a_very_short_note_still_lasts_one_step_and_legato_replaces():
    q = Quantiser(Clock(48000, 120))
    q.note(0, 60, True)
    q.note(100, 60, False)  # rounds to the same step as its onset
    q.note(2 * SPS, 64, True)
    q.note(3 * SPS, 67, True)  # pressed before 64 is released: the new note wins
    q.note(3 * SPS + 10, 64, False)  # releasing the overridden key changes nothing
    q.note(5 * SPS, 67, False)
    assert tokens(q, 6) == [note_on(60), REST, note_on(64), note_on(67), HOLD, REST]


def test_late_onset_moves_to_the_first_uncommitted_step_and_is_counted():
    q = Quantiser(Clock(48000, 120))
    assert tokens(q, 4) == [REST] * 4  # steps 0-3 committed
    q.note(1 * SPS, 65, True)  # belongs to step 1: too late
    q.note(6 * SPS, 65, False)
    assert tokens(q, 4, start=4) == [note_on(65), HOLD, REST, REST]
    assert q.late_onsets == 1 and q.late_releases == 0


def test_late_release_ends_the_note_at_the_first_uncommitted_step():
    q = Quantiser(Clock(48000, 120))
    q.note(0, 70, True)
    assert tokens(q, 3) == [note_on(70), HOLD, HOLD]
    q.note(SPS, 70, False)
    assert q.token_for(3) == REST and q.late_releases == 1


def test_committed_tokens_never_change_and_steps_go_in_order():
    q = Quantiser(Clock(48000, 120))
    q.token_for(0)
    with pytest.raises(ValueError, match="in order"):
        q.token_for(2)
    with pytest.raises(ValueError, match="pitch"):
        q.note(0, 128, True)


def test_rounding_follows_a_tempo_change():
    c = Clock(48000, 120)
    c.set_tempo(60, 4)  # from step 4 a 16th is 12000 samples
    q = Quantiser(c)
    q.note(24000 + 12000 + 5999, 72, True)  # nearer step 5 at the new tempo
    assert tokens(q, 7) == [REST] * 5 + [note_on(72), HOLD]


def test_a_hummed_note_taken_back_before_its_step_is_committed_never_reaches_the_model():
    # the pitch tracker announced 61 early and withdrew it (its note-off at its own onset)
    q = Quantiser(Clock(48000, 120))
    q.note(SPS, 61, True)
    q.note(SPS, 61, False, take_back=True)
    assert tokens(q, 3) == [REST, REST, REST] and q.taken_back == 1
    # a plain release at the same time is a very short note: it still sounds one step
    q2 = Quantiser(Clock(48000, 120))
    q2.note(SPS, 61, True)
    q2.note(SPS, 61, False)
    assert tokens(q2, 3) == [REST, note_on(61), REST]


def test_a_take_back_replaced_from_the_same_onset_gives_the_replacement_only():
    q = Quantiser(Clock(48000, 120))
    q.note(SPS, 61, True)
    q.note(SPS, 61, False, take_back=True)
    q.note(SPS, 62, True)  # the onset rule's pitch, from the same onset
    q.note(3 * SPS, 62, False)
    assert tokens(q, 4) == [REST, note_on(62), HOLD, REST]


def test_a_take_back_after_the_model_heard_the_note_ends_it_like_a_late_release():
    q = Quantiser(Clock(48000, 120))
    q.note(0, 61, True)
    assert tokens(q, 2) == [note_on(61), HOLD]  # committed: the model heard it
    q.note(0, 61, False, take_back=True)
    q.note(0, 62, True)  # its replacement: a late onset
    assert q.token_for(2) == note_on(62)
    assert q.taken_back == 0 and q.late_releases == 1 and q.late_onsets == 1

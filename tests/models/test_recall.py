"""MelodyRecall: a forecast only from a passage heard before, read from what followed it."""

from __future__ import annotations

import numpy as np
import pytest

from models.recall import MelodyRecall
from models.sampling import ControlledSampler
from models.tokens import CHORD, CHORD_VOCAB, HOLD, NOTE_BASE, REST, chord_pitch_classes


def on(p: int) -> int:
    return NOTE_BASE + p


# a bar of 16ths: C D E F G A B C' as 8ths
PHRASE = [t for p in (60, 62, 64, 65, 67, 69, 71, 72) for t in (on(p), HOLD)]
ANSWER = [on(57), HOLD, HOLD, HOLD, on(53), HOLD, HOLD, HOLD]  # A3, F3: what followed it


def feed(r: MelodyRecall, tokens) -> None:
    for t in tokens:
        r.observe(t)


def test_no_forecast_for_a_passage_never_heard():
    r = MelodyRecall()
    feed(r, PHRASE + ANSWER)
    assert not r.matched and r.forecast(1) is None


def test_a_repeated_passage_forecasts_what_followed_it_the_first_time():
    r = MelodyRecall(window=16, horizon=4)
    feed(r, PHRASE + ANSWER + [REST] * 8 + PHRASE)
    assert r.matched
    w = r.forecast(1)  # the next 4 steps: A3 held
    assert w is not None and np.flatnonzero(w).tolist() == [9]
    w = r.forecast(5)  # 4 steps later: F3
    assert w is not None and np.flatnonzero(w).tolist() == [5]


def test_a_partial_match_below_the_threshold_is_no_forecast():
    r = MelodyRecall(window=16, threshold=0.9)
    other = [t for p in (60, 62, 64, 66, 68, 70, 71, 72) for t in (on(p), HOLD)]  # 6 of 16 steps differ
    feed(r, PHRASE + ANSWER + [REST] * 8 + other)
    assert not r.matched


def test_a_match_exactly_at_the_threshold_counts_whatever_the_window():
    # 7 of 10 steps the same at a threshold of 0.7: a score computed in float32 reads
    # 7 / 10 as 0.69999998 and would miss it
    r = MelodyRecall(window=10, horizon=4, threshold=0.7, min_onsets=1)
    phrase = [on(p) for p in (60, 63, 61, 66, 62, 69, 64, 70, 67, 71)]
    again = [on(p) for p in (60, 63, 68, 66, 62, 58, 64, 70, 65, 71)]  # 3 of 10 differ
    feed(r, phrase + ANSWER + [REST] * 8 + again)
    assert r.matched and np.flatnonzero(r.forecast(1)).tolist() == [9]


def test_long_held_notes_are_no_evidence():
    r = MelodyRecall(window=16, min_onsets=3)
    held = [on(60)] + [HOLD] * 15
    feed(r, held + ANSWER + [REST] * 8 + held)
    assert not r.matched


def test_memory_is_bounded_and_still_matches_after_wrapping():
    r = MelodyRecall(window=16, memory=64)
    rng = np.random.default_rng(0)
    noise = [on(int(rng.integers(40, 90))) for _ in range(300)]
    feed(r, noise + PHRASE + ANSWER + [REST] * 8 + PHRASE)
    assert r.matched and np.flatnonzero(r.forecast(1)).tolist() == [9]
    assert r._pc.shape == (128,)


def test_reset_forgets():
    r = MelodyRecall()
    feed(r, PHRASE + ANSWER + PHRASE)
    r.reset()
    feed(r, PHRASE)
    assert not r.matched


@pytest.mark.parametrize("bad", [dict(window=0), dict(threshold=0.0), dict(memory=8)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        MelodyRecall(**bad)


def _share_with(s: ControlledSampler, pcs: set[int], draws: int = 400) -> float:
    """How often the sampler, on flat model logits, draws a chord holding all of ``pcs``."""
    logits = np.zeros(CHORD_VOCAB, np.float32)
    return float(np.mean([pcs <= set(chord_pitch_classes(s(CHORD, logits))) for _ in range(draws)]))


def test_the_sampler_chooses_the_chord_for_where_the_melody_is_going():
    """Same melody heard; the sampler with recall on picks a chord with A and F in it for
    the A-F answer it remembers (the sung profile alone favours the phrase's own scale)."""
    probs = []
    for ahead in ((2, 1), None):
        s = ControlledSampler(seed=0, temperature=1.0, harmony_follow=0.25)  # a moderate follow
        s.set_recall(ahead)
        for t in PHRASE + ANSWER + [REST] * 8 + PHRASE:
            s.observe_melody(t)
        probs.append(_share_with(s, {5, 9}))
    assert probs[0] > 0.6 and probs[0] > 3 * probs[1], probs


def test_a_passage_sung_in_another_key_is_recalled_and_its_forecast_moved_with_it():
    up = [t + 6 if t >= NOTE_BASE else t for t in PHRASE]  # a tritone higher, as after a key jump
    r = MelodyRecall(window=16, horizon=4)
    feed(r, PHRASE + ANSWER + [REST] * 8 + up)
    assert r.matched and np.flatnonzero(r.forecast(1)).tolist() == [(9 + 6) % 12]
    plain = MelodyRecall(window=16, horizon=4, transposed=False)
    feed(plain, PHRASE + ANSWER + [REST] * 8 + up)
    assert not plain.matched

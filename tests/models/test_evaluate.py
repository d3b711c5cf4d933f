"""Evaluation metrics on hand-made examples, and the metric sets wired through a fake model
(pure logic only: the real model and checkpoint path are covered by the `liveband eval` test)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from corpus_fixtures import JSB_CHORALE, write_jsb, write_pop909_folder  # noqa: E402

from models.data import Piece, load_jsb, load_pop909  # noqa: E402
from models.evaluate import (  # noqa: E402
    RecoverySong,
    accompany,
    jsb_metrics,
    jump_step,
    make_sampler,
    mean_nll,
    onset_in_chord,
    onsets_in_key_per_beat,
    pop909_metrics,
    recovery_metrics,
    shift_melody,
)
from models.tokens import (
    ALTO,
    BASS,
    CHORD,
    CHORD_NONE,
    CHORD_UNKNOWN,
    HOLD,
    MELODY,
    NOTE_BASE,
    REST,
    TENOR,
    chord_token,
)  # noqa: E402

C, G7 = chord_token(0, "maj"), chord_token(7, "7")


def on(p):
    return NOTE_BASE + p


def test_onset_in_chord_counts_onsets_under_real_chords_only():
    acc = np.array(
        [
            [on(48), on(64), on(67)],  # C E G under C: 3 in
            [HOLD, HOLD, HOLD],  # holds are not onsets
            [on(50), REST, on(65)],  # D F under C: 0 in
            [on(43), on(59), on(65)],  # under G7: G B F all in
            [on(40), REST, REST],
        ]
    )  # under N: not counted
    chords = np.array([C, C, C, G7, CHORD_NONE])
    assert onset_in_chord(acc, chords) == (6, 8)


def test_onsets_in_key_per_beat():
    acc = np.full((12, 3), HOLD)
    acc[0] = [on(48), on(52), on(55)]  # beat 0: C E G in C major
    acc[5] = [on(49), on(53), REST]  # beat 1: C# F -> 1 of 2
    key = frozenset({0, 2, 4, 5, 7, 9, 11})
    assert onsets_in_key_per_beat(acc, 0, 3, key).tolist() == [[3, 3], [1, 2], [0, 0]]
    assert onsets_in_key_per_beat(acc, 4, 2, key).tolist() == [[1, 2], [0, 0]]


def test_mean_nll_skips_non_targets():
    nll = np.array([[1.0, np.nan, 2.0, 3.0, 4.0], [1.0, np.nan, 2.0, 3.0, np.nan]])
    assert mean_nll(nll, (BASS, TENOR, ALTO)) == (14.0, 5)


def test_shift_melody_moves_onsets_from_the_jump_only():
    mel = np.array([on(60), HOLD, on(62), HOLD, REST, on(64)])
    assert shift_melody(mel, 2, 5).tolist() == [on(60), HOLD, on(67), HOLD, REST, on(69)]
    assert shift_melody(np.array([on(125)]), 0, 5) is None


class FakeModel:
    """Implements the runtime API's signature with known outputs (for metric wiring only)."""

    def __init__(self, per_stream_nll=(1.0, 5.0, 4.0, 3.0, 2.0), pitch=60):
        self.per_stream = np.array(per_stream_nll)
        self.pitch = pitch

    def token_nll(self, piece):
        out = np.tile(self.per_stream, (len(piece), 1))
        out[piece.tokens == 0] = np.nan
        out[:, CHORD][piece.tokens[:, CHORD] == CHORD_UNKNOWN] = np.nan
        return out

    def accompanist(self, seed=0):
        model = self

        class Always:
            lookahead = 1

            def reset(self, style, meter):
                pass

            def advance(self, melody_token, step_in_bar, sampler):
                # plays `pitch` in the bass on every step, rests elsewhere
                return np.array([C, on(model.pitch), REST, REST])

        return Always()


def test_jsb_metrics_average_the_right_cells(tmp_path):
    path = write_jsb(tmp_path / "j.json", {"valid": [JSB_CHORALE, JSB_CHORALE[:3]]})
    pieces = load_jsb(path, "valid").pieces
    res = jsb_metrics(FakeModel(), pieces)
    assert res["steps"] == 11 and res["tokens_scored"] == 44
    assert res["nll_satb_per_token"] == pytest.approx((1 + 2 + 3 + 4) / 4)  # S=1 A=2 T=3 B=4 (chord NaN)
    assert res["nll_atb_given_soprano_per_token"] == pytest.approx(3.0)
    assert res["nll_per_voice"] == {"soprano": 1.0, "alto": 2.0, "tenor": 3.0, "bass": 4.0}
    assert res["anchors"]["Coconet"] == 0.436


def test_pop909_metrics_wire_model_human_and_rules(tmp_path):
    pieces = load_pop909(write_pop909_folder(tmp_path / "pop")).pieces
    res = pop909_metrics(FakeModel(pitch=60), pieces)
    # the fixture is C for 16 steps, G7 for 8, Em7 for 8: a C on every step is in-chord 16 of 32 times
    assert res["note_in_chord"]["model"] == 0.5
    assert res["onsets_counted"]["model"] == 32
    assert res["chord_root_agreement"]["model"] == 0.5  # its label is always C
    # the human part's reduction (see test_data_loaders): bass C G, alto G C D G, tenor E B: all 8 onsets
    # are tones of the chord annotated where they start (C, C, G7, Em7 ...)
    assert res["note_in_chord"]["human_piano"] == 1.0 and res["onsets_counted"]["human_piano"] == 8
    assert 0.0 <= res["note_in_chord"]["rule_based"] <= 1.0
    assert res["accomp_nll_per_token"] == pytest.approx((5 + 4 + 3 + 2) / 4)
    assert res["nll_per_stream"] == {"chord": 5.0, "bass": 4.0, "tenor": 3.0, "alto": 2.0}
    # ReaLchords' melody-in-chord over the 28 sounding melody frames: E G F (a beat each) over C,
    # then C for two beats over G7 and Em7. The annotated chords hold E and G (8 of 28); the
    # model's constant C label holds E, G and the C (24 of 28)
    assert res["melody_in_chord"]["annotated_chords"] == round(8 / 28, 4)
    assert res["melody_in_chord"]["model"] == round(24 / 28, 4)
    assert 0.0 <= res["melody_in_chord"]["rule_based"] <= 1.0


def long_piece(bars=16):
    """C major for half the song: melody arpeggios on the beat, one bar = 16 steps."""
    mel = []
    for b in range(bars * 4):
        mel += [on((60, 64, 67, 72)[b % 4]), HOLD, HOLD, REST]
    toks = np.full((len(mel), 5), REST, dtype=np.int16)
    toks[:, MELODY] = mel
    toks[:, CHORD] = C
    return Piece("pop909/999", "pop", "4/4", toks, (np.arange(len(mel)) % 16).astype(np.int8))


def test_recovery_reports_sixteen_beats_in_the_new_key():
    p = long_piece()
    assert jump_step(p) == 128
    res = recovery_metrics(FakeModel(pitch=60), [RecoverySong(p, (0, "maj"))], shift=5)
    assert res["songs"] == 1 and len(res["note_in_key_per_beat_after_jump"]["model"]) == 16
    # C is in F major (the new key) and in C major (before): always 1.0 for the fake
    assert res["note_in_key_per_beat_after_jump"]["model"] == [1.0] * 16
    res = recovery_metrics(FakeModel(pitch=61), [RecoverySong(p, (0, "maj"))], shift=5)
    assert res["note_in_key_per_beat_after_jump"]["model"] == [0.0] * 16  # C# is in neither key
    rules = res["note_in_key_per_beat_after_jump"]["rule_based"]
    assert len(rules) == 16 and rules[-1] == 1.0  # the rules settle in F


def test_accompany_feeds_melody_with_the_lookahead():
    seen = []

    class Spy:
        lookahead = 2

        def reset(self, style, meter):
            seen.append((style, meter))

        def advance(self, melody_token, step_in_bar, sampler):
            seen.append((melody_token, step_in_bar))
            return np.array([CHORD_NONE, REST, REST, REST])

    p = long_piece(1)
    accompany(Spy(), p, None)
    assert seen[0] == ("pop", "4/4")
    assert seen[1:4] == [(REST, 0), (REST, 1), (int(p.tokens[0, MELODY]), 2)]
    assert len(seen) == 1 + len(p)


def test_accompany_primes_an_offline_accompanist_and_rests_past_the_end():
    seen, primed = [], []

    class Teacher:
        lookahead = -3

        def reset(self, style, meter):
            pass

        def prime_melody(self, tokens):
            primed.extend(tokens)

        def advance(self, melody_token, step_in_bar, sampler):
            seen.append(melody_token)
            return np.array([CHORD_NONE, REST, REST, REST])

    p = long_piece(1)
    accompany(Teacher(), p, None)
    mel = [int(x) for x in p.tokens[:, MELODY]]
    assert primed == mel[:3]
    assert seen == mel[3:] + [REST] * 3


def test_a_sampler_that_follows_the_melody_hears_it_before_each_step():
    heard = []

    class Follower:
        def observe_melody(self, token):
            heard.append(token)

        def __call__(self, stream, logits):
            return 0

    class Spy:
        lookahead = 1

        def reset(self, style, meter):
            pass

        def advance(self, melody_token, step_in_bar, sampler):
            assert heard[-1] == melody_token  # observed before the model steps
            return np.array([CHORD_NONE, REST, REST, REST])

    p = long_piece(1)
    accompany(Spy(), p, Follower())
    assert heard == [REST] + p.tokens[:-1, MELODY].tolist()


def test_pop909_metrics_also_measure_the_model_as_the_app_plays_it(tmp_path):
    pieces = load_pop909(write_pop909_folder(tmp_path / "pop")).pieces
    res = pop909_metrics(FakeModel(pitch=60), pieces, played_sampler=lambda seed: make_sampler(0.0, seed))
    assert res["note_in_chord"]["model_as_played"] == 0.5 and res["onsets_counted"]["model_as_played"] == 32
    assert res["melody_in_chord"]["model_as_played"] == round(24 / 28, 4)
    assert "model_as_played" not in pop909_metrics(FakeModel(pitch=60), pieces)["note_in_chord"]


def test_pop909_metrics_measure_the_offline_render_as_a_render_fits_the_sampler(tmp_path):
    pieces = load_pop909(write_pop909_folder(tmp_path / "pop")).pieces
    fitted = []

    class Sampler:
        def __init__(self, seed):
            self.draw = make_sampler(0.0, seed)

        def fit_to(self, acc):
            fitted.append(acc.lookahead)

        def __call__(self, stream, logits):
            return self.draw(stream, logits)

    class Teacher(FakeModel):
        def accompanist(self, seed=0):
            acc = super().accompanist(seed)
            acc.lookahead = -4  # hears the melody a beat ahead
            acc.prime_melody = lambda tokens: None
            return acc

    res = pop909_metrics(FakeModel(pitch=60), pieces, played_sampler=Sampler, offline=Teacher(pitch=67))
    # the offline model's bass plays G where the live one plays C: a C-major song hears each differently
    assert res["onsets_counted"]["offline_as_played"] == 32
    assert res["note_in_chord"]["offline_as_played"] != res["note_in_chord"]["model_as_played"]
    # each song: the sampler fitted to the live model (as the engine fits it), then to the
    # offline one (as a render fits it), once each
    assert fitted == [1, -4] * len(pieces)
    live_only = pop909_metrics(FakeModel(pitch=60), pieces, played_sampler=Sampler)
    assert "offline_as_played" not in live_only["note_in_chord"]


def test_chord_root_agreement():
    from models.evaluate import chord_root_agreement

    gen = np.array([C, chord_token(0, "min7"), CHORD_NONE, G7, C])
    ann = np.array([C, C, C, chord_token(7, "maj"), CHORD_NONE])
    assert chord_root_agreement(gen, ann) == (3, 4)


class DownbeatC(FakeModel):
    """Plays C on every downbeat and C# on every other step (to check step alignment)."""

    def accompanist(self, seed=0):
        class Acc:
            lookahead = 1

            def reset(self, style, meter):
                pass

            def advance(self, melody_token, step_in_bar, sampler):
                return np.array([C, on(60 if step_in_bar == 0 else 61), REST, REST])

        return Acc()


def test_recovery_on_a_long_song_starts_the_model_late_but_aligned():
    p = long_piece(bars=48)
    t0 = jump_step(p)
    assert t0 == 384 and t0 - 64 - 256 > 0  # the model's run starts after the top of the song
    res = recovery_metrics(DownbeatC(), [RecoverySong(p, (0, "maj"))], shift=5)
    assert (
        res["note_in_key_per_beat_after_jump"]["model"] == [0.25, 0.0, 0.0, 0.0] * 4
    )  # one C among 4 onsets per downbeat
    assert res["note_in_key_16_beats_before_jump"]["model"] == pytest.approx(4 / 64, abs=1e-4)


def test_the_sampler_keeps_the_onset_rate_of_the_temperature_and_sharpens_only_the_pitch():
    from models.evaluate import make_sampler
    from models.tokens import BASS, CHORD, HOLD, NOTE_BASE, VOCAB_SIZES

    V = VOCAB_SIZES[BASS]
    logits = np.full(V, -2.0)
    logits[HOLD] = 0.5
    logits[NOTE_BASE + 40] = 1.0  # the likely pitch
    logits[NOTE_BASE + 41 : NOTE_BASE + 60] = 0.0  # a long tail of plausible ones
    n = 4000
    samplers = {pt: make_sampler(0.9, seed=1, pitch_temperature=pt) for pt in (0.9, 0.3)}
    draws = {pt: [s(BASS, logits) for _ in range(n)] for pt, s in samplers.items()}
    onset_rate = {pt: np.mean(np.array(d) >= NOTE_BASE) for pt, d in draws.items()}
    top_share = {pt: np.mean(np.array(d)[np.array(d) >= NOTE_BASE] == NOTE_BASE + 40) for pt, d in draws.items()}
    assert abs(onset_rate[0.3] - onset_rate[0.9]) < 0.03  # the rhythm is the temperature's
    assert top_share[0.3] > top_share[0.9] + 0.3  # the pitch is sharper
    # chords ignore the pitch temperature: drawn at their own (given, or the default share)
    c = np.zeros(VOCAB_SIZES[CHORD])
    c[5] = 1.0
    plain = make_sampler(0.9, seed=2, pitch_temperature=0.01, chord_temperature=0.9)
    shared = make_sampler(0.9, seed=2, pitch_temperature=0.01)
    share_plain = np.mean([plain(CHORD, c) == 5 for _ in range(2000)])
    share_default = np.mean([shared(CHORD, c) == 5 for _ in range(2000)])
    assert share_plain < 0.2
    assert share_default > share_plain + 0.05

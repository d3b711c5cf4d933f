"""The listening measures on parts rendered by the real engine (engine.offline.render_melody,
the real SoundFont synth): hand-made parts whose answers are known, and the rules as the
engine plays them equal to the rules run on the grid."""

from __future__ import annotations

import numpy as np
import pytest

from liveband.listening import hear, human_part, listening_metrics, rules_source
from liveband.paths import find_soundfont
from models.data.piece import Piece
from models.evaluate import accompany
from models.listen import Note, harmony_counts, notes_from_tokens
from models.rules import RuleAccompanist
from models.sampling import make_sampler
from models.tokens import ALTO, BASS, CHORD, CHORD_NONE, HOLD, MELODY, NOTE_BASE, NUM_STREAMS, REST, TENOR, chord_token

C = chord_token(0, "maj")


def on(p: int) -> int:
    return NOTE_BASE + p


@pytest.fixture(scope="module")
def soundfont():
    return find_soundfont(None)


def _piece(melody: list[int], first_step_in_bar: int = 0, name: str = "t/1") -> Piece:
    n = len(melody)
    tok = np.full((n, NUM_STREAMS), REST, np.int16)
    tok[:, MELODY] = melody
    tok[:, CHORD] = CHORD_NONE
    sib = ((np.arange(n) + first_step_in_bar) % 16).astype(np.int8)
    return Piece(name, "pop", "4/4", tok, sib)


# a beat each: C4, E4, G4, a beat's rest, C5 for two beats, then two beats of rest (32 steps)
MEL = (
    [on(60), HOLD, HOLD, HOLD, on(64), HOLD, HOLD, HOLD, on(67), HOLD, HOLD, HOLD, REST, REST, REST, REST, on(72)]
    + [HOLD] * 7
    + [REST] * 8
)


def _voices_on(piece: Piece, delay_steps: int) -> np.ndarray:
    """A bass that strikes each melody note's pitch class (two octaves down) ``delay_steps``
    after the melody does, holding it until the next one."""
    frames = np.tile(np.array([CHORD_NONE, REST, REST, REST], np.int64), (len(piece), 1))
    mel = piece.tokens[:, MELODY]
    for t in np.nonzero(mel >= NOTE_BASE)[0]:
        if t + delay_steps < len(piece):
            frames[t + delay_steps, 1] = int(mel[t]) - 24
    cur = REST
    for t in range(len(piece)):
        if frames[t, 1] >= NOTE_BASE:
            cur = HOLD
        elif cur == HOLD:
            frames[t, 1] = HOLD
    return frames


@pytest.mark.parametrize("first_step_in_bar", [0, 12])  # 12: a song that starts inside a bar
def test_engine_renders_a_given_part_as_its_notes(soundfont, first_step_in_bar):
    p = _piece(MEL, first_step_in_bar)
    frames = np.tile(np.array([C, REST, REST, REST], np.int64), (len(p), 1))
    frames[0, 1:] = [on(36), on(52), on(55)]
    frames[1:8, 1:] = HOLD
    heard = hear(p, frames, soundfont)
    assert heard.frames.tolist() == frames.tolist()
    assert heard.melody == notes_from_tokens(p.tokens[:, MELODY])
    # bass and keys hold 8 steps; the pad (the chord's close voicing) sounds on to the end
    want = sorted([Note(0, 8, 36), Note(0, 8, 52), Note(0, 8, 55)] + [Note(0, len(p), q) for q in (55, 60, 64)])
    got = sorted(Note(n.start, min(n.end, len(p)), n.pitch) for n in heard.band)
    assert got == want


def test_a_band_on_the_onset_is_now_and_a_band_a_beat_behind_is_late(soundfont):
    p = _piece(MEL)
    on_time = hear(p, _voices_on(p, 0), soundfont)
    assert harmony_counts(on_time.melody, on_time.band) == {"now": (4, 4), "late": (2, 4), "clash": (0, 4)}
    behind = hear(p, _voices_on(p, 4), soundfont)
    now, late = (harmony_counts(behind.melody, behind.band)[k] for k in ("now", "late"))
    assert now == (0, 4) and late == (4, 4)


def test_the_engine_plays_the_rules_as_the_grid_does(soundfont):
    """The melody reaches the accompanist through the engine's quantiser exactly as the
    piece's tokens: the frames the engine played equal the rules run on the grid."""
    rng = np.random.default_rng(0)
    mel = []
    while len(mel) < 96:
        k = int(rng.integers(1, 6))
        mel += [on(int(rng.choice([60, 62, 64, 65, 67, 69, 71, 72])))] + [HOLD] * (k - 1)
        if rng.random() < 0.2:
            mel += [REST]
    p = _piece(mel[:96], 4)
    heard = hear(p, RuleAccompanist(), soundfont)
    padded = _piece([REST] * 4 + mel[:96], 0)
    want = accompany(RuleAccompanist(), padded, make_sampler(0.0, 0))[4:]
    assert heard.frames.tolist() == want.tolist()
    assert (heard.frames[:, 0] != CHORD_NONE).any()


def test_listening_metrics_reports_every_measure_per_source(soundfont):
    notes = [on(60), HOLD, on(64), HOLD, on(67), HOLD, on(72), HOLD]
    chords = [chord_token(0, "maj")] * 32 + [chord_token(7, "maj")] * 32
    mel = notes * 40
    p = _piece(mel)
    tok = p.tokens.copy()
    tok[:, CHORD] = chords * 5
    tok[:, BASS] = [on(36) if t % 8 == 0 else HOLD for t in range(320)]
    tok[:, TENOR] = REST
    tok[:, ALTO] = REST
    p = Piece("t/song", "pop", "4/4", tok, p.step_in_bar)
    silent = _piece([REST] * 16, name="t/silent")  # no melody: nothing to render, skipped
    res = listening_metrics([p, silent], {"human": human_part, "rule_based": rules_source}, soundfont)
    assert res["songs"] == 1
    for key in ("melody_in_chord", "harmony_now", "harmony_late", "clash", "chord_length_entropy"):
        assert set(res[key]) == {"human", "rule_based"}, key
    assert res["chord_length_entropy"]["human"] == 0.0  # every chord lasts 32 steps
    assert res["melody_onsets"] == {"human": 160, "rule_based": 160}
    for shift in ("shift_+6", "shift_+5"):
        r = res["perturbation"][shift]
        assert r["songs"] == 1 and len(r["melody_in_chord_per_beat"]["rule_based"]) == 64
        assert set(r["beats_to_recover"]) == {"human", "rule_based"}
    # the annotated chords do not follow a tritone jump: the melody's C E G C meets the C and G
    # chords before it, and F# A# C# F# never meets them after it
    assert res["perturbation"]["shift_+6"]["beats_to_recover"]["human"] is None


def test_an_offline_source_that_knows_the_melody_is_measured_on_every_excerpt(soundfont):
    """A source given as frames per piece (as an offline render that knows the melody in
    advance would be): it is asked again for each transposed excerpt, so an oracle that
    plays the melody's own pitch class recovers at once."""
    asked = []

    def oracle(piece: Piece, seed: int) -> np.ndarray:
        asked.append(piece.name)
        mel = piece.tokens[:, MELODY]
        frames = np.tile(np.array([CHORD_NONE, REST, REST, REST], np.int64), (len(piece), 1))
        pc = -1
        for t, x in enumerate(mel):
            pc = int(x) - NOTE_BASE if x >= NOTE_BASE else (pc if x == HOLD else -1)
            if pc >= 0:
                frames[t, 0] = chord_token(pc % 12, "maj")
                frames[t, 1] = int(x) - 24 if x >= NOTE_BASE else HOLD
        return frames

    mel = [on(60), HOLD, on(64), HOLD, on(67), HOLD, REST, on(65)] * 40
    res = listening_metrics([_piece(mel, name="t/tune")], {"offline": oracle}, soundfont)
    assert asked == ["t/tune", "t/tune@+6", "t/tune@+5"]
    assert res["melody_in_chord"]["offline"] == 1.0 and res["harmony_now"]["offline"] == 1.0
    assert res["clash"]["offline"] == 0.0
    for shift in ("shift_+6", "shift_+5"):
        r = res["perturbation"][shift]
        assert r["pre_jump_level"]["offline"] == 1.0 and r["beats_to_recover"]["offline"] == 1
        assert set(r["melody_in_chord_per_beat"]["offline"]) == {1.0}

"""Each corpus loader on small files written in its exact format: hand-worked notes, exact
encode -> decode, and bad input skipped-and-counted with a clear reason."""

from __future__ import annotations

import numpy as np
import pytest
from corpus_fixtures import (
    JSB_CHORALE,
    NOTT_CHORDS,
    NOTT_MELODY,
    POP_CHORDS,
    POP_MELODY,
    POP_PIANO,
    write_jsb,
    write_nottingham_tune,
    write_pop909_folder,
    write_pop909_song,
)

from models.data import (
    decode_chords,
    decode_piece,
    load_jsb,
    load_music21_folk,
    load_nottingham,
    load_pop909,
    quantised_notes,
)
from models.data.folk import quantise_tune
from models.data.pop909 import read_key, seconds_to_steps
from models.tokens import CHORD, CHORD_NONE, CHORD_UNKNOWN, chord_token

POP_EXPECTED = {
    "melody": [(64, 0, 4), (67, 4, 8), (65, 8, 12), (72, 16, 32)],
    "bass": [(48, 0, 16), (43, 16, 32)],
    "alto": [(55, 0, 8), (60, 8, 16), (62, 16, 24), (67, 24, 32)],
    "tenor": [(52, 0, 8), (59, 16, 24)],
}


def test_pop909_song_hand_worked(tmp_path):
    write_pop909_folder(tmp_path / "pop", ("001",))
    res = load_pop909(tmp_path / "pop")
    assert res.skipped == []
    (piece,) = res.pieces
    assert (piece.name, piece.style, piece.meter, len(piece)) == ("pop909/001", "pop", "4/4", 32)
    assert decode_piece(piece) == POP_EXPECTED
    assert decode_chords(piece) == [
        (chord_token(0, "maj"), 0, 16),
        (chord_token(7, "7"), 16, 24),
        (chord_token(4, "min7"), 24, 32),
    ]
    assert piece.step_in_bar.tolist() == list(range(16)) * 2
    assert decode_piece(piece) == quantised_notes(tmp_path / "pop" / "001", "pop909")
    assert read_key(tmp_path / "pop" / "001") == (0, "maj")


def test_pop909_triple_time_from_six_beat_downbeat_spacing(tmp_path):
    write_pop909_song(
        tmp_path / "pop", "002", [(67, 0, 3), (69, 3, 6)], [(43, 0, 6)], [(0, 6, "G:maj")], beats=12, beats_per_bar=3
    )
    (piece,) = load_pop909(tmp_path / "pop").pieces
    assert piece.meter == "3/4"
    assert piece.step_in_bar.tolist() == list(range(12)) * 2
    assert decode_piece(piece)["melody"] == [(67, 0, 12), (69, 12, 24)]


def test_seconds_to_steps_interpolates_between_uneven_beats():
    beats = np.array([1.0, 2.0, 2.5, 3.5])
    got = seconds_to_steps(np.array([0.5, 1.0, 1.5, 2.25, 2.5, 3.0, 4.0]), beats)
    assert got.tolist() == [-2.0, 0.0, 2.0, 6.0, 8.0, 10.0, 14.0]


def test_pop909_bad_songs_are_skipped_and_counted(tmp_path):
    folder = write_pop909_folder(tmp_path / "pop", ("001",))
    write_pop909_song(folder, "002", POP_MELODY, POP_PIANO, POP_CHORDS, beats=8, with_melody_track=False)
    write_pop909_song(folder, "003", POP_MELODY, POP_PIANO, POP_CHORDS, beats=8)
    (folder / "003" / "003.mid").write_bytes(b"MThd this is not a midi file")
    res = load_pop909(folder)
    assert [p.name for p in res.pieces] == ["pop909/001"]
    reasons = dict(res.skipped)
    assert "no MELODY track" in reasons["pop909/002"]
    assert reasons["pop909/003"].startswith("corrupt MIDI: 003.mid")
    assert res.skipped_reasons() == {"no MELODY track in 002.mid": 1, "corrupt MIDI": 1}


def test_pop909_empty_or_missing_folder_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no POP909 songs"):
        load_pop909(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pop909(tmp_path / "nope")


def test_pop909_train_valid_filter(tmp_path):
    folder = write_pop909_folder(tmp_path / "pop", ("004", "005", "015", "016"))
    assert [p.name for p in load_pop909(folder, only="valid").pieces] == ["pop909/005", "pop909/015"]
    assert [p.name for p in load_pop909(folder, only="train").pieces] == ["pop909/004", "pop909/016"]


def test_nottingham_tune_hand_worked(tmp_path):
    path = write_nottingham_tune(tmp_path / "nott" / "MIDI" / "waltz1.mid", NOTT_MELODY, NOTT_CHORDS)
    res = load_nottingham(tmp_path / "nott")
    (piece,) = res.pieces
    assert (piece.name, piece.style, piece.meter, len(piece)) == ("nottingham/waltz1", "folk", "3/4", 36)
    assert decode_piece(piece) == {
        "melody": [(74, 8, 12), (79, 12, 16), (78, 16, 18), (76, 18, 20), (74, 20, 24), (72, 24, 32), (71, 32, 36)],
        "bass": [(43, 12, 24), (38, 24, 36)],
        "tenor": [(47, 12, 24), (45, 24, 36)],
        "alto": [(50, 12, 24), (48, 24, 36)],
    }
    assert decode_chords(piece) == [(CHORD_NONE, 0, 12), (chord_token(7, "maj"), 12, 24), (chord_token(2, "7"), 24, 36)]
    assert piece.step_in_bar.tolist() == [i % 12 for i in range(36)]
    assert decode_piece(piece) == quantised_notes(path, "nottingham")


def test_nottingham_six_eight_and_bad_files(tmp_path):
    midi = tmp_path / "MIDI"
    write_nottingham_tune(midi / "jig1.mid", [(67, 0, 1.5), (69, 1.5, 3)], [(43, 0, 3), (47, 0, 3)], 6, 8)
    write_nottingham_tune(midi / "slip1.mid", [(67, 0, 1.5)], [(43, 0, 1.5)], 9, 8)
    write_nottingham_tune(midi / "solo.mid", [(67, 0, 1.5)], [], 6, 8)
    (midi / "broken.mid").write_bytes(b"\x00\x01garbage")
    res = load_nottingham(tmp_path)
    (piece,) = res.pieces
    assert piece.meter == "6/8" and decode_piece(piece)["melody"] == [(67, 0, 6), (69, 6, 12)]
    reasons = dict(res.skipped)
    assert reasons["nottingham/slip1"] == "unsupported meter: 9/8"
    assert "no chord track" in reasons["nottingham/solo"]
    assert reasons["nottingham/broken"].startswith("corrupt MIDI")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Nottingham MIDI"):
        load_nottingham(tmp_path / "empty")


def test_jsb_hand_worked_and_hold_rule(tmp_path):
    path = write_jsb(tmp_path / "jsb.json", {"train": [JSB_CHORALE], "valid": [JSB_CHORALE[:4], [[60, 55]]]})
    (piece,) = load_jsb(path, "train").pieces
    assert (piece.name, piece.style, piece.meter) == ("jsb/train/0", "chorale", "4/4")
    assert decode_piece(piece) == {
        "melody": [(67, 0, 4), (69, 4, 5), (72, 6, 8)],  # the re-strike at step 2 reads as held
        "alto": [(64, 0, 2), (62, 2, 4), (60, 4, 6), (64, 6, 8)],
        "tenor": [(60, 0, 2), (59, 2, 4), (57, 4, 6), (55, 6, 8)],
        "bass": [(48, 0, 2), (43, 2, 4), (45, 4, 6), (48, 6, 8)],
    }
    assert (piece.tokens[:, CHORD] == CHORD_UNKNOWN).all()
    assert decode_piece(piece) == quantised_notes(path, "jsb", split="train", index=0)
    res = load_jsb(path, "valid")
    assert len(res.pieces) == 1 and res.skipped[0][0] == "jsb/valid/1"
    with pytest.raises(ValueError, match="no split 'test'"):
        load_jsb(path, "test")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a Jsb16thSeparated-format"):
        load_jsb(tmp_path / "bad.json", "train")


def test_music21_folk_tune_with_chord_symbols():
    abc = 'X:1\nT:t\nM:3/4\nL:1/8\nK:G\nD2|"G"G2 B2 d2|"D7"A4 F2|"Em"E2 G2 B2|"C"c6|]\n'
    song = quantise_tune(abc, "music21/test/0")
    piece = song.to_piece()
    assert piece.meter == "3/4" and decode_piece(piece) == song.notes
    assert song.notes["melody"][:3] == [(62, 0, 4), (67, 4, 8), (71, 8, 12)]
    assert song.notes["bass"] == [(55, 4, 16), (50, 16, 28), (52, 28, 40), (48, 40, 52)]
    assert [c for c, _, _ in decode_chords(piece)] == [
        CHORD_NONE,
        chord_token(7, "maj"),
        chord_token(2, "7"),
        chord_token(4, "min"),
        chord_token(0, "maj"),
    ]
    # the pickup (two eighths) puts the first full bar's downbeat at step 4
    assert piece.step_in_bar[4] == 0 and piece.step_in_bar[0] == 8


def test_music21_is_an_extra_imported_only_when_a_tune_is_read(monkeypatch):
    import subprocess
    import sys

    code = "import sys, models.data, models.data.folk, models.data.corpus; print('music21' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
    monkeypatch.setitem(sys.modules, "music21", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'liveband\[folk\]'"):
        load_music21_folk(limit=1)


def test_music21_shipped_folk_tunes_carry_no_chord_symbols():
    res = load_music21_folk(limit=300)
    assert res.pieces == [] and res.skipped_count == 300
    assert res.skipped_reasons() == {"no chord symbols": 300}

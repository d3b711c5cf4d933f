"""build_corpus splits (evaluation data never in train), its cache, transposition and the split rule."""

from __future__ import annotations

import os

import numpy as np
import pytest
from corpus_fixtures import JSB_CHORALE, NOTT_CHORDS, NOTT_MELODY, write_jsb, write_nottingham_tune, write_pop909_folder

from models.data import Piece, build_corpus, decode_piece, split_train_valid, transpose
from models.data.corpus import default_cache_dir, load_corpus
from models.onnxcache import cache_dir
from models.tokens import CHORD, HOLD, NOTE_BASE, REST, chord_of_token, chord_token


def make_data(root):
    write_pop909_folder(root / "pop909", ("001", "005", "012"))
    for i in range(6):
        write_nottingham_tune(root / "nottingham" / "MIDI" / f"reel{i}.mid", NOTT_MELODY, NOTT_CHORDS)
    (root / "jsb").mkdir()
    write_jsb(root / "jsb" / "Jsb16thSeparated.json", {"train": [JSB_CHORALE] * 3, "valid": [JSB_CHORALE] * 2})
    return root


def names(pieces):
    return sorted(p.name for p in pieces)


def test_build_corpus_splits_and_keeps_eval_data_out_of_train(tmp_path):
    data = make_data(tmp_path / "data")
    corpus = build_corpus(data, cache_dir=tmp_path / "cache", valid_fraction=0.5, seed=3)
    train, valid = names(corpus["train"]), names(corpus["valid"])
    assert not set(train) & set(valid)
    assert [n for n in valid if n.startswith("pop909")] == ["pop909/005"]
    assert [n for n in valid if n.startswith("jsb")] == ["jsb/valid/0", "jsb/valid/1"]
    assert [n for n in train if n.startswith("jsb")] == ["jsb/train/0", "jsb/train/1", "jsb/train/2"]
    nott = [n for n in train + valid if n.startswith("nottingham")]
    assert len(nott) == 6
    expected_valid = names(
        split_train_valid([p for p in corpus["train"] + corpus["valid"] if p.name.startswith("nottingham")], 0.5, 3)[1]
    )
    assert [n for n in valid if n.startswith("nottingham")] == expected_valid


def test_cache_is_reused_and_invalidated_by_a_changed_file(tmp_path):
    data = make_data(tmp_path / "data")
    cache = tmp_path / "cache"
    first = build_corpus(data, cache_dir=cache)
    (npz,) = cache.glob("corpus-*.npz")
    # a cache hit must not re-read the sources: break a source without changing its size/mtime
    jsb = data / "jsb" / "Jsb16thSeparated.json"
    st = jsb.stat()
    jsb.write_bytes(b"x" * st.st_size)
    os.utime(jsb, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = build_corpus(data, cache_dir=cache)
    for split in ("train", "valid"):
        assert names(again[split]) == names(first[split])
        for a, b in zip(sorted(first[split], key=lambda p: p.name), sorted(again[split], key=lambda p: p.name)):
            assert (a.style, a.meter) == (b.style, b.meter)
            np.testing.assert_array_equal(a.tokens, b.tokens)
            np.testing.assert_array_equal(a.step_in_bar, b.step_in_bar)
    # a real change (new mtime) is noticed: the broken JSON is parsed and fails loudly
    os.utime(jsb, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="not a Jsb16thSeparated-format"):
        build_corpus(data, cache_dir=cache)
    assert npz.exists()


def test_the_corpus_cache_is_a_folder_of_the_one_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEBAND_CACHE", str(tmp_path))
    assert default_cache_dir() == cache_dir("corpus") == tmp_path / "corpus"


def test_damaged_cache_is_rebuilt(tmp_path):
    data = make_data(tmp_path / "data")
    cache = tmp_path / "cache"
    build_corpus(data, cache_dir=cache)
    (npz,) = cache.glob("corpus-*.npz")
    npz.write_bytes(b"not an npz")
    corpus = load_corpus(data, cache_dir=cache)
    assert len(corpus.splits["train"]) > 0
    assert npz.stat().st_size > 100


def test_empty_data_folder_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no corpus in"):
        build_corpus(tmp_path, cache_dir=tmp_path / "cache")


def piece_of(tokens, name="x"):
    tokens = np.array(tokens, dtype=np.int16)
    return Piece(name, "pop", "4/4", tokens, np.arange(len(tokens), dtype=np.int8) % 16)


def test_transpose_moves_notes_and_rotates_chord_roots():
    p = piece_of(
        [
            [NOTE_BASE + 60, chord_token(11, "min7"), NOTE_BASE + 40, REST, NOTE_BASE + 64],
            [HOLD, chord_token(11, "min7"), HOLD, REST, HOLD],
        ]
    )
    up = transpose(p, 3)
    assert decode_piece(up)["melody"] == [(63, 0, 2)]
    assert decode_piece(up)["bass"] == [(43, 0, 2)]
    assert chord_of_token(int(up.tokens[0, CHORD])) == (2, "min7")
    assert up.tokens[1].tolist()[2:] == [HOLD, REST, HOLD]
    np.testing.assert_array_equal(transpose(up, -3).tokens, p.tokens)


def test_transpose_out_of_range_is_none():
    p = piece_of([[NOTE_BASE + 125, 2, REST, REST, REST]])
    assert transpose(p, 3) is None
    assert transpose(p, 2) is not None


def test_split_is_deterministic_and_independent_of_order_and_company():
    pieces = [piece_of([[REST, 2, REST, REST, REST]], name=f"nottingham/t{i}") for i in range(200)]
    tr1, va1 = split_train_valid(pieces, 0.2, seed=0)
    tr2, va2 = split_train_valid(list(reversed(pieces))[:150], 0.2, seed=0)
    assert 20 <= len(va1) <= 60
    assert set(names(va2)) == set(names(va1)) & set(names(pieces[50:]))
    _, va3 = split_train_valid(pieces, 0.2, seed=1)
    assert names(va3) != names(va1)

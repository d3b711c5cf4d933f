"""`liveband eval` end to end: a real checkpoint file (the tiny debug model, saved and loaded
through safetensors) on small corpus files in the exact POP909 and JSB formats."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "data"))
from corpus_fixtures import JSB_CHORALE, write_jsb, write_pop909_song  # noqa: E402

from liveband.cli import main  # noqa: E402


def write_long_song(folder: Path, num: str, bars: int = 12) -> None:
    """A C - Am - F - G loop, one chord per bar: melody on the chord tones, piano block chords."""
    prog = [
        (0, "C:maj", (48, 55, 64)),
        (9, "A:min", (45, 52, 60)),
        (5, "F:maj", (41, 57, 65)),
        (7, "G:maj", (43, 59, 62)),
    ]
    melody, piano, chords = [], [], []
    for bar in range(bars):
        _, label, voicing = prog[bar % 4]
        b0 = 4 * bar
        melody += [(voicing[2] + 12, b0, b0 + 1), (voicing[1] + 12, b0 + 1, b0 + 2), (voicing[2] + 12, b0 + 2, b0 + 4)]
        piano += [(p, b0, b0 + 4) for p in voicing]
        chords.append((b0, b0 + 4, label))
    write_pop909_song(folder, num, melody, piano, chords, beats=4 * bars)


@pytest.fixture()
def eval_files(tmp_path):
    from models.checkpoint import save_model
    from models.runtime import debug_model

    ckpt = save_model(debug_model(seed=1).model, tmp_path / "debug.safetensors")
    jsb = write_jsb(tmp_path / "jsb.json", {"train": [JSB_CHORALE], "valid": [JSB_CHORALE * 2, JSB_CHORALE]})
    for num in ("001", "002", "003"):
        write_long_song(tmp_path / "pop", num)
    return ckpt, jsb, tmp_path / "pop"


def test_eval_prints_json_with_every_metric(eval_files, capsys):
    ckpt, jsb, pop = eval_files
    rc = main(
        [
            "eval",
            "--checkpoint",
            str(ckpt),
            "--jsb",
            str(jsb),
            "--split",
            "valid",
            "--pop909",
            str(pop),
            "--limit",
            "2",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoint"] == str(ckpt) and out["parameters"] > 0
    j = out["jsb"]
    assert j["split"] == "valid" and j["chorales"] == 2 and j["steps"] == 24 and j["tokens_scored"] == 96
    # a random model over ~131-token vocabularies scores far above a trained one, but finitely
    assert 1.0 < j["nll_satb_per_token"] < 10.0 and 1.0 < j["nll_atb_given_soprano_per_token"] < 10.0
    assert j["anchors"] == {"TonicNet (with chord tokens)": 0.22, "Music Transformer": 0.335, "Coconet": 0.436}
    assert "HOLD" in j["representation"]
    p = out["pop909"]
    assert p["songs"] == 2 and p["accomp_nll_per_token"] > 0
    nic = p["note_in_chord"]
    assert nic["human_piano"] == 1.0  # block chords of the annotated chords
    assert 0.0 <= nic["model"] <= 1.0 and nic["rule_based"] > 0.5
    assert set(out["recovery"]) == {"shift_+5", "shift_+6"}
    r = out["recovery"]["shift_+6"]
    assert r["songs"] == 2 and r["shift_semitones"] == 6
    assert len(r["note_in_key_per_beat_after_jump"]["model"]) == 16
    assert len(r["note_in_key_per_beat_after_jump"]["rule_based"]) == 16


def test_eval_is_deterministic_for_a_seed(eval_files, capsys):
    ckpt, _, pop = eval_files
    args = ["eval", "--checkpoint", str(ckpt), "--pop909", str(pop), "--limit", "1"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    second = json.loads(capsys.readouterr().out)
    main(args[:-2] + ["--limit", "1", "--seed", "7"])
    third = json.loads(capsys.readouterr().out)
    assert first["pop909"] == second["pop909"]
    assert first["listening"]["pop909"] == second["listening"]["pop909"]
    assert (
        third["pop909"]["onsets_counted"]["model"] != first["pop909"]["onsets_counted"]["model"]
        or third["pop909"]["note_in_chord"]["model"] != first["pop909"]["note_in_chord"]["model"]
    )


def test_eval_bad_inputs_are_one_line_errors(eval_files, tmp_path, capsys):
    ckpt, jsb, pop = eval_files
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    cases = [
        (["--checkpoint", str(bad), "--jsb", str(jsb)], str(bad)),
        (["--checkpoint", str(ckpt), "--jsb", str(tmp_path / "missing.json")], "JSB file not found"),
        (["--checkpoint", str(ckpt), "--jsb", str(jsb), "--split", "test"], "no split 'test'"),
        (["--checkpoint", str(ckpt), "--pop909", str(tmp_path / "nope")], "POP909 folder not found"),
        (["--checkpoint", str(ckpt), "--pop909", str(tmp_path / "empty")], "no POP909 songs"),
        (["--checkpoint", str(ckpt), "--pop909", str(pop), "--offline-checkpoint", str(bad)], str(bad)),
    ]
    (tmp_path / "empty").mkdir()
    for extra, needle in cases:
        assert main(["eval", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and needle in err, err


LISTENING_MEASURES = ("melody_in_chord", "harmony_now", "harmony_late", "clash", "chord_length_entropy")


def write_long_tune(path: Path, bars: int = 20) -> None:
    """A Nottingham-format 4/4 tune: G - D7 a bar each, the melody on chord tones."""
    from corpus_fixtures import write_nottingham_tune

    melody, chords = [], []
    for bar in range(bars):
        b0 = 4 * bar
        tones = (55, 59, 62) if bar % 2 == 0 else (50, 54, 57, 60)
        melody += [(tones[2] + 12, b0, b0 + 2), (tones[1] + 12, b0 + 2, b0 + 4)]
        chords += [(p, b0, b0 + 4) for p in tones]
    write_nottingham_tune(path, melody, chords, numerator=4)


def test_eval_listening_measures_on_the_shipped_model(tmp_path, capsys):
    """The real shipped checkpoint, the real engine render and SoundFont, on songs long enough
    for the 64-beat perturbation excerpts: every measure, beside the human part and the rules."""
    for num in ("005", "015"):
        write_long_song(tmp_path / "pop", num, bars=20)
    for name in ("ashover20", "hpps24"):  # names the hash split puts in validation
        write_long_tune(tmp_path / "nott" / "MIDI" / f"{name}.mid")
    ckpt = Path(__file__).parents[2] / "models" / "checkpoints" / "default.safetensors"
    rc = main(
        [
            "eval",
            "--checkpoint",
            str(ckpt),
            "--pop909",
            str(tmp_path / "pop"),
            "--nottingham",
            str(tmp_path / "nott"),
            "--limit",
            "1",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pop909"]["melody_in_chord"]["annotated_chords"] == 1.0  # the melody is on chord tones
    played = {"model", "model_as_played", "offline_as_played", "rule_based"}
    assert set(out["pop909"]["melody_in_chord"]) == played | {"annotated_chords"}
    assert set(out["pop909"]["note_in_chord"]) == played | {"human_piano"}  # offline: liveband render's teacher
    lis = out["listening"]
    # the model as rendered and as played live (listening first, keeping to the melody's key),
    # and the shipped teacher an offline render plays
    sources = {"model", "model_live", "human", "rule_based", "offline"}
    assert set(lis["sources"]) == sources
    for corpus in ("pop909", "nottingham"):
        c = lis[corpus]
        assert c["songs"] == 1, corpus
        for m in LISTENING_MEASURES:
            assert set(c[m]) == sources, (corpus, m)
            assert all(v is not None for v in c[m].values()), (corpus, m)
        # the human part: block chords of the annotated chords under a melody on their tones
        assert c["melody_in_chord"]["human"] == 1.0 and c["harmony_now"]["human"] == 1.0, corpus
        assert c["clash"]["human"] == 0.0, corpus
        for shift in ("shift_+6", "shift_+5"):
            r = c["perturbation"][shift]
            assert r["songs"] == 1 and r["jump_beat"] == 17
            assert set(r["beats_to_recover"]) == sources
            assert all(len(v) == 64 for v in r["melody_in_chord_per_beat"].values())
            assert r["pre_jump_level"]["human"] == 1.0


def test_eval_names_a_missing_nottingham_folder(eval_files, tmp_path, capsys):
    ckpt, _, _ = eval_files
    assert main(["eval", "--checkpoint", str(ckpt), "--nottingham", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Nottingham folder not found" in err, err

"""liveband.rendering: which model a render of a file plays by default."""

import dataclasses

import pytest

from engine.melody_file import Melody, MelodyNote
from liveband.rendering import open_band
from models.runtime import DEFAULT_CHECKPOINT, OFFLINE_CHECKPOINT, default_offline_checkpoint, load_model


def test_a_render_plays_the_shipped_offline_teacher_unless_a_checkpoint_is_named():
    melody = Melody(tuple(MelodyNote(b, b + 1, 60 + b % 5) for b in range(8)), 100.0, "4/4", "4/4", "melody")
    assert default_offline_checkpoint() == (OFFLINE_CHECKPOINT if OFFLINE_CHECKPOINT.is_file() else DEFAULT_CHECKPOINT)
    _, acc, _ = open_band(melody, "torch-cpu", say=lambda m: None)
    assert acc.lookahead == load_model(default_offline_checkpoint()).pattern.lookahead
    _, live, _ = open_band(melody, "torch-cpu", str(DEFAULT_CHECKPOINT), say=lambda m: None)
    assert live.lookahead == 1


def test_the_shipped_teacher_hears_the_melody_a_beat_ahead():
    if OFFLINE_CHECKPOINT.is_file():
        lm = load_model(OFFLINE_CHECKPOINT)
        assert lm.pattern.lookahead == -4 and not lm.pattern.online
        live = load_model(DEFAULT_CHECKPOINT).config
        assert dataclasses.replace(lm.config, pattern=live.pattern) == live  # the live model's architecture


def test_an_output_that_could_not_be_written_is_refused_before_the_render(tmp_path, capsys):
    from liveband.cli import main

    src = tmp_path / "melody.mid"
    src.write_bytes(b"never read: the outputs are refused first")
    (tmp_path / "dir.mid").mkdir()
    (tmp_path / "prev.wav").write_bytes(b"the take before")
    (tmp_path / "file").write_bytes(b"a file where a folder should be")
    cases = [
        ["-o", str(tmp_path / "prev.wav"), "--midi-out", str(tmp_path / "dir.mid"), "--stems"],
        ["-o", str(tmp_path / "dir.mid" / ".." / "prev.wav"), "--midi-out", str(tmp_path / "file" / "x" / "b.mid")],
    ]
    (tmp_path / "prev.keys.wav").mkdir()
    cases.append(["-o", str(tmp_path / "prev.wav"), "--stems"])
    for argv in cases:
        assert main(["render", str(src), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "cannot write" in err, err
    assert (tmp_path / "prev.wav").read_bytes() == b"the take before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.mid", "file", "melody.mid", "prev.keys.wav", "prev.wav"]


@pytest.mark.parametrize("flag", ["-o", "--midi-out"])
def test_an_output_in_a_missing_folder_is_refused_and_no_folder_is_made(tmp_path, capsys, flag):
    from liveband.cli import main

    src = tmp_path / "melody.mid"
    src.write_bytes(b"never read: the outputs are refused first")
    out = tmp_path / "new" / "a" / ("x.wav" if flag == "-o" else "x.mid")
    argv = ["-o", str(out)] if flag == "-o" else ["-o", str(tmp_path / "x.wav"), "--midi-out", str(out)]
    assert main(["render", str(src), *argv]) == 2
    assert capsys.readouterr().err == f"liveband render: cannot write {out}: the folder {out.parent} does not exist\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["melody.mid"]


def test_outputs_are_committed_all_or_none(tmp_path):
    from liveband.errors import UserError
    from liveband.rendering import Outputs

    (tmp_path / "a.wav").write_bytes(b"old a")
    outputs = Outputs()
    for name in ("a.wav", "b.wav", "c.mid"):
        outputs.temp_for(tmp_path / name).write_bytes(b"new " + name.encode())
    (tmp_path / "c.mid").mkdir()  # appears during the render: its rename fails
    with pytest.raises(UserError, match="c.mid"):
        outputs.commit()
    outputs.discard()
    # the replaced output has its old file back, the new one is gone, nothing hidden is left
    assert (tmp_path / "a.wav").read_bytes() == b"old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "c.mid"]
    (tmp_path / "c.mid").rmdir()
    outputs = Outputs()
    for name in ("a.wav", "c.mid"):
        outputs.temp_for(tmp_path / name).write_bytes(b"new " + name.encode())
    outputs.commit()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"a.wav": b"new a.wav", "c.mid": b"new c.mid"}


def test_a_wav_that_cannot_be_read_is_one_line_naming_it_once(tmp_path):
    from liveband.errors import UserError
    from liveband.rendering import load_melody

    (tmp_path / "takes.wav").mkdir()
    with pytest.raises(UserError) as err:
        load_melody(tmp_path / "takes.wav")
    assert str(err.value) == f"{tmp_path / 'takes.wav'} is a folder, not a WAV file"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(UserError) as err:
        load_melody(bad)
    assert str(err.value) == f"not a readable WAV: {bad} (no format chunk)"

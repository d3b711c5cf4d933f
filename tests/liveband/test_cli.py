"""The one command-line parser: subcommands, defaults and one-line errors."""

import subprocess
import sys

import pytest

from liveband.cli import build_parser, main
from liveband.paths import find_soundfont


def test_every_documented_subcommand_parses():
    p = build_parser()
    assert p.parse_args(["render", "m.mid", "-o", "o.wav"]).command == "render"
    assert p.parse_args(["transcribe", "h.wav", "-o", "h.mid"]).tracker == "pesto"
    assert p.parse_args(["bench", "model"]).what == "model"
    assert p.parse_args(["eval", "--jsb", "x.json"]).split == "valid"
    assert p.parse_args(["devices"]).command == "devices"
    assert p.parse_args(["train-pitch"]).no_voicing is False
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "everything"])


def test_user_errors_print_one_line_and_exit_2(capsys, tmp_path):
    bad = tmp_path / "nothing.mid"
    rc = main(["render", str(bad), "-o", str(tmp_path / "o.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("liveband render:") and "nothing.mid" in err[0]


def test_train_pitch_rejects_a_bad_setting_in_one_line(capsys, tmp_path):
    rc = main(["train-pitch", "--epochs", "-1", "--out", str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("liveband train-pitch:")
    assert not (tmp_path / "w.safetensors").exists()


def test_missing_soundfont_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.delenv("LIVEBAND_SOUNDFONT", raising=False)
    monkeypatch.setattr("liveband.paths.SOUNDFONT_CANDIDATES", (tmp_path / "none.sf2",))
    with pytest.raises(FileNotFoundError, match="apt-get install fluid-soundfont-gm"):
        find_soundfont()
    with pytest.raises(FileNotFoundError, match="not found"):
        find_soundfont(tmp_path / "mine.sf2")


def test_console_script_runs_help():
    out = subprocess.run([sys.executable, "-m", "liveband.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("devices", "render", "transcribe", "train", "eval", "bench"):
        assert word in out.stdout

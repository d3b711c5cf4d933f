"""`liveband sessions list/export` over takes the recorder wrote."""
from __future__ import annotations

import wave

import numpy as np

from engine.events import NOTE_ON
from engine.recorder import Recorder, new_session_folder
from liveband.cli import main
from liveband.paths import sessions_dir


def make_take(seconds=0.5):
    rec = Recorder(new_session_folder(sessions_dir()), 48000, meta={"tempo": 96.0, "style": "folk"}, poll_s=0.05)
    rec.start()
    rec.ring.write(np.full((int(seconds * 48000), 2), 0.2, np.float32), 0)
    rec.add_event(0, NOTE_ON, 3, 64, 90)
    rec.stop()
    return rec.folder.name


def test_list_shows_each_take(liveband_home, capsys):
    assert main(["sessions", "list"]) == 0
    assert "no recorded sessions" in capsys.readouterr().out
    name = make_take()
    assert main(["sessions"]) == 0
    out = capsys.readouterr().out
    assert name in out and "folk" in out and "0:00.5" in out


def test_export_copies_wav_midi_and_metadata(liveband_home, tmp_path, capsys):
    name = make_take(1.0)
    assert main(["sessions", "export", name, "-o", str(tmp_path / "out")]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 3
    wav = next(p for p in paths if p.endswith(".wav"))
    with wave.open(wav) as w:
        assert w.getnframes() == 48000


def test_export_errors_are_one_line(liveband_home, tmp_path, capsys):
    assert main(["sessions", "export", "19990101-000000", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "19990101-000000" in err and "\n" not in err
    assert main(["sessions", "export"]) == 2
    assert "sessions list" in capsys.readouterr().err

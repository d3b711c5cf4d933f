"""The window's Render on the real Session (no audio stream) refuses what `liveband render`
refuses, as one notice, and loses nothing: the dialog's natural "tune.wav" beside
"tune.mid" would have written the band's MIDI over the melody, and a 40-byte file with one
huge delta time would have started a 93-hour render."""

import mido
import pytest
from PyQt6.QtCore import QSettings

from liveband.session import Session
from ui.mainwindow import MainWindow


@pytest.fixture()
def real_window(themed_app, qtbot, tmp_path, liveband_home):
    session = Session(start_audio=False)
    w = MainWindow(session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    session.close()


def _tune(path, last_delta=480):
    mid = mido.MidiFile(type=0, ticks_per_beat=96 if last_delta > 480 else 480)
    mid.tracks.append(
        mido.MidiTrack(
            [mido.Message("note_on", note=67, velocity=90, time=0), mido.Message("note_off", note=67, time=last_delta)]
        )
    )
    mid.save(str(path))
    return path


def _refused(w, qtbot, path, out, midi_out) -> str:
    w.render_file(str(path), str(out), str(midi_out), stems=False)
    qtbot.waitUntil(lambda: w.sessions_panel.job_label.text().startswith(("Rendered", "Could not")), timeout=30000)
    label = w.sessions_panel.job_label.text()
    assert label.startswith("Could not render"), label
    notices = [line for line in w.notice_lines(w.last_snapshot, plain=False) if line.startswith("Could not")]
    assert notices == [label] and len(label.splitlines()) == 1  # one notice, one line
    w.sessions_panel.job_label.setText("")
    return label


def test_render_refuses_to_overwrite_the_melody_and_an_over_long_render_as_one_notice(real_window, qtbot, tmp_path):
    w = real_window
    src = _tune(tmp_path / "tune.mid")
    before = src.read_bytes()
    msg = _refused(w, qtbot, src, tmp_path / "tune.wav", tmp_path / "tune.mid")
    assert "the MIDI" in msg and "is the input file" in msg, msg
    assert src.read_bytes() == before
    w._messages.clear()
    tiny = _tune(tmp_path / "tiny.mid", last_delta=0x0FFFFFFF)
    msg = _refused(w, qtbot, tiny, tmp_path / "band.wav", tmp_path / "band.mid")
    assert "hours of audio" in msg and "liveband render --max-minutes" in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".wav", ".mid") or p.name.startswith(".")) == [
        "tiny.mid",
        "tune.mid",
    ]

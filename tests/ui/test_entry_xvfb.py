"""The real entry point on a real (virtual) X display: `liveband play` opens the window,
plays 10 s with the computer keyboard (the hidden --autoplay option sends real key events
through the window), sounds on the PulseAudio server, and exits cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings

from ui.xvfb import Xvfb

ROOT = Path(__file__).resolve().parents[2]


def test_liveband_play_under_xvfb_jams_for_ten_seconds_and_exits_cleanly(pulse_server, tmp_path):
    exe = Path(sys.executable).parent / "liveband"
    rec_path = tmp_path / "speakers.wav"
    with Xvfb() as x:
        env = dict(
            os.environ, **x.env(), XDG_CONFIG_HOME=str(tmp_path / "config"), LIVEBAND_HOME=str(tmp_path / "home")
        )
        # Remembered settings are read by the real app: no count-in, 120 BPM.
        prefs = QSettings(str(tmp_path / "config" / "LiveBand" / "LiveBand.ini"), QSettings.Format.IniFormat)
        prefs.setValue("transport/count_in", 0)
        prefs.setValue("transport/tempo", 120.0)
        prefs.sync()
        rec = pulse_server.record_output(rec_path)
        try:
            proc = subprocess.run(
                [str(exe), "play", "--autoplay", "keyboard", "--quit-after", "10"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            rec.terminate()
            rec.wait(5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # The window closed properly: it saved its settings where we pointed it.
    ini = tmp_path / "config" / "LiveBand" / "LiveBand.ini"
    assert ini.is_file()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("input/mode") == "keyboard"
    # The computer-keyboard notes reached the session: the recorded take holds them on
    # the melody channel, the band's parts beside them.
    import mido

    from engine.parts import BAND_PARTS, MELODY

    takes = sorted((tmp_path / "home" / "sessions").glob("*/session.mid"))
    assert len(takes) == 1, takes
    ons = [m for m in mido.MidiFile(str(takes[0])) if m.type == "note_on" and m.velocity > 0]
    melody = [m.note for m in ons if m.channel == MELODY.channel]
    assert len(melody) >= 6 and set(melody) <= {60, 62, 64, 65, 67, 69, 71, 72}, melody
    import json

    assert json.loads((takes[0].parent / "session.json").read_text())["tempo"] == 120.0
    assert {m.channel for m in ons} & {p.channel for p in BAND_PARTS}
    with wave.open(str(rec_path)) as f:
        audio = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768
        sr = f.getframerate()
    assert len(audio) > sr * 2 * 8  # stereo, most of the 10 s
    assert float(np.sqrt(np.mean(audio**2))) > 0.003

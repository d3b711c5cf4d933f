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
        env = dict(os.environ, **x.env(), XDG_CONFIG_HOME=str(tmp_path / "config"),
                   LIVEBAND_HOME=str(tmp_path / "home"))
        rec = pulse_server.record_output(rec_path)
        try:
            proc = subprocess.run([str(exe), "play", "--autoplay", "keyboard", "--quit-after", "10"],
                                  env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        finally:
            rec.terminate()
            rec.wait(5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # The window closed properly: it saved its settings where we pointed it.
    ini = tmp_path / "config" / "LiveBand" / "LiveBand.ini"
    assert ini.is_file()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("input/mode") == "keyboard"
    with wave.open(str(rec_path)) as f:
        audio = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768
        sr = f.getframerate()
    assert len(audio) > sr * 2 * 8          # stereo, most of the 10 s
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.003

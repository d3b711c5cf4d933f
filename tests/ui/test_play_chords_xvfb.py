"""`liveband play --chart FILE --arranger SPLIT` on a real (virtual) X display and a real
PulseAudio server with the shipped model: the band plays the chart from the first bar
(the recorded take's pad sounds only the chart's chord) while the keyboard melody above
the split still plays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mido
from PyQt6.QtCore import QSettings

from engine import parts as P
from ui.xvfb import Xvfb

ROOT = Path(__file__).resolve().parents[2]


def test_liveband_play_with_a_chart_and_the_arranger(pulse_server, tmp_path):
    exe = Path(sys.executable).parent / "liveband"
    song = tmp_path / "song.txt"
    song.write_text("# one chord, so every pad note must be its tone\nA: | Eb | Eb |\n")
    with Xvfb() as x:
        env = dict(
            os.environ, **x.env(), XDG_CONFIG_HOME=str(tmp_path / "config"), LIVEBAND_HOME=str(tmp_path / "home")
        )
        prefs = QSettings(str(tmp_path / "config" / "LiveBand" / "LiveBand.ini"), QSettings.Format.IniFormat)
        prefs.setValue("transport/count_in", 0)
        prefs.setValue("transport/tempo", 120.0)
        prefs.sync()
        proc = subprocess.run(
            [
                str(exe),
                "play",
                "--chart",
                str(song),
                "--arranger",
                "C2",
                "--autoplay",
                "keyboard",
                "--quit-after",
                "10",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    takes = sorted((tmp_path / "home" / "sessions").glob("*/session.mid"))
    assert len(takes) == 1, takes
    pad, melody = [], []
    for tr in mido.MidiFile(str(takes[0])).tracks:
        for m in tr:
            if m.type == "note_on" and m.velocity > 0:
                (pad if m.channel == P.PAD.channel else melody if m.channel == P.MELODY.channel else []).append(m.note)
    assert len(pad) >= 3 and {n % 12 for n in pad} <= {3, 7, 10}, pad  # Eb G Bb only
    assert len(melody) >= 4  # the keyboard above C2

"""`liveband play --style rock --swing 0.6 --fills off` on a real (virtual) X display and a
real PulseAudio server: the window takes the flags, the band plays them (the recorded
take's off-beat 8ths fall at 0.6 of the beat, long:short 1.5:1), and the app remembers
them for the next launch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import mido
from PyQt6.QtCore import QSettings

from ui.xvfb import Xvfb

ROOT = Path(__file__).resolve().parents[2]
SNARE, TOM_HIGH = 38, 50


def take_onsets(path: Path) -> list[tuple[int, int, int]]:
    """(tick, channel, note) of every note-on in a take's MIDI, ticks from its start."""
    mid = mido.MidiFile(str(path))
    out = []
    for tr in mid.tracks:
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.append((tick, m.channel, m.note))
    return sorted(out)


def test_liveband_play_with_feel_flags_swings_the_band_and_remembers_them(pulse_server, tmp_path):
    exe = Path(sys.executable).parent / "liveband"
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
                "--style",
                "rock",
                "--swing",
                "0.6",
                "--fills",
                "off",
                "--autoplay",
                "keyboard",
                "--quit-after",
                "12",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ini = QSettings(str(tmp_path / "config" / "LiveBand" / "LiveBand.ini"), QSettings.Format.IniFormat)
    assert (ini.value("band/style"), float(ini.value("band/swing")), ini.value("band/fills")) == ("rock", 0.6, "off")
    takes = sorted((tmp_path / "home" / "sessions").glob("*/session.mid"))
    assert len(takes) == 1, takes
    tpb = mido.MidiFile(str(takes[0])).ticks_per_beat
    ons = take_onsets(takes[0])
    # the beat grid: where the snare's backbeat falls within a beat
    snare = Counter(t % tpb for t, ch, n in ons if ch == 9 and n == SNARE)
    assert snare, ons[:20]
    grid = snare.most_common(1)[0][0]
    off = 0.5 + 0.6 / 6  # the off-beat 8th at 0.6 of the beat; the 16ths either side move with it
    off_beat = round(tpb * off)
    swung = (round(tpb * off / 2), off_beat, round(tpb * (off + (1 - off) / 2)))  # 0.3 / 0.6 / 0.8
    for ch in (0, 9):  # rock's 8th-note bass, and the drums (a busy bar adds 16ths)
        phases = [(t - grid) % tpb for t, c, n in ons if c == ch]
        offs = [p for p in phases if tpb // 4 < p < tpb * 7 // 8]  # straight: 240 (and 360)
        assert sum(abs(p - off_beat) <= 2 for p in offs) >= 8, (ch, sorted(set(phases)))
        assert all(min(abs(p - s) for s in swung) <= 2 for p in offs), (ch, swung, sorted(set(offs)))
    assert not [n for t, c, n in ons if c == 9 and n == TOM_HIGH]  # --fills off

"""Humming into the (software) microphone with the window in Hum mode: the level meter
moves, the hummed pitch is drawn as a continuous line with the note it snapped to, and
the hummed notes appear as the melody the band follows."""

from __future__ import annotations

import math
import time
import wave
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings

from liveband.bench.synth_hum import HumSpec, make_hum
from ui.mainwindow import MainWindow

SR = 48000
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"


def test_humming_draws_the_pitch_line_and_feeds_the_band(themed_app, qtbot, pulse_server, liveband_home, tmp_path):
    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import Session

    clip = make_hum(HumSpec(seed=5, sample_rate=SR, n_notes=8, tempo=100.0))
    path = tmp_path / "hum.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes((np.clip(clip.audio, -1, 1) * 32767).astype("<i2").tobytes())
    session = Session(EngineConfig(tempo=100.0, count_in_bars=0), AudioConfig(blocksize=256))
    try:
        w = MainWindow(session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
        qtbot.addWidget(w)
        w.resize(1360, 820)
        w.show()
        w.transport.count_in.setValue(0)
        w.transport.mode_buttons["mic"].click()
        assert w.input_mode == "mic"
        # The tracker loads in the background; the banner says so until the mic is live.
        qtbot.waitUntil(lambda: not any("microphone" in n for n in session.snapshot().notices), timeout=40000)
        w.play()
        qtbot.waitUntil(lambda: w.last_snapshot is not None and w.last_snapshot.playing, timeout=20000)
        player = pulse_server.play_into_mic(path)
        seen_note, seen_level = set(), []
        # Sample the window until the whole hum has been heard: the player may start
        # late and the pitch worker may lag on a loaded machine, so a fixed clock time
        # is not the end. The end is: the player is done and the microphone's ring has
        # been drained, plus time for the last notes to reach the window.
        deadline = time.monotonic() + 3 * len(clip.audio) / SR + 30
        shot_at = settle_until = None
        while time.monotonic() < deadline:
            qtbot.wait(40)
            if w.transport.hum_label.text():
                seen_note.add(w.transport.hum_label.text())
            seen_level.append(w.transport.level.fraction())
            now = time.monotonic()
            if w.roll.hum_pitch is not None and shot_at is None:
                shot_at = now + 1.2  # a screenshot once the line has some length; keep sampling
            if shot_at is not None and now >= shot_at and not (ARTIFACTS / "humming.png").exists():
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                w.grab().save(str(ARTIFACTS / "humming.png"))
            mic = session.inputs.mic
            if settle_until is None and player.poll() is not None and (mic is None or mic.ring.available() == 0):
                settle_until = now + 1.5
            if settle_until is not None and now >= settle_until:
                break
        player.wait(timeout=10)
        sung = {p for p, _, _ in clip.notes}
        melody = [n[1] for n in session.roll(-1000) if n[0] == "melody"]
        trace = w.roll._hum[:, 1]
        w.stop()
        w.close()
    finally:
        session.close()
    assert max(seen_level) > 0.4  # the meter rose above -36 dBFS
    assert len(seen_note) >= 3, seen_note  # the snapped note name followed the voice
    voiced = trace[np.isfinite(trace)]
    assert len(voiced) > 20
    # The line is the raw voice: a legato glide between two sung notes passes through the
    # pitches in between for a few tens of ms, so a point may sit between notes, never
    # outside the sung range (an octave error would), and most points sit on a sung note.
    lo, hi = min(sung) - 1.5, max(sung) + 1.5
    assert all(lo <= v <= hi for v in voiced), voiced[(voiced < lo) | (voiced > hi)]
    on_note = np.array([min(abs(v - p) for p in sung) < 1.5 for v in voiced])
    assert on_note.mean() >= 0.85, voiced[~on_note]
    assert len(melody) >= len(sung) // 2 and all(min(abs(m - p) for p in sung) <= 1 for m in melody), melody
    assert not math.isnan(float(np.nanmean(trace)))

"""Mic mode on the real server: a hum sung into the (software) microphone becomes melody
notes on the band's clock, with the hummed pitches and their rhythm."""

from __future__ import annotations

import time
import wave

import numpy as np

from liveband.bench.synth_hum import HumSpec, make_hum
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

SR = 48000


def _wav(path, audio):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_hummed_notes_reach_the_band_in_pitch_and_time(pulse_server, liveband_home, tmp_path):
    clip = make_hum(HumSpec(seed=3, sample_rate=SR, n_notes=8, tempo=100.0))
    path = _wav(tmp_path / "hum.wav", clip.audio)
    with Session(EngineConfig(tempo=100.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        s.set_input_mode("mic")
        assert s.inputs.wait_mic(30), s.snapshot().notices
        s.play()
        time.sleep(0.3)
        player = pulse_server.play_into_mic(path)
        levels = []
        t_end = time.monotonic() + clip.audio.size / SR + 1.5
        while time.monotonic() < t_end:
            time.sleep(0.2)
            snap = s.snapshot()
            levels.append((snap.input_level_db, snap.hummed_pitch))
        player.wait(timeout=30)

        def melody():
            return [(pitch, start) for part, pitch, start, end, *_ in s.roll(-100) if part == "melody"]

        # on a loaded machine the tracker may still be catching up with the last notes
        deadline = time.monotonic() + 10
        while len(melody()) < len(clip.notes) and time.monotonic() < deadline:
            time.sleep(0.2)
        melody = melody()
        assert s.snapshot().input_mode == "mic"
    truth = clip.notes
    got, sung_pitches = np.array([p for p, _ in melody]), np.array([p for p, _, _ in truth])
    assert got.shape == sung_pitches.shape, (got, sung_pitches)
    # the tracker names most notes exactly and none off by more than a semitone
    assert np.abs(got - sung_pitches).max() <= 1 and (got == sung_pitches).mean() >= 0.75, (got, sung_pitches)
    # rhythm: onsets spaced as sung, within a 16th (0.15 s at 100 BPM)
    steps = np.array([st for _, st in melody])
    sung = np.array([on for _, on, _ in truth]) / (60.0 / 100.0 / 4)
    assert np.abs(np.diff(steps) - np.diff(sung)).max() < 1.0, (np.diff(steps), np.diff(sung))
    # the meters saw the voice while it sang
    assert any(db > -40 and p is not None for db, p in levels)


def test_input_gain_moves_the_meter_and_a_clipping_voice_gets_a_notice_that_goes(pulse_server, liveband_home, tmp_path):
    clip = make_hum(HumSpec(seed=5, sample_rate=SR, n_notes=3, tempo=120.0))
    path = _wav(tmp_path / "hum.wav", 0.5 * clip.audio / np.abs(clip.audio).max())
    with Session(EngineConfig(count_in_bars=0), AudioConfig(blocksize=256)) as s:
        try:
            s.set_input_gain(41.0)
            raise AssertionError("a gain outside -40..+40 dB was accepted")
        except ValueError as exc:
            assert "input gain" in str(exc)
        s.set_input_mode("mic")
        assert s.inputs.wait_mic(30), s.snapshot().notices

        def sing(gain_db):
            s.set_input_gain(gain_db)
            player = pulse_server.play_into_mic(path)
            peak, notices = -120.0, set()
            t_end = time.monotonic() + clip.audio.size / SR + 0.5
            while time.monotonic() < t_end:
                time.sleep(0.1)
                snap = s.snapshot()
                peak = max(peak, snap.input_level_db)
                notices |= set(snap.notices)
            player.wait(timeout=30)
            return peak, notices

        loud, loud_notices = sing(20.0)  # 0.5 peak x 10 = far over full scale
        soft, soft_notices = sing(-20.0)
        assert s.input_gain_db == -20.0
        assert loud - soft > 25.0, (loud, soft)  # 40 dB apart, the meter smooths a little
        assert any("clips" in n for n in loud_notices), loud_notices
        time.sleep(3.5)  # the hint's hold time after the last clip
        assert not any("clips" in n for n in s.snapshot().notices)


def test_the_tracker_is_ready_before_the_switch_to_hum_and_the_band_keeps_playing(pulse_server, liveband_home):
    """The session loads and warms the pitch tracker in the background after the model,
    so switching to Hum while the band plays only opens the microphone: the mic uses
    that very tracker, and the band's notes keep coming through the switch."""
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.prepare(timeout=120)
        s.inputs.tracker_loader.join(timeout=120)
        ready = s.inputs.ready_tracker
        assert ready is not None and ready.name == s.pitch_tracker
        s.play()
        time.sleep(1.0)
        before = len([n for n in s.roll(-100) if n[0] != "melody"])
        s.set_input_mode("mic")
        assert s.inputs.wait_mic(30), s.snapshot().notices
        assert s.inputs.mic.hum.tracker is ready  # no second load at the switch
        time.sleep(1.0)
        after = len([n for n in s.roll(-100) if n[0] != "melody"])
        assert after > before, (before, after)  # the band played on through the switch
        s.set_input_mode("keyboard")
        s.set_input_mode("mic")  # and again: the same tracker is reused
        assert s.inputs.wait_mic(10) and s.inputs.mic.hum.tracker is ready

"""A session without audio or MIDI hardware still constructs, says what is missing, and
renders files offline; a broken SoundFont is refused with a message naming the file."""

from __future__ import annotations

import wave

import mido
import numpy as np
import pytest

from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session, SessionError


def melody_file(path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))
    for p in (60, 64, 67, 72, 67, 64, 60, 62):
        tr.append(mido.Message("note_on", note=p, velocity=90, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=480))
    mid.save(str(path))
    return path


def test_no_audio_device_gives_a_notice_and_offline_render_still_works(liveband_home, tmp_path):
    cfg = AudioConfig(output_device="No Such Card")
    with Session(EngineConfig(tempo=120.0), cfg) as s:
        snap = s.snapshot()
        assert any("No Such Card" in n and "not found" in n for n in snap.notices), snap.notices
        assert not s.audio.active
        s.key_event(60, True)  # playing without a device is harmless
        s.key_event(60, False)
        fractions = []
        out = tmp_path / "out.wav"
        s.render_file(
            str(melody_file(tmp_path / "m.mid")), str(out), str(tmp_path / "out.mid"), progress=fractions.append
        )
    with wave.open(str(out)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert w.getnframes() > 4 * w.getframerate()  # 4 s of melody + tail
    assert np.abs(audio).max() > 1000
    assert fractions and fractions[-1] == pytest.approx(1.0)
    tracks = mido.MidiFile(str(tmp_path / "out.mid")).tracks
    assert sum(1 for t in tracks for m in t if m.type == "note_on" and m.velocity > 0) > 8


def test_broken_soundfont_is_refused_naming_the_file(liveband_home, tmp_path):
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00sfbkjunkjunkjunk")
    with pytest.raises(SessionError, match="broken.sf2"):
        Session(soundfont=str(bad), start_audio=False)
    with pytest.raises(SessionError, match="missing.sf2"):
        Session(soundfont=str(tmp_path / "missing.sf2"), start_audio=False)


def test_bad_values_are_refused_with_clear_errors(liveband_home):
    with Session(start_audio=False) as s:
        with pytest.raises(ValueError, match="tempo"):
            s.set_tempo(500)
        with pytest.raises(ValueError, match="part"):
            s.set_part("tuba", mute=True)
        with pytest.raises(ValueError, match="input mode"):
            s.set_input_mode("telepathy")
        with pytest.raises(ValueError, match="pitch"):
            s.key_event(200, True)
        s.set_part("bass", mute=True, volume=0.5, program=34)
        assert s.snapshot().parts["bass"] == type(s.snapshot().parts["bass"])(True, False, 0.5, 34)


def test_prepare_waits_for_the_band_and_a_fixed_key_is_reported_and_validated(liveband_home):
    with Session(start_audio=False) as s:
        assert s.prepare(timeout=120)
        assert s.snapshot().backend in ("torch-cpu", "onnx-cpu")  # the real model, not the rules
        s.set_key("f#m")
        assert s.snapshot().key == "F# minor"
        with pytest.raises(SessionError, match="not a key"):
            s.set_key("H major")
        assert s.snapshot().key == "F# minor"  # a bad key changes nothing
        s.set_key(None)
        assert s.snapshot().key == ""  # back to listening (nothing played)


def test_the_dropout_counter_counts_nothing_while_nothing_sounds(liveband_home):
    """The stream's underflows before Play (an idle stream, silence for silence) used to
    show as dropouts; only a gap beside sound counts for the player."""
    with Session(start_audio=False) as s:
        buf = np.zeros((256, 2), np.float32)
        for _ in range(10):  # what the audio callback does on underflow
            s.mixer.process(buf, True)
        assert s.snapshot().xruns == 0
        s.key_event(60, True)
        for _ in range(20):
            s.mixer.process(buf)
        s.mixer.process(buf, True)  # a gap in the player's note
        s.key_event(60, False)
        assert s.snapshot().xruns == 1


def test_without_an_audio_output_play_records_no_empty_take(liveband_home):
    """Nothing renders without a stream, so a take would be empty: Play says once that it
    is not recording and saves nothing (it used to save an empty take)."""
    from liveband.paths import sessions_dir

    with Session(EngineConfig(tempo=120.0), AudioConfig(output_device="No Such Card")) as s:
        assert not s.audio.active
        for _ in range(2):
            s.play()
            s.key_event(60, True)
            s.key_event(60, False)
            s.stop()
        notices = s.snapshot().notices
        assert s.list_sessions() == []
    assert sum("not recording" in n for n in notices) == 1, notices
    assert not any("take saved" in n for n in notices), notices
    assert not sessions_dir().exists() or not any(sessions_dir().iterdir())


def test_an_offline_model_is_refused_live_with_a_notice_and_still_renders_files(liveband_home, tmp_path):
    """A teacher that hears the melody a beat ahead cannot play live (the rule-based band
    plays, and a notice says why), yet the session renders a file with it."""
    import dataclasses

    from models.checkpoint import save_model
    from models.pattern import Pattern
    from models.runtime import DEBUG_CONFIG
    from models.transformer import Transformer

    ck = tmp_path / "teacher.safetensors"
    save_model(Transformer(dataclasses.replace(DEBUG_CONFIG, pattern=Pattern("delay", lookahead=-4))), ck)
    with Session(EngineConfig(tempo=120.0, checkpoint=str(ck)), start_audio=False) as s:
        assert s.prepare(120)
        notices = s.snapshot().notices
        assert any("offline render only" in n and "rule-based" in n for n in notices), notices
        out = tmp_path / "out.wav"
        s.render_file(str(melody_file(tmp_path / "m.mid")), str(out))
    with wave.open(str(out)) as w:
        assert w.getnframes() > 4 * w.getframerate()

"""The first real-audio contract: a PortAudio output stream against the software server,
rendering a FluidSynth GM chord inside the callback, keeps time and is audible."""
from __future__ import annotations

import time
import wave

import numpy as np
import sounddevice as sd

from engine.synth import Synth

SR = 48000
BLOCK = 256
SECONDS = 10.0


def test_fluidsynth_chord_streams_for_ten_seconds_without_underflow(pulse_server, soundfont, tmp_path):
    synth = Synth(soundfont, sample_rate=SR)
    for pitch in (48, 60, 64, 67):
        synth.note_on(0, pitch, 100)
    scratch = np.zeros((BLOCK, 2), dtype=np.float32)
    stats = {"calls": 0, "underflows": 0}

    def callback(outdata, frames, time_info, status):
        stats["calls"] += 1
        if status.output_underflow:
            stats["underflows"] += 1
        synth.render_into(scratch, 0, frames)
        outdata[:frames] = scratch[:frames]

    rec_path = tmp_path / "monitor.wav"
    rec = pulse_server.record_output(rec_path)
    time.sleep(0.5)
    with sd.OutputStream(samplerate=SR, blocksize=BLOCK, channels=2, dtype="float32",
                         callback=callback, latency="low") as stream:
        t0 = time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - t0
        calls_at_end = stats["calls"]
        assert stream.latency < 0.1
    time.sleep(0.3)
    rec.terminate()
    rec.wait(timeout=5)
    synth.close()

    expected = elapsed * SR / BLOCK
    assert calls_at_end >= 0.99 * expected, (calls_at_end, expected)
    assert stats["underflows"] == 0
    with wave.open(str(rec_path)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    assert audio.size > SR  # at least a second was recorded
    rms = float(np.sqrt(np.mean(audio ** 2)))
    assert rms > 0.01, f"monitor is silent (rms {rms})"

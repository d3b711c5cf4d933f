"""The engine live: the generator worker on the audio clock of a real PortAudio stream
(PulseAudio null sink), the band heard on the monitor, committed ahead of the clock."""

import time
import wave

import numpy as np
from toy_band import band_for_tests

from engine.audio_out import AudioOut
from engine.clock import Clock
from engine.events import NOTE_ON, EventQueue
from engine.generator import StreamingGenerator
from engine.mixer import Mixer
from engine.quantiser import Quantiser
from engine.renderer import EventLog, PartRenderer
from engine.synth import Synth
from models.sampling import ControlledSampler

SR = 48000


def test_the_band_plays_ahead_of_a_real_audio_clock_and_is_heard(pulse_server, soundfont, tmp_path):
    band = band_for_tests(0)  # load the model before the clock starts running
    synth = Synth(soundfont, SR)
    mixer = Mixer(synth, SR, 1024)
    out = AudioOut(mixer, blocksize=256)
    rec = pulse_server.record_output(tmp_path / "monitor.wav")
    gen = None
    try:
        out.start()
        clock = Clock(SR, 150, "4/4", count_in_bars=1, start_sample=mixer.clock + SR // 4)
        q, log = EventQueue(1 << 14), EventLog()
        mixer.add_queue(q)
        gen = StreamingGenerator(
            band,
            clock,
            PartRenderer([q, log], "pop", "4/4"),
            sampler=ControlledSampler(0),
            quantiser=Quantiser(clock),
            margin_steps=2,
            chunk_steps=2,
            clock_source=lambda: mixer.clock,
        )
        gen.start()
        t_end = time.monotonic() + 4.0
        beat = 0
        while time.monotonic() < t_end:  # the player: a note on every beat, as it happens
            now = mixer.clock
            if now >= clock.step_time(beat * 4):
                gen.melody_event(now, 60 + beat % 7, True)
                gen.melody_event(now + SR // 8, 60 + beat % 7, False)
                beat += 1
            time.sleep(0.005)
        gen.stop()
        m = gen.metrics()
        heard_until = mixer.clock
    finally:
        if gen is not None:
            gen.stop()
        out.stop()
        time.sleep(0.3)
        rec.terminate()
        rec.wait(5)
        synth.close()
    assert gen.error is None and out.callback_errors == 0
    assert m.steps > 16 and m.late_steps == 0 and m.lead_ms_min > 0
    # the player's notes reach the model, later than played (they are counted, not lost)
    assert gen.quantiser.onsets + len(gen.quantiser._inbox) >= beat - 2
    # the band's events were all due after they were queued, and the mixer played them on time
    assert mixer.late_events == 0
    band_ons = [e for e in log.events if e[1] == NOTE_ON and e[0] < heard_until]
    assert len(band_ons) > 10
    with wave.open(str(tmp_path / "monitor.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.abs(pcm).max() > 1000

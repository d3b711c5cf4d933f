"""Event times: on the input sample clock, moved to the session's clock rate and offset,
and earlier by the input latency the stream reports (the voice reached the ADC then)."""

import numpy as np
import pytest

from engine.pitch.live import HumTracker, heard
from liveband.bench.synth_hum import HumSpec, make_hum


@pytest.fixture(scope="module")
def clip():
    return make_hum(HumSpec(31, "female", 110, 4, sample_rate=16000))


def events(clip, **kw):
    ht = HumTracker("pesto", input_rate=16000, **kw)
    for i in range(0, len(clip.audio), 160):
        ht.feed(clip.audio[i : i + 160])
    ht.finish()
    return ht.poll()


def test_input_latency_and_clock_offset_move_every_event(clip):
    base = events(clip)
    assert len([e for e in heard(base) if e.on]) == len(clip.notes)
    late = events(clip, input_latency_s=0.025, clock_rate=48000, clock_offset=1000)
    assert [(e.pitch, e.on) for e in late] == [(e.pitch, e.on) for e in base]
    # 16 kHz samples -> 48 kHz samples, + offset, - 25 ms of input latency (1200 samples)
    assert all(abs(b.time * 3 + 1000 - 1200 - a.time) <= 2 for a, b in zip(late, base))
    # and the onsets are where they were hummed
    ons = np.array([e.time for e in heard(base) if e.on]) / 16000
    assert np.abs(ons - [on for _, on, _ in clip.notes]).max() < 0.05

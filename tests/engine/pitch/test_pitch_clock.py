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


@pytest.mark.parametrize("rate", [8000, 11025])
def test_an_upsampled_device_dates_events_where_they_were_sung(rate):
    """8 and 11.025 kHz are resampled with a look-ahead filter whose outputs lie where
    their input did: its look-ahead delays when events come out, not where they are
    dated (taken off as a delay, 11.025 kHz events were dated 40 ms early, 8 kHz 3 ms)."""
    from scipy.signal import resample_poly

    clip = make_hum(HumSpec(31, "female", 110, 4, sample_rate=48000))

    def onsets(x, sr):
        ht = HumTracker("pesto", input_rate=sr, clock_rate=48000)
        for i in range(0, len(x), sr // 100):
            ht.feed(x[i : i + sr // 100])
        ht.finish()
        return [e for e in heard(ht.poll()) if e.on]

    ref = onsets(resample_poly(clip.audio, 1, 3).astype(np.float32), 16000)
    got = onsets(resample_poly(clip.audio, rate, 48000).astype(np.float32), rate)
    assert [e.pitch for e in got] == [e.pitch for e in ref]
    shift_ms = np.median([(g.time - r.time) / 48 for g, r in zip(got, ref)])
    assert abs(shift_ms) < 1.5

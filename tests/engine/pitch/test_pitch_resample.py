"""Streaming resampling in arbitrary block sizes equals resampling the whole signal."""
import numpy as np
import pytest
from scipy.signal import resample_poly

from engine.pitch.resample import StreamResampler


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_stream_equals_one_shot(rate):
    r = StreamResampler(rate, 16000)
    rng = np.random.default_rng(rate)
    x = rng.normal(0, 0.3, rate // 2).astype(np.float32)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 900))
        parts.append(r.process(x[i:i + n]))
        i += n
    y = np.concatenate(parts)
    ref = resample_poly(x, r.up, r.down, window=r._h)
    assert len(y) > 0.95 * len(ref) - 800
    assert np.abs(y - ref[:len(y)]).max() < 1e-4
    assert r.latency_samples / rate < 0.021      # at most ~20 ms of look-ahead


def test_same_rate_is_a_pass_through():
    r = StreamResampler(16000, 16000)
    x = np.arange(100, dtype=np.float32)
    assert np.array_equal(r.process(x), x) and r.latency_samples == 0


def test_a_tone_keeps_its_frequency():
    rate = 44100
    t = np.arange(rate) / rate
    y = StreamResampler(rate, 16000).process(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    spec = np.abs(np.fft.rfft(y[1000:1000 + 8000] * np.hanning(8000)))
    assert abs(np.argmax(spec) * 16000 / 8000 - 440) <= 2

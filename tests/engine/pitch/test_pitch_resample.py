"""Streaming resampling in arbitrary block sizes equals resampling the whole signal."""

import numpy as np
import pytest
from scipy.signal import resample_poly, sosfilt

from engine.pitch.resample import StreamResampler


def _stream(r, x, seed):
    rng = np.random.default_rng(seed)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 900))
        parts.append(r.process(x[i : i + n]))
        i += n
    return np.concatenate(parts)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_stream_equals_one_shot(rate):
    r = StreamResampler(rate, 16000, causal=False)
    x = np.random.default_rng(rate).normal(0, 0.3, rate // 2).astype(np.float32)
    y = _stream(r, x, rate)
    ref = resample_poly(x, r.up, r.down, window=r._h)
    assert len(y) > 0.95 * len(ref) - 800
    assert np.abs(y - ref[: len(y)]).max() < 1e-4
    assert r.latency_samples / rate < 0.021  # at most ~20 ms of look-ahead


@pytest.mark.parametrize("rate", [32000, 48000, 96000])
def test_causal_decimation_streams_exactly_and_needs_no_future(rate):
    r = StreamResampler(rate, 16000)
    assert r._sos is not None and r.latency_samples / rate <= 0.00015  # group delay, ~0.1 ms
    x = np.random.default_rng(rate).normal(0, 0.3, rate // 2).astype(np.float32)
    y = _stream(r, x, rate)
    # every output is out as soon as its input is in: all len(x) // down of them
    assert len(y) == len(x) // r.down
    ref = sosfilt(r._sos, x)[r.down - 1 :: r.down]
    assert np.abs(y - ref).max() < 1e-5
    # one 10 ms hop of input gives exactly one 10 ms hop of output, with nothing held back
    r.reset()
    assert len(r.process(x[: rate // 100])) == 160


def test_causal_44k1_streams_exactly_with_a_sample_of_delay():
    rate = 44100
    r = StreamResampler(rate, 16000)
    assert r._sos is not None and r.latency_samples / rate < 0.0002  # was 10 ms of look-ahead
    assert StreamResampler(rate, 16000, causal=False).latency_samples / rate > 0.009
    x = np.random.default_rng(7).normal(0, 0.3, rate).astype(np.float32)
    y = _stream(r, x, 7)
    r.reset()
    whole = r.process(x)
    assert len(y) == len(whole) == 16000
    assert np.abs(y - whole).max() < 1e-6
    # a 300 Hz tone keeps its level (and, by test_a_tone_keeps_its_frequency, its pitch)
    t = np.arange(rate) / rate
    r.reset()
    tone = r.process(np.sin(2 * np.pi * 300 * t).astype(np.float32))
    assert 0.97 < np.abs(tone[2000:]).max() < 1.03


def test_causal_decimation_rejects_what_would_alias():
    rate = 48000
    t = np.arange(rate) / rate
    r = StreamResampler(rate, 16000)
    y_in = r.process(np.sin(2 * np.pi * 3000 * t).astype(np.float32))
    r.reset()
    y_alias = r.process(np.sin(2 * np.pi * 12000 * t).astype(np.float32))  # would fold to 4 kHz
    assert np.abs(y_in[2000:]).max() > 0.95
    assert np.abs(y_alias[2000:]).max() < 0.01


def test_same_rate_is_a_pass_through():
    r = StreamResampler(16000, 16000)
    x = np.arange(100, dtype=np.float32)
    assert np.array_equal(r.process(x), x) and r.latency_samples == 0


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_tone_keeps_its_frequency(rate):
    t = np.arange(rate) / rate
    y = StreamResampler(rate, 16000).process(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    spec = np.abs(np.fft.rfft(y[1000 : 1000 + 8000] * np.hanning(8000)))
    assert abs(np.argmax(spec) * 16000 / 8000 - 440) <= 2


def test_a_48k_hum_tracker_runs_each_hop_as_soon_as_its_audio_is_in():
    # 5 ms blocks: a look-ahead filter would hold every hop back until the next block
    from engine.pitch.live import HumTracker

    ht = HumTracker("pesto", input_rate=48000)
    x = np.zeros(480, np.float32)
    ht.feed(x[:240])
    assert ht.stats.hops == 0
    ht.feed(x[240:])
    assert ht.stats.hops == 1


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_a_tone_keeps_its_level(rate, causal):
    # the level gate and the meter read dBFS after resampling: an 8 kHz device (upsampled)
    # once came out 6 dB hot, 44.1 kHz without the causal path 38 dB
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    y = _stream(StreamResampler(rate, 16000, causal=causal), x, 1)
    assert abs(np.abs(y[3200:]).max() - 0.5) < 0.01

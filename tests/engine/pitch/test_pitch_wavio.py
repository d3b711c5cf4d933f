"""The one small WAV writer round-trips through the reader, clipping what is over."""

import numpy as np

from engine.pitch.wavio import read_wav, write_wav


def test_write_then_read_gives_the_audio_back_within_16_bit_rounding(tmp_path):
    x = (0.5 * np.sin(np.linspace(0, 200, 4800))).astype(np.float32)
    x[10] = 3.0  # over full scale: clipped, not wrapped
    write_wav(tmp_path / "a.wav", x, 48000)
    y, sr = read_wav(tmp_path / "a.wav")
    assert sr == 48000 and y.shape == x.shape
    assert abs(y[10] - 32767 / 32768) < 1e-6
    assert np.abs(np.delete(y - x, 10)).max() < 1.0 / 16384

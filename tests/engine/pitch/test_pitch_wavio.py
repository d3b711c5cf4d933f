"""The one small WAV writer round-trips through the reader, clipping what is over; the
reader mixes channels to mono quietly, keeping NaN/inf for the tracker to count."""

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


def test_plus_and_minus_inf_in_one_frame_mix_to_one_bad_sample_without_a_warning(tmp_path):
    import warnings

    from scipy.io import wavfile

    x = np.full((100, 2), 0.25, np.float32)
    x[5] = [np.inf, -np.inf]
    x[6] = [np.nan, 0.5]
    wavfile.write(tmp_path / "st.wav", 16000, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing reaches the user's terminal
        y, _ = read_wav(tmp_path / "st.wav")
    # still non-finite, so the tracker zeroes and counts them as before
    assert np.flatnonzero(~np.isfinite(y)).tolist() == [5, 6]
    assert np.all(np.delete(y, [5, 6]) == 0.25)

"""engine.wav, the one WAV home: what it writes reads back within one PCM step, at 16 and
24 bits, streamed block by block, clipped and NaN-free; a take's file is valid after each
flush."""

import warnings

import numpy as np
import pytest

from engine.wav import WavWriter, read_wav, repair_wav, write_wav

SR = 48000


@pytest.mark.parametrize("bits", [16, 24])
def test_blocks_streamed_in_read_back_as_one_file_within_half_a_step(tmp_path, bits):
    x = (0.7 * np.sin(np.linspace(0, 300, 2 * 9000))).astype(np.float32).reshape(-1, 2)
    w = WavWriter(tmp_path / "a.wav", SR, bits=bits)
    for s in range(0, x.shape[0], 1000):
        w.write(x[s : s + 1000])
    w.close()
    y, sr = read_wav(tmp_path / "a.wav")
    assert sr == SR and y.shape == x.shape
    assert np.abs(y - x).max() <= 0.5 / (1 << (bits - 1)) + 1e-9


def test_over_full_scale_is_clipped_and_nan_is_silence(tmp_path):
    x = np.array([[3.0, -3.0], [np.nan, 0.25]], np.float32)
    write_wav(tmp_path / "c.wav", x, SR)
    y, _ = read_wav(tmp_path / "c.wav")
    assert y[0, 0] == 32767 / 32768 and y[0, 1] == -1.0 and y[1, 0] == 0.0 and y[1, 1] == 0.25


def test_a_flushed_take_is_valid_and_one_cut_short_is_repaired(tmp_path):
    path = tmp_path / "take.wav"
    w = WavWriter(path, SR, bits=24)
    w.write(np.full((700, 2), 0.5, np.float32))
    w.flush()
    assert read_wav(path)[0].shape == (700, 2)
    w.write(np.full((300, 2), -0.5, np.float32))  # written, header not patched: a crash here
    w._f.flush()
    assert repair_wav(path) == 1000
    y, _ = read_wav(path)
    assert y.shape == (1000, 2) and y[-1, 0] == -0.5


def test_a_file_that_is_not_a_wav_gets_one_clear_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="bad.wav"):
        read_wav(bad)
    with pytest.raises(ValueError, match="bad.wav"):
        repair_wav(bad)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav")


@pytest.mark.parametrize("offset, value", [(22, 0), (34, 0), (34, 12)])  # channels 0, bits 0, bits 12
def test_a_header_with_no_frame_size_is_not_repaired_but_named(tmp_path, offset, value):
    path = tmp_path / "take.wav"
    write_wav(path, np.zeros((10, 2), np.float32), SR)
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="take.wav: not a LiveBand WAV"):
        repair_wav(path)
    with pytest.raises(ValueError, match="^the take's mix.wav: "):
        repair_wav(path, shown="the take's mix.wav")
    assert path.read_bytes() == bytes(raw)


@pytest.mark.parametrize("dtype, huge", [(np.float64, 1e300), (np.float32, 3e38)])
def test_a_float_wav_past_full_scale_is_clipped_without_warnings_and_keeps_nan_and_inf(tmp_path, dtype, huge):
    from scipy.io import wavfile

    path = tmp_path / "huge.wav"
    frames = np.array([[0.5, huge], [-huge, 2.0], [np.inf, np.nan]] * 50, dtype)
    wavfile.write(path, SR, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning reaches the user's terminal
        x, sr = read_wav(path)
        x.mean(axis=1)  # in range: the next step (a mono mix) cannot overflow either
    assert sr == SR and x.dtype == np.float32
    np.testing.assert_array_equal(x[:2], [[0.5, 1.0], [-1.0, 1.0]])
    assert x[2, 0] == np.inf and np.isnan(x[2, 1])

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


def _pcm_wav(frames: int, channels: int = 1, claimed: int | None = None, fmt: bytes | None = None) -> bytes:
    """A 16-bit PCM WAV of ``frames`` frames whose data chunk claims ``claimed`` bytes."""
    import struct

    data = np.full(frames * channels, 1000, "<i2").tobytes()
    size = len(data) if claimed is None else claimed
    fmt = fmt or struct.pack("<HHIIHH", 1, channels, SR, SR * 2 * channels, 2 * channels, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", min(len(body) + size - len(data), 0xFFFFFFFF)) + body


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"", "an empty file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no format chunk"),  # scipy: "cannot access local variable 'fs'"
        (_pcm_wav(10)[:30], "format chunk is cut short"),  # scipy: "unpack requires a buffer"
        (_pcm_wav(10, fmt=bytes.fromhex("0100 0000 80bb0000 00770100 0200 1000")), "0 channels"),  # modulo by zero
        (_pcm_wav(10, fmt=bytes.fromhex("0100 ffff 80bb0000 00000000 ffff 1000")), "65535 channels"),  # reshape
        (_pcm_wav(10, fmt=bytes.fromhex("0100 0100 80bb0000 80bb0000 0100 0c00")), "12 bits, 1-byte frames"),
        (_pcm_wav(10)[:36], "no audio data chunk"),
    ],
    ids=["empty", "riff-only", "fmt-cut", "0-channels", "65535-channels", "12-bits-in-a-byte", "no-data"],
)
def test_a_damaged_wav_is_one_line_naming_the_file_and_why(tmp_path, raw, why):
    path = tmp_path / "bad.wav"
    path.write_bytes(raw)
    with pytest.raises(ValueError) as err:
        read_wav(path)
    assert str(err.value).startswith(f"not a readable WAV: {path} (") and why in str(err.value)
    assert "\n" not in str(err.value)


def test_a_folder_is_named_a_folder(tmp_path):
    (tmp_path / "a.wav").mkdir()
    with pytest.raises(IsADirectoryError, match="a.wav is a folder"):
        read_wav(tmp_path / "a.wav")


@pytest.mark.parametrize(
    "raw, frames, promised",
    [
        (_pcm_wav(700)[:-501], 449, "0.01 s"),  # data cut short, mid-sample
        (_pcm_wav(1000, 2)[:-2], 999, "0.02 s"),  # stereo, cut mid-frame
        (_pcm_wav(48000, claimed=3 * 3600 * SR * 2), 48000, "3.0 hours"),  # a header claiming 3 hours
        (_pcm_wav(48000, claimed=0xFFFFFFFF), 48000, "12.4 hours"),  # a stream's unknown-length size
    ],
    ids=["data-cut", "stereo-mid-frame", "3-hours", "0xFFFFFFFF"],
)
def test_a_truncated_wav_is_read_as_far_as_it_goes_and_said_once(tmp_path, raw, frames, promised):
    path = tmp_path / "cut.wav"
    path.write_bytes(raw)
    notices: list[str] = []
    x, sr = read_wav(path, notices)
    assert sr == SR and x.shape[0] == frames and np.all(x == 1000 / 32768)
    assert len(notices) == 1 and notices[0].startswith(f"cut.wav is truncated: its header promises {promised}")
    assert read_wav(path)[0].shape[0] == frames  # without a notices list, read all the same


def test_a_whole_wav_gives_no_notice(tmp_path):
    path = tmp_path / "whole.wav"
    path.write_bytes(_pcm_wav(700, 2))
    notices: list[str] = []
    assert read_wav(path, notices)[0].shape == (700, 2) and notices == []

"""Melody loaders against broken and hostile files: a MIDI or WAV file gives a melody or
one clear line naming the file, never another exception."""

import io
import struct
import time
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.melody_file import MelodyFileError, read_melody_midi
from engine.pitch.wavio import read_wav


def _midi_bytes(length: int = 480) -> bytes:
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=500000),
                mido.MetaMessage("time_signature", numerator=3, denominator=4),
            ]
        )
    )
    mel = mido.MidiTrack([mido.MetaMessage("track_name", name="Melody")])
    for p in (67, 71, 74, 72):
        mel += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=length)]
    mid.tracks.append(mel)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _wav_bytes() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(800) * 0.1) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


MIDI = _midi_bytes()
WAV = _wav_bytes()


def _with_division(division: int) -> bytes:
    return MIDI[:12] + struct.pack(">H", division) + MIDI[14:]


@pytest.mark.parametrize("division, needle", [(0, "0 ticks per beat"), (0xE728, "SMPTE")])
def test_a_header_without_usable_ticks_per_beat_names_the_file(tmp_path, division, needle):
    path = tmp_path / "odd.mid"
    path.write_bytes(_with_division(division))
    with pytest.raises(MelodyFileError) as err:
        read_melody_midi(path)
    assert str(path) in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)


def _mutations(data: bytes):
    """The file with some bytes overwritten, a run inserted or deleted, and maybe cut short."""
    n = len(data)
    return st.tuples(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), max_size=8),
        st.one_of(st.none(), st.tuples(st.integers(0, n), st.binary(max_size=16))),
        st.one_of(st.none(), st.tuples(st.integers(0, n - 1), st.integers(1, 16))),
        st.one_of(st.none(), st.integers(0, n)),
    ).map(lambda m: _mutate(data, *m))


def _mutate(data: bytes, writes, insert, delete, cut) -> bytes:
    b = bytearray(data)
    for pos, val in writes:
        b[pos] = val
    if delete is not None:
        del b[delete[0] : delete[0] + delete[1]]
    if insert is not None:
        b[insert[0] : insert[0]] = insert[1]
    return bytes(b if cut is None else b[:cut])


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=_mutations(MIDI))
@example(data=_with_division(0))
@example(data=_with_division(0xE728))
@example(data=_midi_bytes(length=0))
def test_fuzzed_midi_gives_a_melody_or_one_line_naming_the_file(tmp_path, data):
    path = tmp_path / "fuzz.mid"
    path.write_bytes(data)
    try:
        mel = read_melody_midi(path)
    except MelodyFileError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert mel.notes and all(0 <= n.start < n.end and 0 <= n.pitch <= 127 for n in mel.notes)


@FUZZ
@given(data=_mutations(WAV))
def test_fuzzed_wav_gives_audio_or_one_line_naming_the_file(tmp_path, data):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(data)
    try:
        audio, sr = read_wav(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0 and 4000 <= sr <= 384000


def test_the_fuzz_seeds_are_valid_files(tmp_path):
    (tmp_path / "a.mid").write_bytes(MIDI)
    (tmp_path / "a.wav").write_bytes(WAV)
    assert [n.pitch for n in read_melody_midi(tmp_path / "a.mid").notes] == [67, 71, 74, 72]
    audio, sr = read_wav(Path(tmp_path / "a.wav"))
    assert sr == 16000 and audio.size == 800


@pytest.mark.parametrize("tempos", [[0], [500000, 0]])
def test_a_tempo_of_zero_is_folded_into_range_like_any_absurd_tempo(tmp_path, tempos):
    from liveband.rendering import band_timing

    mid = mido.MidiFile(file=io.BytesIO(MIDI))
    mid.tracks[0][:1] = [mido.MetaMessage("set_tempo", tempo=t, time=480 * i) for i, t in enumerate(tempos)]
    mid.save(str(tmp_path / "in.mid"))
    melody = read_melody_midi(tmp_path / "in.mid")
    said = []
    bpm, _ = band_timing(melody, say=said.append)
    assert 40 <= bpm <= 240 and len(said) == 1
    assert ("outside" in said[0]) if tempos == [0] else ("changes tempo 1 time" in said[0])


def test_the_melody_is_made_monophonic_in_one_pass():
    from engine.melody_file import _monophonic

    # a chord keeps its top note; a held note ends where the next one starts
    notes = [(0.0, 2.0, 60, 90, 0), (0.0, 1.0, 64, 90, 0), (1.0, 3.0, 62, 90, 0), (1.5, 2.0, 59, 90, 0)]
    assert [(n.start, n.end, n.pitch) for n in _monophonic(sorted(notes))] == [
        (0.0, 1.0, 64),
        (1.0, 1.5, 62),
        (1.5, 2.0, 59),
    ]
    many = [(i / 4, i / 4 + 8.0, 60 + i % 12, 90, 0) for i in range(100_000)]
    t0 = time.perf_counter()
    mono = _monophonic(many)
    assert len(mono) == 100_000 and mono[0].end == 0.25
    assert time.perf_counter() - t0 < 2.0  # copying the rest of the list per note took ~15 s

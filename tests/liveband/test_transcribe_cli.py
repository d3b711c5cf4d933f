"""`liveband transcribe` on a real WAV file: a MIDI file with the hummed notes comes out;
a broken file gives one line on stderr and exit status 2."""
import subprocess
import sys

import mido
import numpy as np
import pytest
from scipy.io import wavfile

from engine.pitch.synth_hum import HumSpec, make_hum


def run_cli(*args):
    # through liveband.cli.main, as the `liveband` entry point does
    code = "import sys; from liveband.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def hum():
    return make_hum(HumSpec(11, "male", 100, 6, sample_rate=44100))


def test_transcribe_a_stereo_int16_wav_to_midi(tmp_path, hum):
    wav = tmp_path / "hum.wav"
    pcm = (hum.audio * 32767).astype(np.int16)
    wavfile.write(wav, 44100, np.stack([pcm, pcm], axis=1))
    out = tmp_path / "notes.mid"
    r = run_cli("transcribe", str(wav), "-o", str(out))
    assert r.returncode == 0, r.stderr
    mid = mido.MidiFile(out)
    assert len(mid.tracks) == 1
    t, ons = 0.0, []
    for msg in mid:          # iterating a MidiFile yields times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            ons.append((msg.note, t))
    truth = [(p, on) for p, on, _ in hum.notes]
    assert [p for p, _ in ons] == [p for p, _ in truth]
    # unquantised: the onsets are where they were hummed
    assert max(abs(a - b) for (_, a), (_, b) in zip(ons, truth)) < 0.06


def test_transcribe_with_crepe(tmp_path, hum):
    wav = tmp_path / "hum.wav"
    wavfile.write(wav, 44100, hum.audio)
    out = tmp_path / "notes.mid"
    r = run_cli("transcribe", str(wav), "-o", str(out), "--tracker", "crepe")
    assert r.returncode == 0, r.stderr
    notes = [m.note for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    assert len(notes) == len(hum.notes)


def test_a_corrupt_wav_gives_one_clear_line(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    out = tmp_path / "x.mid"
    r = run_cli("transcribe", str(bad), "-o", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read" in lines[0]
    assert not out.exists()


def test_a_missing_wav_gives_one_clear_line(tmp_path):
    r = run_cli("transcribe", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.mid"))
    assert r.returncode == 2 and "no such file" in r.stderr

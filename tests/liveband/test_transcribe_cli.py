"""`liveband transcribe` on a real WAV file: a MIDI file with the hummed notes comes out;
a broken file gives one line on stderr and exit status 2."""

import subprocess
import sys

import mido
import numpy as np
import pytest
from scipy.io import wavfile

from liveband.bench.synth_hum import HumSpec, make_hum


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
    for msg in mid:  # iterating a MidiFile yields times in seconds
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
    assert lines == [f"liveband transcribe: not a readable WAV: {bad} (no format chunk)"]
    assert not out.exists()


def test_a_folder_as_input_is_named_a_folder(tmp_path):
    (tmp_path / "takes.wav").mkdir()
    r = run_cli("transcribe", str(tmp_path / "takes.wav"), "-o", str(tmp_path / "x.mid"))
    assert r.returncode == 2
    assert r.stderr == f"liveband transcribe: {tmp_path / 'takes.wav'} is a folder, not a WAV file\n"


def test_a_truncated_wav_is_transcribed_as_far_as_it_goes_with_one_note_line(tmp_path, hum):
    wav = tmp_path / "cut.wav"
    wavfile.write(wav, 44100, (hum.audio * 32767).astype(np.int16))
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * 119070 + 1])  # the first 2.7 s, and a byte
    r = run_cli("transcribe", str(wav), "-o", str(tmp_path / "x.mid"))
    assert r.returncode == 0, r.stderr
    assert [ln for ln in r.stderr.splitlines() if "truncated" in ln] == [
        f"liveband transcribe: note: cut.wav is truncated: its header promises {len(hum.audio) / 44100:.1f} s "
        "of audio, the file holds 2.7 s; read what is there"
    ]
    notes = [m.note for m in mido.MidiFile(tmp_path / "x.mid") if m.type == "note_on" and m.velocity > 0]
    assert notes == [p for p, on, _ in hum.notes if on < 2.7]


def test_a_missing_wav_gives_one_clear_line(tmp_path):
    r = run_cli("transcribe", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "x.mid"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_silence_and_bad_samples_are_told_in_a_note_line(tmp_path, hum):
    sil = tmp_path / "silence.wav"
    wavfile.write(sil, 48000, np.zeros(48000, np.int16))
    r = run_cli("transcribe", str(sil), "-o", str(tmp_path / "s.mid"))
    assert r.returncode == 0 and "no hummed or sung notes" in r.stderr
    assert [m for m in mido.MidiFile(tmp_path / "s.mid") if m.type == "note_on"] == []
    # a float WAV with NaN and inf samples: tracked anyway, and the user is told how many
    x = hum.audio.copy()
    x[5000:5100] = np.nan
    x[90000] = np.inf
    bad = tmp_path / "nan.wav"
    wavfile.write(bad, 44100, x)
    r = run_cli("transcribe", str(bad), "-o", str(tmp_path / "n.mid"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [
        "liveband transcribe: note: 101 invalid (NaN/inf) input samples were replaced by silence"
    ]
    notes = [m.note for m in mido.MidiFile(tmp_path / "n.mid") if m.type == "note_on" and m.velocity > 0]
    assert notes == [p for p, _, _ in hum.notes]


def test_render_accompanies_a_hummed_wav(tmp_path, hum, soundfont):
    """`liveband render hum.wav`: the hummed notes (same path as transcribe) are the
    melody track, read at --tempo, and the band plays under them."""
    wav = tmp_path / "hum.wav"
    wavfile.write(wav, 44100, (hum.audio * 32767).astype(np.int16))
    out, mid = tmp_path / "band.wav", tmp_path / "band.mid"
    r = run_cli(
        "render", str(wav), "-o", str(out), "--midi-out", str(mid), "--tempo", "100", "--soundfont", str(soundfont)
    )
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 44
    # the part, without the instrument in the track name ("Bass (Fingered Bass)")
    tracks = {t.name.split(" (")[0].upper(): t for t in mido.MidiFile(mid).tracks}
    tpb = mido.MidiFile(mid).ticks_per_beat
    t, mel = 0, []
    for m in tracks["MELODY"]:
        t += m.time
        if m.type == "note_on" and m.velocity > 0:
            mel.append((m.note, t / tpb * 60.0 / 100))
    # a male hum lies below the band's melody range: render moves it up whole octaves
    # and says so
    shift = mel[0][0] - hum.notes[0][0]
    assert shift % 12 == 0 and (shift == 0 or "transposed" in r.stdout + r.stderr)
    assert [p - shift for p, _ in mel] == [p for p, _, _ in hum.notes]
    assert max(abs(a - on) for (_, a), (_, on, _) in zip(mel, hum.notes)) < 0.06
    band = sum(1 for name in ("BASS", "KEYS", "DRUMS") for m in tracks[name] if m.type == "note_on")
    assert band > 10


def test_transcribe_snaps_to_a_key_given_by_name(tmp_path, hum):
    from engine.keyfind import key_pitch_classes
    from models.tokens import PITCH_NAMES

    wav = tmp_path / "hum.wav"
    wavfile.write(wav, 44100, (hum.audio * 32767).astype(np.int16))
    truth = [p for p, _, _ in hum.notes]
    # a key the tune does not fit, so snapping has something to move
    tonic = next(k for k in range(12) if any(p % 12 not in key_pitch_classes(k, "major") for p in truth))
    out = tmp_path / "snapped.mid"
    r = run_cli("transcribe", str(wav), "-o", str(out), "--key", f"{PITCH_NAMES[tonic]} major")
    assert r.returncode == 0, r.stderr
    got = [m.note for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    assert len(got) == len(truth)
    scale = key_pitch_classes(tonic, "major")
    assert all(p % 12 in scale for p in got)
    assert all(abs(g - t) <= 1 for g, t in zip(got, truth))
    assert got != truth


def test_a_key_that_is_not_a_key_gives_one_clear_line(tmp_path, hum):
    wav = tmp_path / "hum.wav"
    wavfile.write(wav, 44100, (hum.audio * 32767).astype(np.int16))
    r = run_cli("transcribe", str(wav), "-o", str(tmp_path / "x.mid"), "--key", "H dorian")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "not a key" in r.stderr


# -- outputs that cannot be written, a read-only home, long files (issue 15) ---------
import os  # noqa: E402

from fsfaults import full_disk, read_only_dir  # noqa: E402


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


@pytest.fixture()
def hum_wav(tmp_path, hum):
    wav = tmp_path / "hum.wav"
    wavfile.write(wav, 44100, (hum.audio * 32767).astype(np.int16))
    return wav


def test_output_into_a_read_only_folder_is_one_line_and_leaves_nothing(tmp_path, hum_wav):
    with read_only_dir(tmp_path / "ro") as ro:
        r = run_cli("transcribe", str(hum_wav), "-o", str(ro / "notes.mid"))
        assert r.returncode == 2
        err = _one_line(r.stderr)
        assert "notes.mid" in err and ("Read-only" in err or "Permission" in err)
        assert not list(ro.iterdir())


def test_output_onto_a_folder_is_one_line(tmp_path, hum_wav):
    folder = tmp_path / "notes.mid"
    folder.mkdir()
    r = run_cli("transcribe", str(hum_wav), "-o", str(folder))
    assert r.returncode == 2 and "folder" in _one_line(r.stderr)
    assert not list(folder.iterdir()) and not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*.part"))


def test_output_on_a_full_disk_is_one_line_and_leaves_no_part_file(tmp_path, hum_wav):
    with full_disk(tmp_path / "full") as full:
        r = run_cli("transcribe", str(hum_wav), "-o", str(full / "notes.mid"))
        assert r.returncode == 2
        assert "No space left" in _one_line(r.stderr)
        assert sorted(p.name for p in full.iterdir()) == [".filler"]


def test_a_failed_write_leaves_no_part_file_and_keeps_the_old_output(tmp_path, monkeypatch, capsys):
    """ENOSPC at the last moment (simulated where no tmpfs can be mounted): the earlier
    notes.mid is kept as it was, and no temporary file is left."""
    import engine.pitch
    from liveband.cli import main

    wav = tmp_path / "in.wav"
    wavfile.write(wav, 8000, np.zeros(800, np.int16))
    out = tmp_path / "notes.mid"
    out.write_bytes(b"earlier take")
    monkeypatch.setattr(engine.pitch, "transcribe_wav", lambda *a, **k: [(60, 0.0, 0.5, 90)])

    def no_space(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    assert main(["transcribe", str(wav), "-o", str(out)]) == 2
    assert "No space left" in _one_line(capsys.readouterr().err)
    assert out.read_bytes() == b"earlier take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "notes.mid"]


def test_a_read_only_home_still_transcribes_with_one_note_line(tmp_path, hum_wav, hum):
    code = "import sys; from liveband.cli import main; sys.exit(main(sys.argv[1:]))"
    out = tmp_path / "notes.mid"
    with read_only_dir(tmp_path / "home") as home:
        env = {k: v for k, v in os.environ.items() if k != "LIVEBAND_HOME"}
        env["HOME"] = str(home)
        r = subprocess.run(
            [sys.executable, "-c", code, "transcribe", str(hum_wav), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cannot cache the pitch model" in _one_line(r.stderr)  # nor onnxruntime's telemetry warning
    notes = [m.note for m in mido.MidiFile(out) if m.type == "note_on" and m.velocity > 0]
    assert notes == [p for p, _, _ in hum.notes]


def test_a_long_file_prints_progress_lines(tmp_path, hum):
    """A minute of humming (two ten-second-ish tunes repeated): progress lines on a
    non-terminal stderr, then the result."""
    gap = np.zeros(44100, np.float32)
    minute = np.concatenate([np.concatenate([hum.audio, gap])] * 12)[: 60 * 44100]
    wav = tmp_path / "long.wav"
    wavfile.write(wav, 44100, (minute * 32767).astype(np.int16))
    code = (
        "import sys; import liveband.commands.transcribe as t; t.PROGRESS_EVERY_S = 0.5; "
        "from liveband.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "transcribe", str(wav), "-o", str(tmp_path / "l.mid")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in r.stderr.splitlines() if "long.wav" in ln and "%" in ln]
    assert len(lines) >= 2, r.stderr
    pct = [int(ln.split("%")[0].split()[-1]) for ln in lines]
    assert pct == sorted(pct) and 0 < pct[0] and pct[-1] < 100
    assert "of 60 s" in lines[0]

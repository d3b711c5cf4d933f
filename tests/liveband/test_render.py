"""`liveband render`: a melody file in, an accompanied WAV and multi-track MIDI out."""

import functools
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

import engine.offline
from liveband.cli import main
from models.checkpoint import save_model
from models.runtime import DEFAULT_CHECKPOINT, debug_model


def melody_file(path: Path, pitches, bpm=96.0, tpb=480, meter=(3, 4)) -> Path:
    """A Nottingham-style file: unnamed melody track + a block-chord track, channel 0."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mel = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
            mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1]),
        ]
    )
    for p in pitches:
        mel += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=tpb)]
    chords = mido.MidiTrack()
    for _ in range(len(pitches) // 3):
        chords += [mido.Message("note_on", note=n, velocity=60, time=0) for n in (43, 47, 50)]
        chords += [mido.Message("note_off", note=n, time=3 * tpb if i == 0 else 0) for i, n in enumerate((43, 47, 50))]
    mid.tracks += [mel, chords]
    mid.save(str(path))
    return path


WALTZ = [67, 71, 74, 72, 71, 69, 67, 66, 64, 62, 66, 69, 67, 71, 74, 76, 74, 72, 71, 69, 66, 67, 67, 67]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """The debug model saved as a checkpoint (fast; most tests)."""
    return str(save_model(debug_model(0).model, tmp_path_factory.mktemp("ckpt") / "debug.safetensors"))


@pytest.fixture(scope="module")
def shipped(checkpoint) -> str:
    """The shipped checkpoint (None = the default the CLI loads) once it exists in the
    project; until it lands, the debug model stands in."""
    return None if DEFAULT_CHECKPOINT.is_file() else checkpoint


def read_wav(path):
    with wave.open(str(path)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)


def test_render_writes_an_audible_wav_and_a_track_per_part(tmp_path, shipped, soundfont, capsys):
    src = melody_file(tmp_path / "waltz.mid", WALTZ)
    model = ["--checkpoint", shipped] if shipped else []
    rc = main(
        [
            "render",
            str(src),
            "-o",
            str(tmp_path / "out.wav"),
            "--midi-out",
            str(tmp_path / "out.mid"),
            "--style",
            "folk",
            "--seed",
            "5",
            *model,
            "--soundfont",
            str(soundfont),
        ]
    )
    assert rc == 0
    said = capsys.readouterr().out
    # onnxruntime is part of this build: the default backend is onnx-cpu (the faster one offline)
    assert "wrote" in said and "onnx-cpu" in said
    sr, pcm = read_wav(tmp_path / "out.wav")
    assert sr == 48000 and np.abs(pcm).max() > 1000
    # tempo and meter came from the file: 24 beats at 96 BPM is 15 s, plus the band's tail
    assert 15.0 < len(pcm) / sr < 22.0
    mid = mido.MidiFile(str(tmp_path / "out.mid"))
    names = [t.name for t in mid.tracks]
    for part in ("Bass (", "Keys (", "Pad (", "Drums (", "Melody"):
        assert any(n.startswith(part) for n in names)
    sigs = [m for m in mid.tracks[0] if m.type == "time_signature"]
    assert (sigs[0].numerator, sigs[0].denominator) == (3, 4)
    mel = [m.note for m in mid.tracks[names.index("Melody")] if m.type == "note_on" and m.velocity > 0]
    assert mel == WALTZ
    # deterministic for a seed
    main(
        [
            "render",
            str(src),
            "-o",
            str(tmp_path / "again.wav"),
            "--style",
            "folk",
            "--seed",
            "5",
            *model,
            "--soundfont",
            str(soundfont),
        ]
    )
    assert (tmp_path / "again.wav").read_bytes() == (tmp_path / "out.wav").read_bytes()
    # the same notes and bits on torch-cpu
    main(
        [
            "render",
            str(src),
            "-o",
            str(tmp_path / "torch.wav"),
            "--style",
            "folk",
            "--seed",
            "5",
            *model,
            "--soundfont",
            str(soundfont),
            "--backend",
            "torch-cpu",
        ]
    )
    assert "torch-cpu" in capsys.readouterr().out
    assert (tmp_path / "torch.wav").read_bytes() == (tmp_path / "out.wav").read_bytes()


def test_a_melody_outside_the_range_is_transposed_and_the_user_is_told(tmp_path, checkpoint, soundfont, capsys):
    src = melody_file(tmp_path / "low.mid", [p - 36 for p in WALTZ[:9]])
    rc = main(
        [
            "render",
            str(src),
            "-o",
            str(tmp_path / "low.wav"),
            "--midi-out",
            str(tmp_path / "low_band.mid"),
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
            "--tempo",
            "180",
        ]
    )
    assert rc == 0
    err = capsys.readouterr().err
    assert "transposed up 2 octaves" in err  # the smallest shift that fits (52-93)
    mid = mido.MidiFile(str(tmp_path / "low_band.mid"))
    mel = next(t for t in mid.tracks if t.name == "Melody")
    assert [m.note for m in mel if m.type == "note_on" and m.velocity > 0] == [p - 12 for p in WALTZ[:9]]


def test_bad_inputs_give_one_clear_line(tmp_path, checkpoint, capsys):
    empty = mido.MidiFile(type=1)
    empty.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    empty.save(str(tmp_path / "empty.mid"))
    cases = [
        (["render", str(tmp_path / "empty.mid"), "-o", str(tmp_path / "x.wav")], "no notes"),
        (["render", str(tmp_path / "missing.mid"), "-o", str(tmp_path / "x.wav")], "no such file"),
        (
            [
                "render",
                str(melody_file(tmp_path / "m.mid", WALTZ[:6])),
                "-o",
                str(tmp_path / "x.wav"),
                "--tempo",
                "900",
            ],
            "tempo must be 40-240",
        ),
        (
            [
                "render",
                str(tmp_path / "m.mid"),
                "-o",
                str(tmp_path / "x.wav"),
                "--checkpoint",
                str(tmp_path / "nope.safetensors"),
            ],
            "nope.safetensors",
        ),
        (["render", str(tmp_path / "m.mid"), "-o", str(tmp_path / "x.mp3")], ".wav"),
        (
            [
                "render",
                str(tmp_path / "m.mid"),
                "-o",
                str(tmp_path / "x.wav"),
                "--checkpoint",
                checkpoint,
                "--soundfont",
                str(tmp_path / "m.mid"),
            ],
            "SoundFont",
        ),
        (["render", str(tmp_path / "m.mid"), "-o", "/proc/liveband/x.wav", "--checkpoint", checkpoint], "cannot write"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.wav").exists()


def test_a_hummed_wav_is_transcribed_and_accompanied(tmp_path, checkpoint, soundfont):
    from scipy.io import wavfile

    from liveband.bench.synth_hum import HumSpec, make_hum

    clip = make_hum(HumSpec(seed=3, register="female", n_notes=8, tempo=100.0))
    wavfile.write(tmp_path / "hum.wav", clip.sample_rate, (clip.audio * 32767).astype(np.int16))
    rc = main(
        [
            "render",
            str(tmp_path / "hum.wav"),
            "-o",
            str(tmp_path / "band.wav"),
            "--midi-out",
            str(tmp_path / "band.mid"),
            "--tempo",
            "100",
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
        ]
    )
    assert rc == 0
    mid = mido.MidiFile(str(tmp_path / "band.mid"))
    mel = [m.note for m in next(t for t in mid.tracks if t.name == "Melody") if m.type == "note_on" and m.velocity > 0]
    truth = [p for p, _, _ in clip.notes]
    assert abs(len(mel) - len(truth)) <= 2
    assert abs(float(np.median(mel)) - float(np.median(truth))) <= 1.0
    bass = next(t for t in mid.tracks if t.name.startswith("Bass ("))
    assert any(m.type == "note_on" and m.velocity > 0 for m in bass)


def test_without_onnxruntime_the_default_backend_falls_back_to_torch_in_one_line(
    tmp_path, checkpoint, soundfont, capsys, monkeypatch
):
    # a build without onnxruntime: importing it fails, as it would there
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    src = melody_file(tmp_path / "m.mid", WALTZ[:6])
    rc = main(
        ["render", str(src), "-o", str(tmp_path / "x.wav"), "--checkpoint", checkpoint, "--soundfont", str(soundfont)]
    )
    assert rc == 0
    said = capsys.readouterr()
    assert "torch-cpu" in said.out
    err = [line for line in said.err.splitlines() if line.strip()]
    assert len(err) == 1 and "onnx-cpu is not available" in err[0] and "using torch-cpu" in err[0], err


def test_render_never_writes_over_its_input_nor_two_outputs_to_one_file(tmp_path, checkpoint, soundfont, capsys):
    from scipy.io import wavfile

    from liveband.bench.synth_hum import HumSpec, make_hum

    # a real hummed take (the old code accompanied it and wrote the mix over it)
    clip = make_hum(HumSpec(seed=3, register="female", n_notes=3, tempo=100.0))
    wavfile.write(tmp_path / "take.wav", clip.sample_rate, (clip.audio * 32767).astype(np.int16))
    src = melody_file(tmp_path / "melody.mid", WALTZ[:6])
    (tmp_path / "sub").mkdir()
    os.symlink(src, tmp_path / "link.mid")
    before = {p.name: p.read_bytes() for p in (tmp_path / "take.wav", src)}
    model = ["--checkpoint", checkpoint, "--soundfont", str(soundfont)]
    cases = [
        ["render", str(tmp_path / "take.wav"), "-o", str(tmp_path / "take.wav")],
        ["render", str(src), "-o", str(tmp_path / "sub" / ".." / "melody.wav"), "--midi-out", str(src)],
        ["render", str(src), "-o", str(tmp_path / "a.wav"), "--midi-out", str(tmp_path / "sub" / ".." / "melody.mid")],
        ["render", str(src), "-o", str(tmp_path / "a.wav"), "--midi-out", str(tmp_path / "link.mid")],
        ["render", str(src), "-o", str(tmp_path / "x.wav"), "--midi-out", str(tmp_path / "x.wav")],
    ]
    for argv in cases:
        assert main([*argv, *model]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and ("input file" in err or "same file" in err or ".mid" in err), err
    assert {p.name: p.read_bytes() for p in (tmp_path / "take.wav", src)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mid", "melody.mid", "sub", "take.wav"]
    # an existing file linked under another name is still the same file
    os.symlink(tmp_path / "take.wav", tmp_path / "out.wav")
    assert main(["render", str(tmp_path / "take.wav"), "-o", str(tmp_path / "out.wav"), *model]) == 2
    assert "input file" in capsys.readouterr().err
    assert (tmp_path / "take.wav").read_bytes() == before["take.wav"]


def test_outputs_replace_old_files_only_when_the_whole_render_succeeded(tmp_path, checkpoint, soundfont, capsys):
    src = melody_file(tmp_path / "m.mid", WALTZ[:6])
    (tmp_path / "out.wav").write_bytes(b"the take before")
    (tmp_path / "blocker").write_bytes(b"a file where the MIDI's folder should be")
    model = ["--checkpoint", checkpoint, "--soundfont", str(soundfont)]
    # the WAV renders, then the MIDI cannot be written: neither output replaces anything
    rc = main(
        [
            "render",
            str(src),
            "-o",
            str(tmp_path / "out.wav"),
            "--midi-out",
            str(tmp_path / "blocker" / "band.mid"),
            *model,
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write" in err and "band.mid" in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "out.wav").read_bytes() == b"the take before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "m.mid", "out.wav"]
    # on success both are in place, no temporary file is left, and the umask decides the mode
    assert (
        main(["render", str(src), "-o", str(tmp_path / "out.wav"), "--midi-out", str(tmp_path / "band.mid"), *model])
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["band.mid", "blocker", "m.mid", "out.wav"]
    assert read_wav(tmp_path / "out.wav")[1].shape[0] > 48000
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o666 & ~umask


def _children(pid: int) -> list[int]:

    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return kids


def _gone(pid: int) -> bool:
    """Ended (a zombie of an init that does not reap counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_render_stops_its_audio_process_and_leaves_nothing(tmp_path, checkpoint, soundfont, how):
    src = melody_file(tmp_path / "long.mid", WALTZ * 160, bpm=240.0)  # 16 minutes of audio
    out = tmp_path / "out"
    out.mkdir()  # render writes into a folder that exists (it refuses a missing one)
    code = "import sys; from liveband.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "render",
            str(src),
            "-o",
            str(out / "band.wav"),
            "--midi-out",
            str(out / "band.mid"),
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:  # mid-way: audio is being written
            parts = list(out.glob(".band.wav.*.part"))
            if parts and parts[0].stat().st_size > 2_000_000:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        kids = _children(proc.pid)
        assert kids, "the render forks its audio process"
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal signals the whole group
        else:
            os.kill(proc.pid, signal.SIGTERM)  # `kill PID`: the parent only
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while not all(_gone(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [k for k in kids if not _gone(k)]
    finally:
        try:  # whatever is left of the render's process group (an orphaned child too)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert not orphans, "the audio process outlived the render"
    assert proc.returncode == (130 if how == "ctrl-c" else 128 + signal.SIGTERM)
    lines = err.strip().splitlines()
    assert "Traceback" not in err and all(line.startswith("liveband render: ") for line in lines), err
    assert "no output was written" in lines[-1] and ("interrupted" in lines[-1] or "SIGTERM" in lines[-1])
    assert sorted(p.name for p in out.iterdir()) == [], "no output and no temporary file"


@pytest.fixture()
def small_disk(tmp_path):
    """A 16 MB tmpfs: a real disk that fills up (needs the right to mount, as root has)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill_when_the_render_writes(folder: Path, filler: Path):
    """Once the render's temporary WAV appears, something else takes the rest of the disk."""

    def fill() -> None:
        deadline = time.monotonic() + 120
        while not list(folder.glob(".band.wav.*.part")) and time.monotonic() < deadline:
            time.sleep(0.005)
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(bytes(1 << 16))
            except OSError:  # full
                pass

    t = threading.Thread(target=fill, daemon=True)
    t.start()
    return t


def test_a_full_disk_leaves_no_partial_file_and_says_so_in_one_line(
    tmp_path, small_disk, checkpoint, soundfont, capsys
):
    src = melody_file(tmp_path / "m.mid", WALTZ * 3, bpm=120.0)  # 36 s: about 7 MB of WAV
    (small_disk / "band.wav").write_bytes(b"an older mix")
    filler = _fill_when_the_render_writes(small_disk, small_disk / "filler")
    rc = main(
        [
            "render",
            str(src),
            "-o",
            str(small_disk / "band.wav"),
            "--midi-out",
            str(small_disk / "band.mid"),
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
        ]
    )
    filler.join(10)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "band.wav" in err and "No space left on device" in err, err
    assert sorted(p.name for p in small_disk.iterdir()) == ["band.wav", "filler"]
    assert (small_disk / "band.wav").read_bytes() == b"an older mix"
    # a render that cannot fit is refused before it starts, saying how much it needs
    (small_disk / "filler").unlink()
    rc = main(
        [
            "render",
            str(melody_file(tmp_path / "long.mid", WALTZ * 8, bpm=120.0)),
            "-o",
            str(small_disk / "band.wav"),
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    # 19.3 MB of WAV, twice: the mix as rendered, then normalised to the loudness target
    assert len(err.splitlines()) == 1 and "the render needs 38.6 MB" in err and "MB free" in err, err
    assert sorted(p.name for p in small_disk.iterdir()) == ["band.wav"]


def test_a_tiny_file_with_a_huge_delta_time_is_refused_and_names_the_option(tmp_path, checkpoint, soundfont, capsys):
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    mid.tracks.append(
        mido.MidiTrack(
            [mido.Message("note_on", note=67, velocity=90, time=0), mido.Message("note_off", note=67, time=0x0FFFFFFF)]
        )
    )
    mid.save(str(tmp_path / "tiny.mid"))
    assert (tmp_path / "tiny.mid").stat().st_size < 60
    t0 = time.monotonic()
    rc = main(
        [
            "render",
            str(tmp_path / "tiny.mid"),
            "-o",
            str(tmp_path / "x.wav"),
            "--checkpoint",
            checkpoint,
            "--soundfont",
            str(soundfont),
        ]
    )
    assert rc == 2 and time.monotonic() - t0 < 30
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny.mid" in err and "hours of audio" in err, err
    assert "--max-minutes 27963 " in err and "120-minute cap" in err, err
    # the cap is the user's to move
    src = melody_file(tmp_path / "m.mid", WALTZ[:12], bpm=120.0)  # 6 beats of tune, 10 s of audio
    assert (
        main(
            [
                "render",
                str(src),
                "-o",
                str(tmp_path / "x.wav"),
                "--max-minutes",
                "0.1",
                "--checkpoint",
                checkpoint,
                "--soundfont",
                str(soundfont),
            ]
        )
        == 2
    )
    assert "--max-minutes 1 " in capsys.readouterr().err
    assert (
        main(
            [
                "render",
                str(src),
                "-o",
                str(tmp_path / "x.wav"),
                "--max-minutes",
                "1",
                "--checkpoint",
                checkpoint,
                "--soundfont",
                str(soundfont),
            ]
        )
        == 0
    )
    with pytest.raises(SystemExit):
        main(["render", str(src), "-o", str(tmp_path / "x.wav"), "--max-minutes", "0"])
    assert "argument --max-minutes" in capsys.readouterr().err


def test_progress_on_a_pipe_is_plain_periodic_lines(tmp_path, checkpoint, soundfont, capsys):
    src = melody_file(tmp_path / "m.mid", WALTZ * 12, bpm=240.0)  # 72 s of audio
    assert (
        main(
            [
                "render",
                str(src),
                "-o",
                str(tmp_path / "x.wav"),
                "--checkpoint",
                checkpoint,
                "--soundfont",
                str(soundfont),
            ]
        )
        == 0
    )
    said = capsys.readouterr()
    lines = [line for line in said.err.splitlines() if "% (" in line]
    assert len(lines) >= 5 and all(line.startswith("liveband render: ") for line in lines), said.err
    pcts = [int(line.split()[2].rstrip("%")) for line in lines]
    assert pcts == sorted(pcts) and pcts[-1] >= 80
    assert "\r" not in said.err and "wrote" in said.out


def test_odd_values_get_an_argparse_error_naming_the_option(tmp_path, capsys):
    src = melody_file(tmp_path / "m.mid", WALTZ[:6])
    for opt, needle in (
        ("--tempo=--", "argument --tempo"),
        ("--seed=--", "argument --seed"),
        ("--seed=-1", "argument --seed"),
        ("--seed=x", "argument --seed"),
    ):
        with pytest.raises(SystemExit) as done:
            main(["render", str(src), "-o", str(tmp_path / "x.wav"), opt])
        assert done.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert "error:" in err[-1] and needle in err[-1] and "Traceback" not in "\n".join(err), err
    with pytest.raises(SystemExit):
        main(["render", str(src), "-o", str(tmp_path / "x.wav"), "--seed", "-1"])
    assert "argument --seed: must be 0 or more" in capsys.readouterr().err


def test_a_midi_header_with_zero_ticks_per_beat_is_one_line_naming_the_file(tmp_path, checkpoint, capsys):
    src = melody_file(tmp_path / "zero.mid", WALTZ[:6])
    data = bytearray(src.read_bytes())
    data[12:14] = b"\x00\x00"
    src.write_bytes(bytes(data))
    assert main(["render", str(src), "-o", str(tmp_path / "x.wav"), "--checkpoint", checkpoint]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(src) in err and "ticks per beat" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zero.mid"]


def test_a_wav_render_that_clipped_prints_a_notice(tmp_path, checkpoint, soundfont, capsys, monkeypatch):
    src = melody_file(tmp_path / "m.mid", WALTZ[:12])
    model = ["--checkpoint", checkpoint, "--soundfont", str(soundfont)]
    assert main(["render", str(src), "-o", str(tmp_path / "a.wav"), *model]) == 0
    assert "clipped" not in capsys.readouterr().err
    # the same render with the synth 26 dB hotter: the limiter must hold it, and the user hears of it
    monkeypatch.setattr(
        engine.offline, "render_melody", functools.partial(engine.offline.render_melody, synth_gain=10.0)
    )
    assert main(["render", str(src), "-o", str(tmp_path / "b.wav"), *model]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "clipped" in line]
    assert len(err) == 1 and err[0].startswith("liveband render: note: the mix clipped"), err


@pytest.mark.slow
def test_a_clipped_or_broken_hummed_wav_is_accompanied_with_the_trackers_notice(
    tmp_path, checkpoint, soundfont, capsys
):
    from scipy.io import wavfile

    from liveband.bench.synth_hum import HumSpec, make_hum

    clip = make_hum(HumSpec(seed=3, register="female", n_notes=5, tempo=100.0))
    loud = np.clip(clip.audio * 6.0, -1.0, 1.0)  # the singer overdrove the input
    wavfile.write(tmp_path / "loud.wav", clip.sample_rate, (loud * 32767).astype(np.int16))
    broken = clip.audio.astype(np.float32)
    broken[1000:1100] = np.nan  # a float WAV with NaN samples
    wavfile.write(tmp_path / "nan.wav", clip.sample_rate, broken)
    model = ["--checkpoint", checkpoint, "--soundfont", str(soundfont), "--tempo", "100"]
    for name, needle in (("loud.wav", "the input clips"), ("nan.wav", "100 invalid (NaN/inf) input samples")):
        assert main(["render", str(tmp_path / name), "-o", str(tmp_path / f"band_{name}"), *model]) == 0
        err = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
        assert len(err) == 1 and err[0].startswith("liveband render: note: ") and needle in err[0], err

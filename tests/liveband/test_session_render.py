"""The app's Render (Session.render_file) and `liveband render` are one code path: a hummed
WAV renders from the app, and a file renders to the same band from both, at the file's
tempo and on the command's default backend. Real checkpoint, real SoundFont."""

from __future__ import annotations

import wave

import mido
import numpy as np
import pytest
from test_render import small_disk  # noqa: F401  (the fixture: a 16 MB tmpfs)

from liveband import cli
from liveband.bench.synth_hum import HumSpec, make_hum
from liveband.config import EngineConfig
from liveband.session import Session

SESSION_TEMPO = 150.0  # the window's tempo: a file renders at its own, not this one


def hum_wav(path):
    clip = make_hum(HumSpec(seed=3, n_notes=6, sample_rate=16000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(clip.audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def melody_mid(path, bpm=90):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
    for p in (67, 71, 74, 79, 74, 71, 67, 69):
        tr.append(mido.Message("note_on", note=p, velocity=90, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=480))
    mid.save(str(path))
    return path


def tempos(mid_path) -> set[float]:
    return {
        round(mido.tempo2bpm(m.tempo), 3)
        for t in mido.MidiFile(str(mid_path)).tracks
        for m in t
        if m.type == "set_tempo"
    }


def notes(mid_path) -> list[tuple]:
    """(track, absolute tick, channel, pitch, velocity) of every note start."""
    out = []
    for i, t in enumerate(mido.MidiFile(str(mid_path)).tracks):
        tick = 0
        for m in t:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.append((i, tick, m.channel, m.note, m.velocity))
    return sorted(out)


def cli_render(src, out, mid, cfg: EngineConfig, *extra: str):
    return cli.main(
        [
            "render",
            str(src),
            "-o",
            str(out),
            "--midi-out",
            str(mid),
            "--style",
            cfg.style,
            "--temperature",
            str(cfg.temperature),
            "--density",
            str(cfg.density),
            "--harmony-follow",
            str(cfg.harmony_follow),
            "--seed",
            str(cfg.seed),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    import os

    old = os.environ.get("LIVEBAND_HOME")
    os.environ["LIVEBAND_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        with Session(EngineConfig(tempo=SESSION_TEMPO), start_audio=False) as s:
            yield s
    finally:
        if old is None:
            os.environ.pop("LIVEBAND_HOME", None)
        else:
            os.environ["LIVEBAND_HOME"] = old


def test_a_hummed_wav_renders_from_the_app_at_the_recordings_tempo(session, tmp_path):
    src = hum_wav(tmp_path / "hum.wav")
    out, mid = tmp_path / "band.wav", tmp_path / "band.mid"
    fractions: list[float] = []
    session.render_file(str(src), str(out), str(mid), progress=fractions.append)
    with wave.open(str(out)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert w.getnframes() > 2 * w.getframerate()
    assert np.abs(audio).max() > 1000
    assert fractions and fractions[-1] == pytest.approx(1.0)
    assert tempos(mid) == {100.0}  # a recording plays at 100 BPM, as in the CLI
    assert len(notes(mid)) > 6


def test_the_app_and_the_command_render_a_file_to_the_same_band(session, tmp_path, capsys):
    src = melody_mid(tmp_path / "tune.mid", bpm=90)
    session.render_file(str(src), str(tmp_path / "app.wav"), str(tmp_path / "app.mid"))
    assert cli_render(src, tmp_path / "cli.wav", tmp_path / "cli.mid", session.engine_config) == 0
    assert "onnx-cpu" in capsys.readouterr().out  # the command's default backend
    assert tempos(tmp_path / "app.mid") == {90.0}  # the file's tempo, not the window's
    app, cmd = notes(tmp_path / "app.mid"), notes(tmp_path / "cli.mid")
    assert len(app) > 20 and app == cmd


CHART = "| Eb | Cm | Ab | Bb7 |\n"  # far from the tune's G major: the band plays these chords


def test_the_apps_render_keeps_the_feel_and_the_loaded_chart_as_the_command_does(session, tmp_path):
    src = melody_mid(tmp_path / "tune.mid", bpm=90)
    chart = tmp_path / "tune.chart"
    chart.write_text(CHART, encoding="utf-8")
    session.set_feel(swing=0.7, fills="more", humanise=0.6)
    session.load_chart(str(chart))
    try:
        session.render_file(str(src), str(tmp_path / "app.wav"), str(tmp_path / "app.mid"))
    finally:
        session.set_feel()  # the style's feel again, no chart: the module's other tests
        session.clear_chart()
    feel = ("--swing", "0.7", "--fills", "more", "--humanise", "0.6", "--chart", str(chart))
    assert cli_render(src, tmp_path / "cli.wav", tmp_path / "cli.mid", session.engine_config, *feel) == 0
    app, cmd = notes(tmp_path / "app.mid"), notes(tmp_path / "cli.mid")
    assert len(app) > 20 and app == cmd


def test_the_apps_render_is_loudness_normalised_and_writes_stems_that_add_up(session, tmp_path):
    from engine.export import integrated_loudness
    from engine.wav import read_wav

    src = melody_mid(tmp_path / "tune.mid", bpm=90)
    session.render_file(str(src), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"), stems=True)
    stems = sorted(p.name for p in tmp_path.glob("band.*.wav"))
    assert stems == ["band.bass.wav", "band.drums.wav", "band.keys.wav", "band.melody.wav", "band.pad.wav"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left
    mix, sr = read_wav(tmp_path / "band.wav")
    assert abs(integrated_loudness(mix, sr) + 16.0) < 0.5 and np.abs(mix).max() <= 10 ** (-1 / 20) + 1e-4
    total = sum(read_wav(tmp_path / name)[0] for name in stems)
    err = np.sqrt(np.mean((total - mix) ** 2)) / np.sqrt(np.mean(mix**2))
    assert 20 * np.log10(err) < -60.0


def huge_delta_mid(path):
    """A 40-byte MIDI whose one note lasts 0x0FFFFFFF ticks: 93 hours of audio."""
    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    mid.tracks.append(
        mido.MidiTrack(
            [mido.Message("note_on", note=67, velocity=90, time=0), mido.Message("note_off", note=67, time=0x0FFFFFFF)]
        )
    )
    mid.save(str(path))
    return path


def test_the_apps_render_never_writes_over_its_input_or_one_output_over_another(session, tmp_path):
    import os

    from liveband.errors import UserError

    src = melody_mid(tmp_path / "tune.mid")
    take = hum_wav(tmp_path / "take.wav")
    os.symlink(take, tmp_path / "link.wav")
    before = {p: p.read_bytes() for p in (src, take)}
    cases = [
        (take, take, None),  # the WAV output is the input
        (take, tmp_path / "link.wav", None),  # ... through a link
        (src, tmp_path / "tune.wav", src),  # the window's "tune.wav" + "tune.mid" beside it
        (src, tmp_path / "x.wav", tmp_path / "sub" / ".." / "x.wav"),  # the two outputs are one file
        (src, src, None),  # a .mid asked to be the WAV
    ]
    for path, out, mid in cases:
        with pytest.raises(UserError) as exc:
            session.render_file(str(path), str(out), None if mid is None else str(mid))
        msg = str(exc.value)
        assert len(msg.splitlines()) == 1 and ("input file" in msg or "same file" in msg or ".wav" in msg), msg
        assert "-o " not in msg and "--midi-out" not in msg, msg  # the app has no options to name
    assert {p: p.read_bytes() for p in (src, take)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.wav", "take.wav", "tune.mid"]


def test_the_apps_render_refuses_an_over_long_render_before_it_starts(session, tmp_path):
    import time

    from liveband.errors import UserError

    src = huge_delta_mid(tmp_path / "tiny.mid")
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        session.render_file(str(src), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"))
    assert time.monotonic() - t0 < 30
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1 and "tiny.mid" in msg and "hours of audio" in msg, msg
    assert "120-minute cap" in msg and "liveband render --max-minutes 27963" in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.mid"]


def test_a_full_disk_in_the_apps_render_names_the_output_and_keeps_the_old_one(session, tmp_path, request):
    from test_render import _fill_when_the_render_writes

    from liveband.errors import UserError

    disk = request.getfixturevalue("small_disk")
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120)))
    for p in [67, 71, 74, 79, 74, 71] * 8:  # 24 s: about 4.6 MB of WAV, written twice
        tr.append(mido.Message("note_on", note=p, velocity=90, time=0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=480))
    mid.save(str(tmp_path / "tune.mid"))
    (disk / "band.wav").write_bytes(b"an older mix")
    filler = _fill_when_the_render_writes(disk, disk / "filler")
    with pytest.raises(UserError) as exc:
        session.render_file(str(tmp_path / "tune.mid"), str(disk / "band.wav"), str(disk / "band.mid"))
    filler.join(10)
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1 and f"cannot write {disk / 'band.wav'}" in msg and "No space left" in msg, msg
    assert sorted(p.name for p in disk.iterdir()) == ["band.wav", "filler"]
    assert (disk / "band.wav").read_bytes() == b"an older mix"

"""`liveband sessions list/export` over takes the recorder wrote."""

from __future__ import annotations

import os
import wave

import numpy as np

from engine.events import NOTE_ON
from engine.recorder import Recorder, new_session_folder
from liveband.cli import main
from liveband.paths import sessions_dir


def make_take(seconds=0.5):
    rec = Recorder(new_session_folder(sessions_dir()), 48000, meta={"tempo": 96.0, "style": "folk"}, poll_s=0.05)
    rec.start()
    rec.ring.write(np.full((int(seconds * 48000), 2), 0.2, np.float32), 0)
    rec.add_event(0, NOTE_ON, 3, 64, 90)
    rec.stop()
    return rec.folder.name


def test_list_shows_each_take(liveband_home, capsys):
    assert main(["sessions", "list"]) == 0
    assert "no recorded sessions" in capsys.readouterr().out
    name = make_take()
    assert main(["sessions"]) == 0
    out = capsys.readouterr().out
    assert name in out and "folk" in out and "0:00.5" in out


def test_export_copies_wav_midi_and_metadata(liveband_home, tmp_path, capsys):
    name = make_take(1.0)
    assert main(["sessions", "export", name, "-o", str(tmp_path / "out")]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 3
    wav = next(p for p in paths if p.endswith(".wav"))
    with wave.open(wav) as w:
        assert w.getnframes() == 48000


def test_export_errors_are_one_line(liveband_home, tmp_path, capsys):
    assert main(["sessions", "export", "19990101-000000", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "19990101-000000" in err and "\n" not in err
    assert main(["sessions", "export"]) == 2
    assert "sessions list" in capsys.readouterr().err


# -- hostile sessions folders and export targets (issue 15) -------------------------
import json  # noqa: E402

import pytest  # noqa: E402
from fsfaults import read_only_dir  # noqa: E402


def _one_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


@pytest.mark.parametrize(
    "meta",
    [
        "[]",
        "null",
        '{"seconds": "abc"}',
        '{"tempo": 96.0, "seconds": 1.',
        '"x"',
        '{"seconds": NaN}',
        '{"complete": "yes"}',
        b"\xff\xfe{}",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_list_shows_the_good_sessions_and_one_line_per_malformed_one(liveband_home, capsys, meta):
    good = make_take()
    bad = sessions_dir() / "20000101-000000"
    bad.mkdir()
    (bad / "mix.wav").write_bytes(b"RIFF")
    (bad / "session.json").write_bytes(meta if isinstance(meta, bytes) else meta.encode())
    assert main(["sessions", "list"]) == 0
    out, err = capsys.readouterr()
    assert good in out and "folk" in out
    assert bad.name not in out
    assert bad.name in _one_line(err) and "session.json" in err


@pytest.mark.parametrize("kind", ["link outside", "fifo", "huge"])
def test_a_session_json_that_is_a_link_a_fifo_or_huge_is_not_read(liveband_home, tmp_path, capsys, kind):
    good = make_take()
    bad = sessions_dir() / "20000101-000000"
    bad.mkdir()
    (bad / "mix.wav").write_bytes(b"RIFF")
    meta = bad / "session.json"
    if kind == "link outside":
        (tmp_path / "secret.json").write_text('{"style": "not yours"}')
        meta.symlink_to(tmp_path / "secret.json")
    elif kind == "fifo":
        os.mkfifo(meta)  # nobody writes: reading it would wait forever
    else:
        meta.write_text('{"style": "' + "x" * 300_000 + '"}')
    assert main(["sessions", "list"]) == 0
    out, err = capsys.readouterr()
    assert good in out and "not yours" not in out + err
    assert bad.name in _one_line(err) and "session.json" in err


@pytest.mark.parametrize("offset, value", [(22, 0), (34, 0), (34, 12)])  # channels 0, bits 0, bits 12
def test_export_of_a_take_whose_wav_header_is_damaged_is_one_line_naming_it(
    liveband_home, tmp_path, capsys, offset, value
):
    name = make_take()
    wav = sessions_dir() / name / "mix.wav"
    raw = bytearray(wav.read_bytes())
    raw[offset : offset + 2] = value.to_bytes(2, "little")
    wav.write_bytes(bytes(raw))
    assert main(["sessions", "export", name, "-o", str(tmp_path / "out")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(wav) in err and "not a LiveBand WAV" in err
    assert list((tmp_path / "out").iterdir()) == []
    assert wav.read_bytes() == bytes(raw)  # the take is left as it was


def test_the_sessions_panel_lists_good_and_malformed_sessions_through_the_same_code(liveband_home, qapp):
    from engine.takes import list_sessions
    from ui.panels import SessionsPanel

    good = make_take()
    bad = sessions_dir() / "20000101-000000"
    bad.mkdir()
    (bad / "mix.wav").write_bytes(b"RIFF")
    (bad / "session.json").write_text('{"seconds": "abc", "tempo": "fast"}')
    panel = SessionsPanel()
    panel.show_sessions(list_sessions(sessions_dir()))
    items = [panel.session_list.item(i) for i in range(panel.session_list.count())]
    assert [i.text().split("\n")[0] for i in items] == [good, bad.name]
    assert "seconds" in items[1].toolTip()
    assert "lost" not in items[0].text()


def test_a_take_that_lost_audio_says_how_much_in_the_list_and_the_panel(liveband_home, qapp, capsys):
    from engine.takes import list_sessions
    from ui.panels import SessionsPanel

    name = make_take()
    meta_path = sessions_dir() / name / "session.json"
    meta = json.loads(meta_path.read_text())
    meta["dropped_audio_frames"] = 72000  # what a full disk cost the take, at 48 kHz
    meta_path.write_text(json.dumps(meta))
    assert main(["sessions", "list"]) == 0
    assert "1.5 s lost" in capsys.readouterr().out
    panel = SessionsPanel()
    panel.show_sessions(list_sessions(sessions_dir()))
    assert "1.5 s of audio lost" in panel.session_list.item(0).text()
    meta["dropped_audio_frames"] = "lots"  # nonsense is not a loss (nor a crash)
    meta_path.write_text(json.dumps(meta))
    assert list_sessions(sessions_dir())[0]["lost_seconds"] == 0.0


def test_export_refuses_a_session_folder_linked_outside(liveband_home, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mix.wav").write_bytes(b"private")
    sessions_dir().mkdir(parents=True)
    (sessions_dir() / "20000101-000000").symlink_to(elsewhere)
    out = tmp_path / "out"
    assert main(["sessions", "export", "20000101-000000", "-o", str(out)]) == 2
    assert "outside" in _one_line(capsys.readouterr().err)
    assert not out.exists() or not list(out.iterdir())
    assert main(["sessions", "list"]) == 0
    assert "outside" in _one_line(capsys.readouterr().err)


def test_export_refuses_a_file_linked_outside_and_copies_nothing(liveband_home, tmp_path, capsys):
    name = make_take()
    wav = sessions_dir() / name / "mix.wav"
    wav.unlink()
    wav.symlink_to("/etc/passwd")
    out = tmp_path / "out"
    assert main(["sessions", "export", name, "-o", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "mix.wav" in err and "outside" in err
    assert not out.exists() or not list(out.iterdir())


def test_export_never_overwrites_and_leaves_nothing_half_done(liveband_home, tmp_path, capsys):
    name = make_take()
    out = tmp_path / "out"
    out.mkdir()
    mine = out / f"{name}-session.mid"
    mine.write_bytes(b"my own edit")
    assert main(["sessions", "export", name, "-o", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(mine) in err and "exists" in err
    assert mine.read_bytes() == b"my own edit"
    assert sorted(p.name for p in out.iterdir()) == [mine.name]  # no wav/json, no temp file
    mine.unlink()
    assert main(["sessions", "export", name, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["sessions", "export", name, "-o", str(out)]) == 2  # the second time: refused
    assert "exists" in _one_line(capsys.readouterr().err)
    assert len(list(out.iterdir())) == 3


def test_export_into_a_read_only_folder_is_one_line(liveband_home, tmp_path, capsys):
    name = make_take()
    with read_only_dir(tmp_path / "ro") as ro:
        assert main(["sessions", "export", name, "-o", str(ro)]) == 2
        err = _one_line(capsys.readouterr().err)
        assert str(ro) in err and ("Read-only" in err or "Permission" in err)
        assert main(["sessions", "export", name, "-o", str(ro / "sub")]) == 2
        _one_line(capsys.readouterr().err)
        assert not list(ro.iterdir())


def test_export_with_very_long_names_is_one_line(liveband_home, tmp_path, capsys):
    name = make_take()
    assert main(["sessions", "export", "x" * 300, "-o", str(tmp_path / "out")]) == 2
    assert "too long" in _one_line(capsys.readouterr().err)
    assert main(["sessions", "export", name, "-o", str(tmp_path / ("y" * 300))]) == 2
    assert "too long" in _one_line(capsys.readouterr().err)
    # A session folder whose name fits, but NAME-session.json does not.
    renamed = sessions_dir() / ("z" * 250)
    (sessions_dir() / name).rename(renamed)
    out = tmp_path / "out2"
    assert main(["sessions", "export", renamed.name, "-o", str(out)]) == 2
    assert "too long" in _one_line(capsys.readouterr().err)
    assert not list(out.iterdir())
    json.loads((renamed / "session.json").read_text())  # the source is untouched


def test_list_shows_meter_key_input_and_style_of_each_take(liveband_home, capsys):
    rec = Recorder(
        new_session_folder(sessions_dir()),
        48000,
        poll_s=0.05,
        meta={"tempo": 96.0, "style": "waltz", "meter": "3/4", "input": "mic"},
    )
    rec.start()
    rec.ring.write(np.full((4800, 2), 0.2, np.float32), 0)
    rec.set_meta("key", "G major")  # what the band heard by the end of the take
    rec.stop()
    assert main(["sessions", "list"]) == 0
    out = capsys.readouterr().out
    for shown in ("3/4", "G major", "mic", "waltz"):
        assert shown in out, (shown, out)


def test_rename_and_delete_a_take(liveband_home, capsys):
    name = make_take()
    assert main(["sessions", "rename", name, "blues in G"]) == 0
    assert "renamed" in capsys.readouterr().out
    assert not (sessions_dir() / name).exists() and (sessions_dir() / "blues in G" / "mix.wav").is_file()
    assert main(["sessions", "delete", "blues in G"]) == 0
    assert not (sessions_dir() / "blues in G").exists()


def test_names_that_escape_the_folder_or_exist_are_refused_in_one_line(liveband_home, tmp_path, capsys):
    a, b = make_take(), make_take()
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (sessions_dir() / "link").symlink_to(outside)
    for argv in (
        ["rename", a, "../escaped"],
        ["rename", a, ".hidden"],
        ["rename", a, b],
        ["rename", a, ""],
        ["delete", "../" + outside.name],
        ["delete", "link"],
        ["delete", "nope"],
        ["rename", "nope", "x"],
        ["delete"],
    ):
        assert main(["sessions", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (argv, err)
    assert (outside / "keep.txt").read_text() == "mine"
    assert (sessions_dir() / a / "mix.wav").is_file() and (sessions_dir() / b / "mix.wav").is_file()
    assert not (tmp_path / "escaped").exists()


def test_a_folder_with_files_liveband_did_not_write_is_not_deleted(liveband_home, capsys):
    name = make_take()
    (sessions_dir() / name / "notes.txt").write_text("lyrics")
    assert main(["sessions", "delete", name]) == 2
    assert "not deleted" in capsys.readouterr().err
    assert (sessions_dir() / name / "notes.txt").read_text() == "lyrics"

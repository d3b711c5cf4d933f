"""Chord charts: plain text in, per-bar chords out; a chart file drives a real render
(shipped checkpoint, real SoundFont) whose band chord stream equals the chart at every
step, and whose pad sounds the chart's chords; a bad chart is one line naming the file
and line."""

import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest
from test_styles import TUNE, tune

from engine import parts as P
from engine.chart import Chart, ChartError, load_chart, parse_chart, parse_chord, save_chart
from engine.events import NOTE_ON
from engine.offline import RenderSettings, render_melody
from models.runtime import DEFAULT_CHECKPOINT
from models.tokens import CHORD_NONE, chord_pitch_classes, chord_token

ROOT = Path(__file__).resolve().parents[2]
SONG = """# a turnaround with a repeat
A: | C | Am | F G7 |
B: |: Dm7 | G7 :| Em7 A7 | % |
"""


def names(chart: Chart) -> list[list[str]]:
    from models.tokens import chord_name

    return [[chord_name(t) for t in bar] for bar in chart.bars]


def test_chords_repeats_sections_and_shares_of_a_bar():
    c = parse_chart(SONG)
    assert names(c) == [
        ["C"],
        ["Am"],
        ["F", "G7"],
        ["Dmin7"],
        ["G7"],
        ["Dmin7"],
        ["G7"],
        ["Emin7", "A7"],
        ["Emin7", "A7"],
    ]
    assert c.sections == (("A", 0), ("B", 3))
    f, g7 = chord_token(5, "maj"), chord_token(7, "7")
    assert [c.token_at(32 + s, "4/4") for s in (0, 7, 8, 15)] == [f, f, g7, g7]
    assert [c.token_at(24 + s, "3/4") for s in (0, 7, 8, 11)] == [f, f, g7, g7]  # 2 beats + 1
    assert c.token_at(9 * 16, "4/4") == chord_token(0, "maj")  # loops from the top
    assert parse_chord("Bb7(b9)") == chord_token(10, "7") and parse_chord("F#m7b5") == chord_token(6, "hdim7")
    assert parse_chord("C/E") == chord_token(0, "maj") and parse_chord("N.C.") == CHORD_NONE
    assert [len(b) for b in parse_chart("| C / G / |").bars] == [4]
    assert names(parse_chart("|: C :|x3")) == [["C"]] * 3


def test_a_chart_saves_and_loads_as_the_same_chords(tmp_path):
    c = parse_chart(SONG)
    back = load_chart(save_chart(c, tmp_path / "song.txt"))
    assert back.bars == c.bars and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "text, why",
    [
        ("| C | H7 |", "line 1: not a chord symbol: 'H7'"),
        ("| C |\n| Cxyz |", "line 2: unknown chord quality"),
        ("# nothing", "no bars"),
        ("| C :|x99 |", "2-16 times"),
        ("| C " + ":|x16 " * 9, "line 1: the repeats make more than 4096 bars"),
        ("| C | G |\n" * 2048 + "| F :|", "more than 4096 bars"),
        ("| C |\n" + "#" * 300_000, "too large"),
        ("| C |\n\xff", "not UTF-8"),
    ],
)
def test_a_bad_chart_is_one_error_naming_file_and_line(tmp_path, text, why):
    p = tmp_path / "song.txt"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(ChartError) as e:
        load_chart(p)
    assert str(p) in str(e.value) and why in str(e.value) and "\n" not in str(e.value)


def test_a_chart_that_is_not_a_plain_file_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)  # nobody writes: reading it would wait forever
    for p in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ChartError) as e:
            load_chart(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def band():
    from engine.backends import open_accompanist

    return open_accompanist("torch-cpu", str(DEFAULT_CHECKPOINT))[0]


@pytest.mark.parametrize("meter, style", [("4/4", "pop"), ("3/4", "waltz")])
def test_a_chart_file_drives_a_render_whose_chord_stream_equals_the_chart(tmp_path, band, soundfont, meter, style):
    p = tmp_path / "song.txt"
    p.write_text(SONG)
    chart = load_chart(p)
    r = render_melody(
        tune(meter, bars=6), band, RenderSettings(style=style, tempo=120, meter=meter, seed=7, chart=chart), soundfont
    )
    assert r.chords and r.steps > 0
    stream, i = [], 0
    for step in range(r.steps):
        while i + 1 < len(r.chords) and r.chords[i + 1][0] <= step:
            i += 1
        stream.append(r.chords[i][1])
    assert stream == [chart.token_at(s, meter) for s in range(r.steps)]
    # and the listener hears it: at each chord change the pad sounds exactly that chord
    pad = [e for e in r.events if e[1] == NOTE_ON and e[2] == P.PAD.channel]
    for step, tok in r.chords:
        struck = {e[3] % 12 for e in pad if r.clock.step_at(e[0]) == step}
        if struck:
            assert struck <= chord_pitch_classes(tok), (step, tok, struck)


def test_without_a_chart_the_model_chooses_its_own_chords(band, soundfont):
    chart = parse_chart(SONG)
    r = render_melody(tune("4/4", bars=6), band, RenderSettings(style="pop", tempo=120, meter="4/4", seed=7), soundfont)
    assert [t for _, t in r.chords] != [chart.token_at(s, "4/4") for s, _ in r.chords]


def test_render_chart_from_the_command_line_and_a_bad_one_writes_nothing(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120))])
    for p in TUNE:
        tr += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=480)]
    mid.tracks.append(tr)
    mid.save(str(tmp_path / "in.mid"))
    song = tmp_path / "song.txt"
    song.write_text("| F | Bb | C7 | F |\n")

    def run(*extra):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "liveband.cli",
                "render",
                str(tmp_path / "in.mid"),
                "-o",
                str(tmp_path / "out.wav"),
                "--midi-out",
                str(tmp_path / "out.mid"),
                "--backend",
                "torch-cpu",
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )

    done = run("--chart", str(song))  # the shipped offline model (it hears the melody ahead)
    assert done.returncode == 0, done.stderr
    out = mido.MidiFile(str(tmp_path / "out.mid"))
    want = [chord_pitch_classes(parse_chord(c)) for c in ("F", "Bb", "C7", "F")]
    heard = 0
    for tr in out.tracks:
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0 and m.channel == P.PAD.channel:
                assert m.note % 12 in want[(tick // (4 * 480)) % 4], (tick, m.note)
                heard += 1
    assert heard >= 8
    (tmp_path / "out.wav").unlink()
    song.write_text("| F | Bb |\n| C7 | Q |\n")
    bad = run("--chart", str(song))
    assert bad.returncode == 2 and f"{song} line 2" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.wav").exists()

"""12/8 through the real render path (shipped checkpoint, real SoundFont): every style
plays all its parts in 12/8 (the model conditions on two 6/8 bars), the drummer plays the
style file's 12/8 groove on a 24-step bar, the MIDI file says 12/8, and a melody file in
12/8 is read as 12/8."""

from pathlib import Path

import mido
import pytest
from test_styles import PART_CHANNEL, TUNE

from engine import parts as P
from engine.clock import METERS, Clock, beat_steps, model_meter
from engine.events import NOTE_ON
from engine.groove import SNARE
from engine.melody_file import Melody, MelodyNote, read_melody_midi
from engine.offline import RenderSettings, render_melody
from engine.styles import load_styles
from models.runtime import DEFAULT_CHECKPOINT

SHIPPED = load_styles().styles
SR = 48000


def tune_12_8(bars: int = 3) -> Melody:
    """Dotted quarters, four to the bar."""
    notes = tuple(MelodyNote(i * 1.5, i * 1.5 + 1.35, TUNE[i % len(TUNE)]) for i in range(bars * 4))
    return Melody(notes, None, "12/8", "12/8", "t")


@pytest.fixture(scope="module")
def band():
    from engine.backends import open_accompanist

    acc, _ = open_accompanist("torch-cpu", str(DEFAULT_CHECKPOINT))
    return acc


def test_twelve_eight_is_a_band_meter_of_four_dotted_quarters_the_model_hears_as_six_eight():
    assert "12/8" in METERS
    c = Clock(SR, 120, "12/8")
    assert c.bar_steps == 24 and c.beat_steps == 6 == beat_steps("12/8")
    assert model_meter("12/8") == "6/8" and model_meter("3/4") == "3/4"


def test_a_melody_file_in_twelve_eight_is_read_as_twelve_eight(tmp_path):
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=12, denominator=8)])
    tr += [mido.Message("note_on", note=67, velocity=90, time=0), mido.Message("note_off", note=67, time=720)]
    mid.tracks.append(tr)
    mid.save(str(tmp_path / "t.mid"))
    assert read_melody_midi(tmp_path / "t.mid").meter == "12/8"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_style_renders_in_twelve_eight_with_all_its_parts(name, band, soundfont, tmp_path):
    st = SHIPPED[name]
    r = render_melody(
        tune_12_8(), band, RenderSettings(style=name, tempo=100, meter="12/8", seed=2, density=0.6), soundfont
    )
    assert r.clock.bar_steps == 24
    ons = [e for e in r.events if e[1] == NOTE_ON]
    for part in ("bass", "keys", "pad", "drums"):
        n = sum(1 for e in ons if e[2] == PART_CHANNEL[part])
        assert (n > 0) == (part in st.parts), (name, part, n)
    if name == "blues":
        # the file's 12/8 groove: the backbeat on 2 and 4 is steps 6 and 18 of the 24
        pos = {r.clock.step_at(e[0]) % 24 for e in ons if e[2] == P.DRUMS.channel and e[3] == SNARE}
        assert {6, 18} <= pos and not pos & {4, 12}, sorted(pos)


def test_the_rendered_midi_file_says_twelve_eight(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=12, denominator=8)])
    for p in TUNE[:8]:
        tr += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=720)]
    mid.tracks.append(tr)
    mid.save(str(tmp_path / "in.mid"))
    run = subprocess.run(
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
            "--style",
            "blues",
            "--checkpoint",
            str(DEFAULT_CHECKPOINT),
            "--backend",
            "torch-cpu",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    sigs = [
        (m.numerator, m.denominator)
        for t in mido.MidiFile(str(tmp_path / "out.mid")).tracks
        for m in t
        if m.type == "time_signature"
    ]
    assert sigs and set(sigs) == {(12, 8)}, sigs

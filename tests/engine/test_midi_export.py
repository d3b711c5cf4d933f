"""MIDI export: each part on its own named track, grid steps on exact ticks across a
tempo change, and the tempo map in the conductor track."""

import mido

from engine import parts as P
from engine.clock import Clock
from engine.events import NOTE_OFF, NOTE_ON
from engine.midi_export import notes_midi, write_midi


def test_steps_land_on_exact_ticks_across_a_tempo_change(tmp_path):
    c = Clock(48000, 120, "3/4", count_in_bars=1)
    c.set_tempo(75, from_step=10)  # from step 12 (the next beat)
    ev = []
    for k in range(0, 40, 3):
        ev.append((c.step_time(k), NOTE_ON, P.BASS.channel, 40 + k % 12, 90))
        ev.append((c.step_time(k + 2), NOTE_OFF, P.BASS.channel, 40 + k % 12, 0))
    ev.append((c.step_time(-12), NOTE_ON, P.DRUMS.channel, 37, 100))  # a count-in click
    write_midi(tmp_path / "t.mid", ev, c)
    mid = mido.MidiFile(str(tmp_path / "t.mid"))
    names = [t.name for t in mid.tracks]
    assert names[1:] == [
        "Bass (Fingered Bass)",
        "Keys (Acoustic Grand Piano)",
        "Pad (Pad 2 (warm))",
        "Drums (Standard Kit)",
        "Melody",
    ]
    tempos, tick = [], 0
    for m in mid.tracks[0]:
        tick += m.time
        if m.type == "set_tempo":
            tempos.append((tick, round(mido.tempo2bpm(m.tempo), 3)))
        if m.type == "time_signature":
            assert (m.numerator, m.denominator) == (3, 4)
    assert tempos == [(0, 120.0), ((12 + 12) * 120, 75.0)]  # count-in bar first
    ons, tick = [], 0
    for m in mid.tracks[names.index("Bass (Fingered Bass)")]:
        tick += m.time
        if m.type == "note_on":
            ons.append(tick)
    assert ons == [(k + 12) * 120 for k in range(0, 40, 3)]
    drums = [m for m in mid.tracks[names.index("Drums (Standard Kit)")] if m.type == "note_on"]
    assert drums[0].time == 0


def test_tracks_are_named_after_the_instruments_chosen(tmp_path):
    """A DAW shows the instrument each part plays, not only the part; the melody track
    keeps the name the melody reader looks for, so the file reads back as a melody."""
    from engine.events import PROGRAM
    from engine.melody_file import read_melody_midi

    c = Clock(48000, 100, "4/4")
    ev = [
        (0, PROGRAM, P.BASS.channel, 35, 0),
        (0, PROGRAM, P.KEYS.channel, 4, 0),
        (0, PROGRAM, P.MELODY.channel, 65, 0),
        (0, PROGRAM, P.DRUMS.channel, 40, 0),
    ]
    for k, pitch in enumerate((60, 62, 64, 65)):
        ev += [
            (c.step_time(4 * k), NOTE_ON, P.MELODY.channel, pitch, 90),
            (c.step_time(4 * k + 3), NOTE_OFF, P.MELODY.channel, pitch, 0),
            (c.step_time(4 * k), NOTE_ON, P.BASS.channel, pitch - 24, 90),
            (c.step_time(4 * k + 3), NOTE_OFF, P.BASS.channel, pitch - 24, 0),
        ]
    write_midi(tmp_path / "t.mid", ev, c)
    mid = mido.MidiFile(str(tmp_path / "t.mid"))
    names = [t.name for t in mid.tracks]
    assert names[1:] == [
        "Bass (Fretless Bass)",
        "Keys (Electric Piano 1)",
        "Pad (Pad 2 (warm))",
        "Drums (Brush Kit)",
        "Melody",
    ]
    instruments = [next(m.name for m in t if m.type == "instrument_name") for t in mid.tracks[1:]]
    assert instruments == ["Fretless Bass", "Electric Piano 1", "Pad 2 (warm)", "Brush Kit", "Alto Sax"]
    assert [n.pitch for n in read_melody_midi(tmp_path / "t.mid").notes] == [60, 62, 64, 65]


def test_transcribed_notes_in_seconds_land_on_ticks_of_1_960_s(tmp_path):
    """The transcriber's one-track file: 120 BPM, 480 ticks a beat, a repeated pitch's
    note-off before its next note-on at the same tick, a zero-length note one tick long."""
    data = notes_midi([(62, 0.5, 1.0, 90), (60, 0.0, 0.5, 200), (62, 1.0, 1.0, 0)])
    (tmp_path / "n.mid").write_bytes(data)
    mid = mido.MidiFile(str(tmp_path / "n.mid"))
    assert mid.type == 1 and mid.ticks_per_beat == 480 and len(mid.tracks) == 1
    tick, seen = 0, []
    for m in mid.tracks[0]:
        tick += m.time
        if m.type == "set_tempo":
            assert mido.tempo2bpm(m.tempo) == 120
        elif m.type == "track_name":
            assert m.name == "hummed melody"
        elif m.type in ("note_on", "note_off"):
            seen.append((tick, m.type, m.note, m.velocity))
    assert seen == [
        (0, "note_on", 60, 127),
        (480, "note_off", 60, 0),
        (480, "note_on", 62, 90),
        (960, "note_off", 62, 0),
        (960, "note_on", 62, 1),
        (961, "note_off", 62, 0),
    ]

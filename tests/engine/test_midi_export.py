"""MIDI export: each part on its own named track, grid steps on exact ticks across a
tempo change, and the tempo map in the conductor track."""
import mido

from engine import parts as P
from engine.clock import Clock
from engine.events import NOTE_OFF, NOTE_ON
from engine.midi_export import write_midi


def test_steps_land_on_exact_ticks_across_a_tempo_change(tmp_path):
    c = Clock(48000, 120, "3/4", count_in_bars=1)
    c.set_tempo(75, from_step=10)                 # from step 12 (the next beat)
    ev = []
    for k in range(0, 40, 3):
        ev.append((c.step_time(k), NOTE_ON, P.BASS.channel, 40 + k % 12, 90))
        ev.append((c.step_time(k + 2), NOTE_OFF, P.BASS.channel, 40 + k % 12, 0))
    ev.append((c.step_time(-12), NOTE_ON, P.DRUMS.channel, 37, 100))   # a count-in click
    write_midi(tmp_path / "t.mid", ev, c)
    mid = mido.MidiFile(str(tmp_path / "t.mid"))
    names = [t.name for t in mid.tracks]
    assert names[1:] == ["BASS", "KEYS", "PAD", "DRUMS", "MELODY"]
    tempos, tick = [], 0
    for m in mid.tracks[0]:
        tick += m.time
        if m.type == "set_tempo":
            tempos.append((tick, round(mido.tempo2bpm(m.tempo), 3)))
        if m.type == "time_signature":
            assert (m.numerator, m.denominator) == (3, 4)
    assert tempos == [(0, 120.0), ((12 + 12) * 120, 75.0)]     # count-in bar first
    ons, tick = [], 0
    for m in mid.tracks[names.index("BASS")]:
        tick += m.time
        if m.type == "note_on":
            ons.append(tick)
    assert ons == [(k + 12) * 120 for k in range(0, 40, 3)]
    drums = [m for m in mid.tracks[names.index("DRUMS")] if m.type == "note_on"]
    assert drums[0].time == 0

"""Timed events (samples on the audio clock) -> a multi-track Standard MIDI File.

One conductor track (tempo map, time signature) and one track per part (bass, keys, pad,
drums, melody) on the part's channel, named after the part and the instrument it plays
("Bass (Fingered Bass)"), with the instrument also as an instrument-name event, as DAWs
show it. The melody track is named plain "Melody": that name is how
``engine.melody_file`` finds the melody when the file is read back. Sample times become ticks
through the same ``Clock`` that produced them, so a note on grid step k lands exactly on
tick ``(k - first_step) * ticks_per_beat / 4``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from engine import parts as P
from engine.clock import Clock
from engine.events import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM
from engine.gm import instrument_name

TICKS_PER_BEAT = 480


def sample_to_tick(clock: Clock, sample: int, tpb: int = TICKS_PER_BEAT) -> int:
    steps = clock.sample_to_steps(sample) - clock.first_step
    return max(0, int(round(steps * tpb / 4)))


def write_midi(path: str | Path, events: Iterable[tuple[int, int, int, int, int]], clock: Clock,
               tpb: int = TICKS_PER_BEAT) -> Path:
    """Write ``events`` ((time, kind, channel, data1, data2) tuples, any order) to ``path``."""
    import mido

    path = Path(path)
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name="LiveBand", time=0))
    num, den = (int(x) for x in clock.meter.split("/"))
    conductor.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    last = 0
    for seg in clock.segments:
        tick = max(0, int(round((seg.step - clock.first_step) * tpb / 4)))
        conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(seg.bpm), time=tick - last))
        last = tick
    mid.tracks.append(conductor)
    by_channel: dict[int, list[tuple[int, int, int, int, int]]] = {}
    for i, ev in enumerate(sorted(events, key=lambda e: e[0])):
        by_channel.setdefault(ev[2], []).append(ev)
    for part in P.ALL_PARTS:
        evs = by_channel.pop(part.channel, [])
        instrument = track_instrument(part, evs)
        name = "Melody" if part is P.MELODY else f"{part.name.capitalize()} ({instrument})"
        mid.tracks.append(_track(name, evs, clock, tpb, instrument))
    for ch, evs in sorted(by_channel.items()):
        mid.tracks.append(_track(f"Channel {ch + 1}", evs, clock, tpb))
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


def track_instrument(part: P.Part, events) -> str:
    """The GM name of what ``part`` plays in ``events``: its first program change, else the
    part's default program (the drum channel: its kit)."""
    program = next((ev[3] for ev in events if ev[1] == PROGRAM and ev[2] == part.channel), None)
    drums = part.channel == P.DRUMS.channel
    return instrument_name(program if program is not None else (0 if drums else part.program), drums)


def _track(name: str, evs, clock: Clock, tpb: int, instrument: str | None = None):
    import mido

    tr = mido.MidiTrack()
    tr.append(mido.MetaMessage("track_name", name=name, time=0))
    if instrument:
        tr.append(mido.MetaMessage("instrument_name", name=instrument, time=0))
    last = 0
    for time, kind, ch, d1, d2 in evs:
        tick = sample_to_tick(clock, time, tpb)
        dt = tick - last
        if kind == NOTE_ON:
            msg = mido.Message("note_on", channel=ch, note=d1, velocity=d2, time=dt)
        elif kind == NOTE_OFF:
            msg = mido.Message("note_off", channel=ch, note=d1, velocity=0, time=dt)
        elif kind == CONTROL:
            msg = mido.Message("control_change", channel=ch, control=d1, value=d2, time=dt)
        elif kind == PROGRAM:
            msg = mido.Message("program_change", channel=ch, program=d1, time=dt)
        else:
            continue
        tr.append(msg)
        last = tick
    return tr

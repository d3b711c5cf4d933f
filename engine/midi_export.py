"""Timed events (samples on the audio clock) -> a multi-track Standard MIDI File: the one
MIDI file writer (through mido), for renders (``write_midi``, on a render's Clock), for
live takes (``MidiTakeWriter``, on a tempo map of audio-clock marks) and for transcribed
notes in seconds (``notes_midi``).

One conductor track (tempo map, time signature) and one track per part (bass, keys, pad,
drums, melody) on the part's channel, named after the part and the instrument it plays
("Bass (Fingered Bass)"), with the instrument also as an instrument-name event, as DAWs
show it. The melody track is named plain "Melody": that name is how
``engine.melody_file`` finds the melody when the file is read back. Sample times become ticks
through the same ``Clock`` that produced them, so a note on grid step k lands exactly on
tick ``(k - first_step) * ticks_per_beat / 4``.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import mido
from mido.midifiles.midifiles import encode_variable_int, write_chunk

from engine import parts as P
from engine.clock import Clock
from engine.events import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM, event_message
from engine.gm import instrument_name
from models.atomic import write_atomic
from models.tokens import meter_parts

TICKS_PER_BEAT = 480


def sample_to_tick(clock: Clock, sample: int, tpb: int = TICKS_PER_BEAT) -> int:
    steps = clock.sample_to_steps(sample) - clock.first_step
    return max(0, int(round(steps * tpb / 4)))


def write_midi(
    path: str | Path, events: Iterable[tuple[int, int, int, int, int]], clock: Clock, tpb: int = TICKS_PER_BEAT
) -> Path:
    """Write ``events`` ((time, kind, channel, data1, data2) tuples, any order) to ``path``."""
    path = Path(path)
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name="LiveBand", time=0))
    num, den = meter_parts(clock.meter)
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


def notes_midi(
    notes: Iterable[tuple[int, float, float, int]],
    track_name: str = "hummed melody",
    bpm: float = 120.0,
    tpb: int = TICKS_PER_BEAT,
) -> bytes:
    """(pitch, start s, end s, velocity) notes as heard (unquantised) -> a type-1 MIDI file
    with one track at ``bpm`` (120: one tick of 480 per beat is 1/960 s); a note lasts at
    least one tick, and a note-off comes before a note-on at the same tick."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.MetaMessage("track_name", name=track_name, time=0))
    scale = tpb * bpm / 60.0
    evs = []
    for pitch, start, end, vel in notes:
        on = int(round(start * scale))
        off = max(on + 1, int(round(end * scale)))
        evs.append((on, 1, pitch, max(1, min(127, vel))))
        evs.append((off, 0, pitch, 0))
    evs.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, is_on, pitch, vel in evs:
        track.append(mido.Message("note_on" if is_on else "note_off", note=pitch, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def track_instrument(part: P.Part, events) -> str:
    """The GM name of what ``part`` plays in ``events``: its first program change, else the
    part's default program (the drum channel: its kit)."""
    program = next((ev[3] for ev in events if ev[1] == PROGRAM and ev[2] == part.channel), None)
    drums = part.channel == P.DRUMS.channel
    return instrument_name(program if program is not None else (0 if drums else part.program), drums)


def _track(name: str, evs, clock: Clock, tpb: int, instrument: str | None = None):
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


# -- live takes ---------------------------------------------------------------------
# -- MIDI -------------------------------------------------------------------------
@dataclass(frozen=True)
class TempoMark:
    sample: int  # audio-clock sample where this tempo starts
    bpm: float


def samples_to_ticks(samples: int, start: int, sample_rate: int, tempi: list[TempoMark]) -> int:
    """Ticks (TICKS_PER_BEAT per quarter) of audio-clock sample ``samples`` in a file that
    begins at sample ``start`` with tempo map ``tempi`` (sorted, first at or before start)."""
    ticks = 0.0
    pos = start
    bpm = tempi[0].bpm if tempi else 120.0
    for mark in tempi:
        if mark.sample <= pos:
            bpm = mark.bpm
            continue
        if mark.sample >= samples:
            break
        ticks += (mark.sample - pos) / sample_rate * bpm / 60.0 * TICKS_PER_BEAT
        pos, bpm = mark.sample, mark.bpm
    ticks += (samples - pos) / sample_rate * bpm / 60.0 * TICKS_PER_BEAT
    return int(round(ticks))


def _event_bytes(kind: int, ch: int, d1: int, d2: int) -> bytes | None:
    """The channel message for one engine event (None: not a MIDI file event)."""
    msg = event_message(kind, ch, d1, d2)
    return None if msg is None else bytes(msg.bytes())


def _meta_bytes(delta: int, msg) -> bytes:
    return bytes(encode_variable_int(delta)) + bytes(msg.bytes())


class MidiTakeWriter:
    """A take's type-1 MIDI file (track 0: tempo and meter; then one track per channel),
    rewritten whole every few seconds but encoded incrementally: each ``write`` encodes
    only the events added since the last one (mido's messages and delta times) and
    writes the kept bytes (in mido's chunks).

    Why: ``mido.MidiFile.save`` of the whole take on every write costs Python time that
    grows with the take, every 2 s: CPU and GIL time taken from the audio callback
    (docs/live.md, "Recording").

    Events are encoded in order; one that arrives earlier than the latest encoded, a
    tempo mark at or before it, or a new origin makes the next write re-encode the take
    from the start (sorted). Thread: one writer.
    """

    def __init__(self, sample_rate: int, meter: str = "4/4", track_names: dict[int, str] | None = None) -> None:
        self.sample_rate = sample_rate
        self.meter = meter
        self.track_names = track_names or {}
        self.reencoded = 0  # whole-take encodings (the first one included)
        self._reset(None, ())

    def _reset(self, start: int | None, tempi: tuple) -> None:
        self._start = start
        self._tempi = tempi  # ((sample, bpm), ...) the encoding used
        self._tracks: dict[int, bytearray] = {}
        self._prev_tick: dict[int, int] = {}
        self._done = 0  # events of the list encoded so far
        self._last_sample = -1

    def write(
        self, path: str | os.PathLike, events: list[tuple[int, int, int, int, int]], start: int, tempi: list[TempoMark]
    ) -> None:
        """Write ``events`` ((sample, kind, channel, data1, data2), the take's whole list,
        appended to since the last call) to ``path`` through a temporary file and a
        rename, so ``path`` is always a complete file."""
        marks = tuple((m.sample, m.bpm) for m in tempi)
        if (
            start != self._start
            or marks[: len(self._tempi)] != self._tempi
            or any(m[0] <= self._last_sample for m in marks[len(self._tempi) :])
            or len(events) < self._done
            or not self._in_order(events)
        ):
            self._reset(start, marks)
            events = sorted(events, key=lambda e: e[0])  # stable: same-time order kept
            self.reencoded += 1
        self._tempi = marks
        for i in range(self._done, len(events)):
            sample, kind, ch, d1, d2 = events[i]
            self._last_sample = sample
            data = _event_bytes(kind, ch, d1, d2)
            if data is None:
                continue
            tick = samples_to_ticks(max(sample, start), start, self.sample_rate, tempi)
            track = self._tracks.get(ch)
            if track is None:
                name = self.track_names.get(ch, f"channel {ch + 1}")
                track = self._tracks[ch] = bytearray(_meta_bytes(0, mido.MetaMessage("track_name", name=name)))
                self._prev_tick[ch] = 0
            track += bytes(encode_variable_int(max(0, tick - self._prev_tick[ch]))) + data
            self._prev_tick[ch] = max(self._prev_tick[ch], tick)
        self._done = len(events)
        self._save(Path(path), start, tempi)

    def _in_order(self, events: list) -> bool:
        """The events not encoded yet come at or after the last encoded one, in order."""
        last = self._last_sample
        for i in range(self._done, len(events)):
            t = events[i][0]
            if t < last:
                return False
            last = t
        return True

    def _save(self, path: Path, start: int, tempi: list[TempoMark]) -> None:
        num, den = meter_parts(self.meter)
        conductor = bytearray(_meta_bytes(0, mido.MetaMessage("time_signature", numerator=num, denominator=den)))
        last = 0
        for mark in tempi or [TempoMark(start, 120.0)]:
            t = samples_to_ticks(max(mark.sample, start), start, self.sample_rate, tempi)
            conductor += _meta_bytes(max(0, t - last), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(mark.bpm)))
            last = max(last, t)
        end = _meta_bytes(0, mido.MetaMessage("end_of_track"))
        chunks = [bytes(conductor)] + [bytes(self._tracks[ch]) for ch in sorted(self._tracks)]
        buf = io.BytesIO()
        write_chunk(buf, b"MThd", struct.pack(">hhh", 1, len(chunks), TICKS_PER_BEAT))
        for c in chunks:
            write_chunk(buf, b"MTrk", c + end)
        # no fsync: a growing take is rewritten again within seconds
        write_atomic(path, buf.getvalue(), fsync=False)


def write_take_midi(
    path: str | os.PathLike,
    events: list[tuple[int, int, int, int, int]],
    start: int,
    sample_rate: int,
    tempi: list[TempoMark],
    meter: str = "4/4",
    track_names: dict[int, str] | None = None,
) -> None:
    """Write a type-1 MIDI file at once (``MidiTakeWriter`` for a take that grows)."""
    MidiTakeWriter(sample_rate, meter, track_names).write(path, list(events), start, tempi)

"""Accompaniment tokens -> timed note events for each part.

Per committed step the generator passes the frame ``(chord, bass, tenor, alto)`` and the
step's start time; the renderer turns it into note on/off events on the parts' channels
(``engine.parts``):

- bass: the bass stream (note-on strikes, HOLD sustains, REST releases);
- keys: the tenor and alto streams, two voices on one channel (a pitch both voices hold
  is released only when both let go);
- pad: a close voicing (pitch classes placed in 55-66) of the chord stream, struck when
  the chord on a beat differs from the last one, sustained while it lasts;
- drums: ``engine.groove.Groove``; each hit is released at the next step.

Every event of step k is at exactly ``clock.step_time(k)``: events leave in
non-decreasing time order, as the ``EventQueue`` needs. Velocities follow the metric
position (downbeat > beat > 8th > 16th) and the density control. Muting a part releases
what it holds at the next step; solo mutes every part that is not soloed.

Thread: the generator worker only (offline: the render loop).
"""
from __future__ import annotations

from typing import Iterable, Protocol

import numpy as np

from engine import parts as P
from engine.clock import beat_steps
from engine.events import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM
from engine.groove import SIDE_STICK, Groove
from models.tokens import CHORD_BASE, CHORD_NONE, REST, chord_pitch_classes, is_note_on, token_pitch

PAD_LOW = 55  # pad voicing: each chord tone in [55, 67)

# SoundFont 2.01 NRPN (CC99=120, CC98=generator 38 "release time", data entry CC6/CC38,
# 8192 = no change, 2 timecents a unit): -600 units halves the pad's release. FluidR3's
# warm pad is 4 voices a note and rings ~2.4 s after release, mostly below -80 dB; the
# tails of re-voiced chords were most of the synth's work (measured: ~60 of ~95 active
# voices), halving them keeps the sound and the render speed. Other GM synths ignore it.
_RELEASE = 8192 - 600
PAD_RELEASE_NRPN = ((99, 120), (98, 38), (6, _RELEASE >> 7), (38, _RELEASE & 127))


class EventSink(Protocol):
    def push(self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> bool: ...


class EventLog:
    """A sink that keeps every event as a tuple (for MIDI export and tests)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int, int, int]] = []

    def push(self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> bool:
        self.events.append((int(time), int(kind), int(channel), int(data1), int(data2)))
        return True


def pad_voicing(chord: int) -> list[int]:
    """MIDI pitches of the pad for a chord token (empty for no/unknown chord)."""
    return sorted(PAD_LOW + (pc - PAD_LOW) % 12 for pc in chord_pitch_classes(chord))


class PartRenderer:
    def __init__(self, sinks: Iterable[EventSink], style: str, meter: str, seed: int = 0,
                 density: float = 0.5, programs: dict[str, int] | None = None) -> None:
        self.sinks = list(sinks)
        self.meter = meter
        self.beat_steps = beat_steps(meter)
        self.groove = Groove(style, meter, seed)
        self.density = density
        self.programs = {p.name: p.program for p in P.ALL_PARTS}
        if programs:
            self.programs.update(programs)
        self.muted: set[str] = set()
        self.soloed: set[str] = set()
        # channel -> {pitch: number of voices holding it}
        self._sounding: dict[int, dict[int, int]] = {p.channel: {} for p in P.BAND_PARTS}
        self._bass: int | None = None
        self._keys: list[int | None] = [None, None]     # tenor, alto pitches
        self._chord: int = CHORD_NONE
        self._pad_notes: list[int] = []
        self._drum_offs: list[int] = []
        self._onset_rate = 0.25   # EMA of onsets per note stream per step (model density)
        self.intensity = 0.5

    # -- output helpers -------------------------------------------------------
    def _emit(self, time: int, kind: int, ch: int, d1: int = 0, d2: int = 0) -> None:
        for s in self.sinks:
            s.push(time, kind, ch, d1, d2)

    def _on(self, t: int, ch: int, pitch: int, vel: int) -> None:
        held = self._sounding[ch]
        if held.get(pitch, 0) > 0:
            self._emit(t, NOTE_OFF, ch, pitch)   # re-strike: release first
        held[pitch] = held.get(pitch, 0) + 1
        self._emit(t, NOTE_ON, ch, pitch, max(1, min(127, vel)))

    def _off(self, t: int, ch: int, pitch: int) -> None:
        held = self._sounding[ch]
        n = held.get(pitch, 0)
        if n <= 0:
            return
        if n == 1:
            del held[pitch]
            self._emit(t, NOTE_OFF, ch, pitch)
        else:
            held[pitch] = n - 1

    def _release_channel(self, t: int, ch: int) -> None:
        for pitch in sorted(self._sounding[ch]):
            self._emit(t, NOTE_OFF, ch, pitch)
        self._sounding[ch].clear()

    # -- public ---------------------------------------------------------------
    def start(self, time: int) -> None:
        """Program changes and channel volumes for every part at ``time``, and a shorter
        pad release (see PAD_RELEASE_NRPN)."""
        for p in P.ALL_PARTS:
            if p.channel != P.DRUMS.channel:
                self._emit(time, PROGRAM, p.channel, self.programs[p.name])
            self._emit(time, CONTROL, p.channel, 7, p.volume)
        for cc, value in PAD_RELEASE_NRPN:
            self._emit(time, CONTROL, P.PAD.channel, cc, value)

    def audible(self, name: str) -> bool:
        if name in self.muted:
            return False
        return not self.soloed or name in self.soloed

    def velocity(self, base: float, step_in_bar: int) -> int:
        if step_in_bar == 0:
            accent = 1.0
        elif step_in_bar % self.beat_steps == 0:
            accent = 0.88
        elif step_in_bar % 2 == 0:
            accent = 0.78
        else:
            accent = 0.7
        return int(round(base * accent * (0.85 + 0.3 * self.density)))

    def count_in(self, step: int, time: int) -> None:
        """A side-stick click on each beat of the count-in."""
        self._flush_drum_offs(time)
        pos = step % self.groove.bar_steps
        if pos % self.beat_steps == 0:
            self._emit(time, NOTE_ON, P.DRUMS.channel, SIDE_STICK, 110 if pos == 0 else 85)
            self._drum_offs.append(SIDE_STICK)

    def _flush_drum_offs(self, t: int) -> None:
        for key in self._drum_offs:
            self._emit(t, NOTE_OFF, P.DRUMS.channel, key)
        self._drum_offs.clear()

    def render_step(self, step: int, time: int, tokens: np.ndarray, step_in_bar: int, late: bool = False) -> None:
        """Events for one committed step at sample ``time``.

        tokens: (4,) ints (chord, bass, tenor, alto). ``late``: the step was produced
        after its time had passed; the band then holds what it plays (no new onsets, no
        releases), so a slow generator never produces events in the past.
        """
        t = int(time)
        self._flush_drum_offs(t)
        # release parts that were muted since the last step
        for p in (P.BASS, P.KEYS, P.PAD):
            if not self.audible(p.name) and self._sounding[p.channel]:
                self._release_channel(t, p.channel)
        if late:
            return
        chord, bass, tenor, alto = (int(x) for x in tokens)
        onsets = sum(1 for x in (bass, tenor, alto) if is_note_on(x))
        self._onset_rate += 0.0625 * (onsets / 3.0 - self._onset_rate)
        model_density = min(1.0, self._onset_rate / 0.5)
        self.intensity = min(1.0, max(0.0, 0.5 * model_density + 0.5 * self.density))

        # bass
        if bass == REST or is_note_on(bass):
            if self._bass is not None:
                self._off(t, P.BASS.channel, self._bass)
                self._bass = None
            if is_note_on(bass) and self.audible("bass"):
                self._bass = token_pitch(bass)
                self._on(t, P.BASS.channel, self._bass, self.velocity(100, step_in_bar))
        # keys: tenor and alto voices
        for i, tok in enumerate((tenor, alto)):
            if tok == REST or is_note_on(tok):
                if self._keys[i] is not None:
                    self._off(t, P.KEYS.channel, self._keys[i])
                    self._keys[i] = None
                if is_note_on(tok) and self.audible("keys"):
                    self._keys[i] = token_pitch(tok)
                    self._on(t, P.KEYS.channel, self._keys[i], self.velocity(84, step_in_bar))
        # pad: re-voice when the chord changes, on a beat (a pad that re-strikes on every
        # 16th is mush, and each re-voicing leaves long release tails for the synth to
        # render); an unknown chord label keeps the last one
        if step_in_bar % self.beat_steps != 0:
            changed = False
        elif chord >= CHORD_BASE or chord == CHORD_NONE:
            changed = chord != self._chord
            self._chord = chord
        else:
            changed = False
        if self.audible("pad"):
            if changed or (not self._pad_notes and self._chord >= CHORD_BASE):
                # common tones sustain (smoother, and fewer overlapping release tails)
                new = pad_voicing(self._chord)
                for n in self._pad_notes:
                    if n not in new:
                        self._off(t, P.PAD.channel, n)
                for n in new:
                    if n not in self._pad_notes:
                        self._on(t, P.PAD.channel, n, self.velocity(62, 0))
                self._pad_notes = new
        else:
            self._pad_notes = []
        # drums
        if self.audible("drums"):
            for key, vel in self.groove.hits(step, self.intensity):
                self._emit(t, NOTE_ON, P.DRUMS.channel, key, vel)
                self._drum_offs.append(key)

    def all_off(self, time: int) -> None:
        """Release everything (stop, reset). Thread: worker."""
        t = int(time)
        self._flush_drum_offs(t)
        for ch in self._sounding:
            self._release_channel(t, ch)
        self._bass = None
        self._keys = [None, None]
        self._pad_notes = []
        self._chord = CHORD_NONE

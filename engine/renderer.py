"""Accompaniment tokens -> timed note events for each part.

Per committed step the generator passes the frame ``(chord, bass, tenor, alto)`` and the
step's start time; the renderer turns it into note on/off events on the parts' channels
(``engine.parts``), in the current style (``engine.styles``):

- bass: the bass stream (note-on strikes, HOLD sustains, REST releases); a style with a
  bass rhythm re-strikes on its own rhythm instead, with the model's last bass note
  (``x``), the sounding chord's root, fifth or octave near it (``r 5 8``) or a walking
  line through the chord (``w``);
- keys: the tenor and alto streams, two voices on one channel (a pitch both voices hold
  is released only when both let go); a style with a comping rhythm strikes the model's
  last two voices on that rhythm;
- pad: a close voicing (pitch classes placed in 55-66) of the chord stream, struck when
  the chord on a beat differs from the last one, sustained while it lasts;
- drums: ``engine.groove.Groove``; each hit is released at the next step.

A style plays only its ``parts``. Feel (``engine.feel``): swing and humanise delay a
part's events of a step by less than a step (so steps stay in order); with neither,
every event of step k is at exactly ``clock.step_time(k)``. Events leave in
non-decreasing time order, as the ``EventQueue`` needs. Velocities follow the metric
position (downbeat > beat > 8th > 16th) and the density control. Muting a part releases
what it holds at the next step; solo mutes every part that is not soloed.

Thread: the generator worker only (offline: the render loop).
"""

from __future__ import annotations

from typing import Iterable, Protocol

import numpy as np

from engine import parts as P
from engine.clock import Clock, beat_steps
from engine.events import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM
from engine.feel import Feel, Humaniser, swing_fraction
from engine.groove import SIDE_STICK, Groove
from engine.styles import BAND_PART_NAMES, Style, get_style
from models.tokens import (
    CHORD_BASE,
    CHORD_NONE,
    QUALITY_INTERVALS,
    REST,
    chord_of_token,
    chord_pitch_classes,
    is_note_on,
    token_pitch,
)

PAD_LOW = 55  # pad voicing: each chord tone in [55, 67)
BASS_LOW, BASS_HIGH = 31, 50  # where a style's bass line places its roots (G1-D3)
WALK_TOP = 55  # a walking line's highest root (G3); from the top ones it walks down
WALK_LEAP = 9  # the widest step a walking line takes onto a chord's root (a major 6th)

# SoundFont 2.01 NRPN (CC99=120, CC98=generator 38 "release time", data entry CC6/CC38,
# 8192 = no change, 2 timecents a unit): -600 units halves the pad's release. The pad's
# tails, mostly below -80 dB, were most of the synth's work (docs/engine.md, "Parts");
# halving them keeps the sound and speeds the render. Other GM synths ignore it.
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
    def __init__(
        self,
        sinks: Iterable[EventSink],
        style: str | Style,
        meter: str,
        seed: int = 0,
        density: float = 0.5,
        programs: dict[str, int] | None = None,
        feel: Feel | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.meter = meter
        self.beat_steps = beat_steps(meter)
        self.seed = seed
        self.feel = feel or Feel()
        self._req_feel = self.feel  # set_feel's request, taken at the next step (Thread: any)
        self.clock = clock  # for swing/humanise (a step's length); the generator sets it
        self._user_programs = dict(programs or {})
        self.density = density
        self.muted: set[str] = set()
        self.soloed: set[str] = set()
        self.set_style(style, seed)
        self.humaniser = Humaniser(self.feel.humanise, seed)
        # channel -> {pitch: number of voices holding it}
        self._sounding: dict[int, dict[int, int]] = {p.channel: {} for p in P.BAND_PARTS}
        self._bass: int | None = None
        self._keys: list[int | None] = [None, None]  # tenor, alto pitches (model's rhythm)
        self._comp: list[int] = []  # what the comping rhythm holds
        self._model_bass: int | None = None  # the model's last bass / keys notes
        self._line_bass: int | None = None  # a style's bass line: its last root/walk note
        self._model_keys: list[int | None] = [None, None]
        self._harmony: int = CHORD_NONE  # the chord sounding now (any step)
        self._walk_i = 0
        self._walk_chord = CHORD_NONE
        self._walk_root = 40
        self._walk_by_tones = False  # the root was out of reach: the line walks up chord tones
        self._walk_rng = np.random.default_rng(seed + 31)
        self._chord: int = CHORD_NONE
        self._pad_notes: list[int] = []
        self._drum_offs: list[int] = []
        self._buffer: list[tuple[int, int, int, int, int]] | None = None
        self._onset_rate = 0.25  # EMA of onsets per note stream per step (model density)
        self.intensity = 0.5
        # (step, chord token) at each change of the chord stream, when a caller asks
        self.chord_log: list[tuple[int, int]] | None = None
        # the chord stream is forced (a chart, a locked form, the arranger; the generator
        # sets it per step): the pad follows it from the step it changes, not the next
        # beat, and held bass/keys notes outside a new chord are let go
        self.chord_forced = False

    def set_style(self, style: str | Style, seed: int | None = None, time: int | None = None) -> None:
        """Play ``style`` from the next step (its drummer, rhythms, programs and parts);
        ``time``: send its programs then (a change during play)."""
        self.style = get_style(style)
        self.groove = Groove(
            self.style, self.meter, self.seed if seed is None else seed, fills=self.feel.fills, time=self.feel.time
        )
        self.swing = self.style.swing if self.feel.swing is None else self.feel.swing
        self._bass_rhythm = self.style.bass_rhythm(self.meter)
        self._comp_rhythm = self.style.comp_rhythm(self.meter)
        self.programs = {p.name: p.program for p in P.ALL_PARTS}
        self.programs.update(self.style.programs)
        self.programs.update(self._user_programs)
        self._restyled = hasattr(self, "_sounding")
        if time is not None:
            for p in P.BAND_PARTS:
                if p.channel != P.DRUMS.channel:
                    self._emit(time, PROGRAM, p.channel, self.programs[p.name])

    def set_feel(self, feel: Feel) -> None:
        """Play ``feel`` (swing, fills, half/double time, humanise; None: the style's) from
        the next step. Thread: any (the renderer's thread applies it)."""
        self._req_feel = feel

    def _apply_feel(self, feel: Feel) -> None:
        self.feel = feel
        self.swing = self.style.swing if feel.swing is None else feel.swing
        self.groove.fills = feel.fills or self.style.fills
        self.groove.time = feel.time or self.style.time
        self.humaniser.amount = float(feel.humanise)

    # -- output helpers -------------------------------------------------------
    def _emit(self, time: int, kind: int, ch: int, d1: int = 0, d2: int = 0) -> None:
        if self._buffer is not None:
            self._buffer.append((time, kind, ch, d1, d2))
            return
        for s in self.sinks:
            s.push(time, kind, ch, d1, d2)

    def _on(self, t: int, ch: int, pitch: int, vel: int) -> None:
        held = self._sounding[ch]
        if held.get(pitch, 0) > 0:
            self._emit(t, NOTE_OFF, ch, pitch)  # re-strike: release first
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
        if name in self.muted or (name in BAND_PART_NAMES and name not in self.style.parts):
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
        # release parts that were muted since the last step, and what a previous style held
        for p in (P.BASS, P.KEYS, P.PAD):
            if (self._restyled or not self.audible(p.name)) and self._sounding[p.channel]:
                self._release_channel(t, p.channel)
                if p is P.BASS:
                    self._bass = None
                elif p is P.KEYS:
                    self._keys, self._comp = [None, None], []
                else:
                    self._pad_notes = []
        self._restyled = False
        if self._req_feel is not self.feel:
            self._apply_feel(self._req_feel)
        self.humaniser.next_step()  # every step, late or not: a seed plays the same
        if late:
            return
        chord, bass, tenor, alto = (int(x) for x in tokens)
        if self.chord_log is not None and (not self.chord_log or self.chord_log[-1][1] != chord):
            self.chord_log.append((step, chord))
        onsets = sum(1 for x in (bass, tenor, alto) if is_note_on(x))
        self._onset_rate += 0.0625 * (onsets / 3.0 - self._onset_rate)
        model_density = min(1.0, self._onset_rate / 0.5)
        self.intensity = min(1.0, max(0.0, 0.5 * model_density + 0.5 * self.density))
        if chord >= CHORD_BASE or chord == CHORD_NONE:
            if self.chord_forced and chord != self._harmony and chord >= CHORD_BASE:
                self._let_go_outside(t, chord_pitch_classes(chord))
            self._harmony = chord
        if is_note_on(bass):
            self._model_bass = token_pitch(bass)
        for i, tok in enumerate((tenor, alto)):
            if is_note_on(tok):
                self._model_keys[i] = token_pitch(tok)
        when = self._part_times(t, step_in_bar)
        self._buffer = []
        try:
            self._render_bass(when["bass"], bass, step_in_bar)
            self._render_keys(when["keys"], tenor, alto, step_in_bar)
            self._render_pad(when["pad"], chord, step_in_bar)
            if self.audible("drums"):
                dv = self.humaniser.velocity["drums"]
                for key, vel in self.groove.hits(step, self.intensity):
                    self._emit(when["drums"], NOTE_ON, P.DRUMS.channel, key, max(1, min(127, vel + dv)))
                    self._drum_offs.append(key)
        finally:
            events, self._buffer = self._buffer, None
        events.sort(key=lambda e: e[0])  # stable: a re-strike's off stays before its on
        for e in events:
            self._emit(*e)

    def _part_times(self, t: int, step_in_bar: int) -> dict[str, int]:
        """Each part's time for this step: swing and humanise delay it, by less than a step."""
        clock = self.clock
        if clock is None or (self.swing <= 0.0 and self.humaniser.amount <= 0.0):
            return {"bass": t, "keys": t, "pad": t, "drums": t}
        k = clock.step_at(t)
        length = clock.step_time(k + 1) - clock.step_time(k)
        base = swing_fraction(step_in_bar, self.meter, self.swing) * length
        sr = clock.sample_rate
        return {
            p: t + min(length - 1, int(round(base + self.humaniser.timing[p] * sr)))
            for p in ("bass", "keys", "pad", "drums")
        }

    def _vel(self, part: str, base: float, step_in_bar: int) -> int:
        return self.velocity(base, step_in_bar) + self.humaniser.velocity[part]

    def _near(self, pc: int, anchor: int, high: int = BASS_HIGH) -> int:
        """Pitch class ``pc`` placed within a tritone of ``anchor``, in the bass range."""
        p = anchor + (pc - anchor) % 12
        if p - anchor > 6:
            p -= 12
        while p < BASS_LOW:
            p += 12
        while p > high:
            p -= 12
        return p

    def _bass_pitch(self, ch: str) -> int | None:
        """The pitch a bass-rhythm character asks for, over the chord sounding now."""
        # near the line's own last note, so a walking or boom-chick line moves by steps,
        # not by the octaves the model's bass may jump
        anchor = self._line_bass or self._model_bass or 40
        rq = chord_of_token(self._harmony)
        if rq is None:
            return self._model_bass
        if ch == "x":  # the model's last bass note, or the root once the chord moved off it
            m = self._model_bass
            return m if m is None or m % 12 in chord_pitch_classes(self._harmony) else self._near(rq[0], anchor)
        root_pc, quality = rq
        root = self._near(root_pc, anchor)
        if ch == "r":
            return root
        if ch == "5":
            return root + 7 if root + 7 <= BASS_HIGH + 4 else root - 5
        if ch == "8":
            return root + 12 if root + 12 <= BASS_HIGH + 7 else root
        # "w": a walking line: root when the chord changes (or after four notes), then up
        # through the chord (3rd or 2nd, 5th, 6th or 7th) from a low root, or down (7th or
        # 6th, 5th, 3rd below) from a high one, so the line stays in the bass's range
        if self._harmony != self._walk_chord:
            self._walk_chord, self._walk_i = self._harmony, 0
        else:
            self._walk_i += 1
        i = self._walk_i % 4
        iv = QUALITY_INTERVALS[quality]
        r = self._walk_rng.random()
        if i == 0:
            self._walk_root = self._near(root_pc, anchor, high=WALK_TOP)
            # at the range's floor a root a step below wraps up by a 7th: a walking bassist
            # lands on the chord tone nearest instead and walks up the chord from there
            self._walk_by_tones = abs(self._walk_root - anchor) > WALK_LEAP
            if not self._walk_by_tones:
                return self._walk_root
            near = [self._near(pc, anchor, high=WALK_TOP) for pc in chord_pitch_classes(self._harmony)]
            return min(near, key=lambda p: abs(p - anchor))
        if self._walk_by_tones:
            return self._chord_tone_above(anchor)
        root = self._walk_root  # the line walks from the root it started on
        if root >= WALK_TOP - 8:  # down
            if i == 1:
                return root - (12 - iv[3] if len(iv) > 3 and r < 0.6 else 3)
            return root - 5 if i == 2 else root - (12 - iv[1])
        if i == 1:
            return root + (iv[1] if r < 0.7 else 2)
        if i == 2:
            return root + iv[2]
        return root + (iv[3] if len(iv) > 3 and r < 0.5 else (9 if r < 0.75 else 11))

    def _chord_tone_above(self, pitch: int) -> int:
        """The sounding chord's next tone above ``pitch`` (below it at the walk's top)."""
        tones = chord_pitch_classes(self._harmony)
        for d in range(1, 13):
            if (pitch + d) % 12 in tones and pitch + d <= WALK_TOP:
                return pitch + d
        return next(pitch - d for d in range(1, 13) if (pitch - d) % 12 in tones)

    def _pattern_step(self, rhythm: str | None, step_in_bar: int, t: int, ch: int, sounding: list[int]) -> str | None:
        """The style's pattern character for this step (None: no pattern, the part plays
        the model's notes). Any character but a hold ("-") first ends the notes
        ``sounding`` on channel ``ch``."""
        if rhythm is None:
            return None
        c = rhythm[step_in_bar % len(rhythm)]
        if c != "-":
            for n in sounding:
                self._off(t, ch, n)
        return c

    def _render_bass(self, t: int, bass: int, step_in_bar: int) -> None:
        ch = P.BASS.channel
        c = self._pattern_step(self._bass_rhythm, step_in_bar, t, ch, [] if self._bass is None else [self._bass])
        if c is not None:
            if c == "-":
                return
            self._bass = None
            pitch = None if c == "." else self._bass_pitch(c)
            if pitch is not None and self.audible("bass"):
                self._bass = pitch
                if c != "5" and c != "8":
                    self._line_bass = pitch
                self._on(t, ch, pitch, self._vel("bass", 100, step_in_bar))
            return
        if bass == REST or is_note_on(bass):
            if self._bass is not None:
                self._off(t, ch, self._bass)
                self._bass = None
            if is_note_on(bass) and self.audible("bass"):
                self._bass = token_pitch(bass)
                self._on(t, ch, self._bass, self._vel("bass", 100, step_in_bar))

    def _render_keys(self, t: int, tenor: int, alto: int, step_in_bar: int) -> None:
        ch = P.KEYS.channel
        c = self._pattern_step(self._comp_rhythm, step_in_bar, t, ch, self._comp)
        if c is not None:
            if c == "-":
                return
            self._comp = []
            if c in "xo" and self.audible("keys"):
                # the model's last voices, those still in the chord sounding now (a voice
                # chosen over the previous chord would clash after a change)
                tones = chord_pitch_classes(self._harmony)
                voices = sorted({p for p in self._model_keys if p is not None and (not tones or p % 12 in tones)})
                voices = voices or pad_voicing(self._harmony)
                for n in voices:
                    self._on(t, ch, n, self._vel("keys", 96 if c == "o" else 84, step_in_bar))
                self._comp = list(voices)
            return
        for i, tok in enumerate((tenor, alto)):
            if tok == REST or is_note_on(tok):
                held = self._keys[i]
                if held is not None:
                    self._off(t, ch, held)
                    self._keys[i] = None
                if is_note_on(tok) and self.audible("keys"):
                    pitch = self._keys[i] = token_pitch(tok)
                    self._on(t, ch, pitch, self._vel("keys", 84, step_in_bar))

    def _let_go_outside(self, t: int, tones: frozenset[int]) -> None:
        """Release the bass and keys notes held over a chord change that are not its tones."""
        if self._bass is not None and self._bass % 12 not in tones:
            self._off(t, P.BASS.channel, self._bass)
            self._bass = None
        for i, n in enumerate(self._keys):
            if n is not None and n % 12 not in tones:
                self._off(t, P.KEYS.channel, n)  # counted: a pitch both voices hold
                self._keys[i] = None
        keep = [n for n in self._comp if n % 12 in tones]
        for n in self._comp:
            if n not in keep:
                self._off(t, P.KEYS.channel, n)
        self._comp = keep

    def _render_pad(self, t: int, chord: int, step_in_bar: int) -> None:
        # pad: re-voice when the chord changes, on a beat (a pad that re-strikes on every
        # 16th is mush, and each re-voicing leaves long release tails for the synth to
        # render); an unknown chord label keeps the last one
        if step_in_bar % self.beat_steps != 0 and not self.chord_forced:
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
                        self._on(t, P.PAD.channel, n, self._vel("pad", 62, 0))
                self._pad_notes = new
        else:
            self._pad_notes = []

    def all_off(self, time: int) -> None:
        """Release everything (stop, reset). Thread: worker."""
        t = int(time)
        self._flush_drum_offs(t)
        for ch in self._sounding:
            self._release_channel(t, ch)
        self._bass = None
        self._keys = [None, None]
        self._comp = []
        self._pad_notes = []
        self._chord = CHORD_NONE

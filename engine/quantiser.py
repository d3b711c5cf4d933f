"""Melody events (pitch, on/off, time in samples) -> one melody token per 16th step.

Rounding rule: an event at sample ``t`` belongs to the grid step whose start time is
nearest to ``t``; an exact tie goes to the later step. A note that would round to zero
length lasts one step. The melody is monophonic: the latest onset wins, and releasing
the sounding note makes the melody rest (releasing an older, overridden key does
nothing).

Commitment: the generator *commits* melody step k when it hands token k to the model
(``token_for(k)``); a committed token never changes. An event whose step is already
committed is *late*: a late onset moves to the first uncommitted step (so the model still
hears the note, a little later than played) and ``late_onsets`` counts it; a late release
ends the note at the first uncommitted step and ``late_releases`` counts it. Nothing is
dropped silently.

Take-backs: the pitch tracker may take back a note it announced early (its note-off
at the note-on's own time, ``MelodyEvent.take_back``). While that note-on's step is
not yet committed the note is struck out, so the model never hears it (a plain release
at the same time would still sound for one step); once committed, the model has heard
it and the take-back ends it like a late release. ``taken_back`` counts the notes struck
out. Live, the generator commits each step ``lead_ms`` before it sounds, so
with the model's lookahead ``d`` a note played at step s (before step s + 1 is committed)
reaches the model at step ``s + d``; with a margin of whole steps instead it would be
``s + margin - d + 1`` at the earliest. The counters make lateness visible.

Thread: ``push`` may be called from any one producer thread (MIDI or pitch tracker) at
the same time as the worker calls ``token_for``: events travel through a deque, whose
append/popleft are atomic. Everything else is worker-only.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from engine.clock import Clock
from models.tokens import HOLD, REST, note_on


@dataclass(frozen=True)
class MelodyEvent:
    """A melody note-on/off from any source (keys, MIDI, the pitch tracker)."""

    time: int  # sample on the producer's clock (the audio clock live)
    pitch: int  # MIDI pitch 0-127
    on: bool  # True: note on, False: note off
    velocity: int = 100
    take_back: bool = False  # a note-off that withdraws its note-on (same time, same pitch)


class Quantiser:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._inbox: collections.deque[MelodyEvent] = collections.deque()
        # step -> ("on", pitch) / ("off", pitch) decisions not yet consumed, ordered per step
        self._pending: dict[int, list[tuple[str, int]]] = {}
        self._committed = clock.first_step - 1  # last committed step
        self._sounding: int | None = None  # pitch held at the last committed step
        self.late_onsets = 0
        self.late_releases = 0
        self.onsets = 0
        self.taken_back = 0

    @property
    def committed_step(self) -> int:
        return self._committed

    def push(self, event: MelodyEvent) -> None:
        """Queue one melody event. Thread: the one producer (any thread)."""
        if not 0 <= event.pitch < 128:
            raise ValueError(f"MIDI pitch out of range: {event.pitch}")
        self._inbox.append(event)

    def note(self, time: int, pitch: int, on: bool, take_back: bool = False) -> None:
        self.push(MelodyEvent(int(time), int(pitch), bool(on), take_back=bool(take_back) and not on))

    def nearest_step(self, time: int) -> int:
        """Grid step nearest to ``time`` (ties to the later step)."""
        k = self.clock.step_at(time)
        t0, t1 = self.clock.step_time(k), self.clock.step_time(k + 1)
        return k + 1 if (time - t0) >= (t1 - time) else k

    def _drain(self) -> None:
        while self._inbox:
            ev = self._inbox.popleft()
            step = self.nearest_step(ev.time)
            if ev.take_back and not ev.on and step > self._committed and self._strike(step, ev.pitch):
                continue
            if step <= self._committed:
                step = self._committed + 1
                if ev.on:
                    self.late_onsets += 1
                else:
                    self.late_releases += 1
            self._pending.setdefault(step, []).append(("on" if ev.on else "off", ev.pitch))

    def _strike(self, step: int, pitch: int) -> bool:
        """Strike out the latest pending note-on of ``pitch`` in ``step`` (a take-back
        before the model heard it); False when there is none."""
        acts = self._pending.get(step, [])
        for i in range(len(acts) - 1, -1, -1):
            if acts[i] == ("on", pitch):
                del acts[i]
                self.taken_back += 1
                return True
        return False

    def token_for(self, step: int) -> int:
        """Commit and return the melody token of ``step`` (REST / HOLD / note_on).

        Steps must be asked for in order, each once. Thread: worker.
        """
        if step != self._committed + 1:
            raise ValueError(f"melody steps must be committed in order: expected {self._committed + 1}, got {step}")
        self._drain()
        actions = self._pending.pop(step, ())
        onset: int | None = None
        for kind, pitch in actions:
            if kind == "on":
                onset = pitch
            elif onset is not None and pitch == onset:
                # released within the same step it began: it still sounds for one step,
                # so defer the release to the next step
                self._pending.setdefault(step + 1, []).insert(0, ("off", pitch))
            elif onset is None and pitch == self._sounding:
                self._sounding = None
        self._committed = step
        if onset is not None:
            self._sounding = onset
            self.onsets += 1
            return note_on(onset)
        return HOLD if self._sounding is not None else REST

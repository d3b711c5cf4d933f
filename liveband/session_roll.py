"""The piano roll's notes and the chord shown, in steps of the band's clock.

``Roll.push`` has the EventSink signature so the PartRenderer feeds it directly (the
generator thread); the session feeds the player's notes. A short lock protects the lists
(never taken by the audio thread)."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Iterable

from engine import parts as P
from engine.clock import Clock
from engine.events import ALL_OFF, IMMEDIATE, NOTE_OFF, NOTE_ON
from engine.keyfind import parse_key
from engine.renderer import pad_voicing
from models.tokens import HOLD, chord_name, is_note_on, token_pitch

if TYPE_CHECKING:
    from engine.band_plan import Plan

# part, pitch, start step, end step, planned (committed, not heard yet), tentative (the
# band's plan beyond what it committed: shown, never sounded)
RollNote = tuple[str, int, float, float, bool, bool]


class Roll:
    CHANNEL_PART = {p.channel: p.name for p in P.ALL_PARTS}

    def __init__(self, maxlen: int = 4096) -> None:
        self._lock = threading.Lock()
        self._notes: collections.deque = collections.deque(maxlen=maxlen)  # [part, pitch, start, end]
        self._open: dict[tuple[int, int], list] = {}
        self.clock: Clock | None = None

    def reset(self, clock: Clock | None) -> None:
        with self._lock:
            self._notes.clear()
            self._open.clear()
            self.clock = clock

    def push(self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> bool:
        clock = self.clock
        if clock is None or kind not in (NOTE_ON, NOTE_OFF, ALL_OFF):
            return True
        part = self.CHANNEL_PART.get(channel)
        if part is None:
            return True
        step = clock.sample_to_steps(int(time)) if time != IMMEDIATE else None
        if step is None:
            return True
        with self._lock:
            if kind == ALL_OFF:
                for key in [k for k in self._open if k[0] == channel]:
                    self._open.pop(key)[3] = step
                return True
            key = (channel, data1)
            note = self._open.pop(key, None)
            if note is not None:
                note[3] = step
            if kind == NOTE_ON and data2 > 0:
                note = [part, int(data1), step, None]
                self._notes.append(note)
                self._open[key] = note
        return True

    def take_back(self, channel: int, pitch: int) -> None:
        """Forget the open note of ``channel``/``pitch`` as if it never sounded (a hummed
        note the pitch tracker replaced or withdrew where it began)."""
        with self._lock:
            note = self._open.pop((channel, pitch), None)
            if note is not None and note in self._notes:
                self._notes.remove(note)

    def notes_since(self, since_step: float, now_step: float) -> list[RollNote]:
        """Notes that end at or after ``since_step`` (a sounding one ends ``now_step``);
        planned: it starts after ``now_step`` (committed by the band, not heard yet)."""
        with self._lock:
            out = []
            for part, pitch, start, end in self._notes:
                e = end if end is not None else max(now_step, start)
                if e >= since_step:
                    out.append((part, pitch, start, e, start > now_step, False))
            return out


def plan_notes(plan: Plan | None, from_step: int) -> list[RollNote]:
    """The generator's tentative plan as roll notes (tentative=True) from ``from_step``
    (the first step not committed: a plan is kept a step or two): the model's bass and
    its two keys voices as it streams them (a voice sounding before the plan goes on from
    the plan's first step while it holds), and the pad's voicing of its chords."""
    if plan is None:
        return []
    first = plan.first_step
    end = float(first + len(plan.frames))
    out: list[RollNote] = []
    for v, part in enumerate(("bass", "keys", "keys")):
        if part not in plan.parts:
            continue
        pitch, start = plan.held[v], float(first)
        for i, tok in enumerate(int(x) for x in plan.frames[:, 1 + v]):
            if tok == HOLD:
                continue
            if pitch is not None and first + i > start:  # an onset or a rest ends it
                out.append((part, pitch, start, float(first + i), True, True))
            pitch, start = (token_pitch(tok), float(first + i)) if is_note_on(tok) else (None, start)
        if pitch is not None:
            out.append((part, pitch, start, end, True, True))
    if "pad" in plan.parts:
        chords = [int(c) for c in plan.frames[:, 0]]
        i = 0
        while i < len(chords):
            j = i
            while j < len(chords) and chords[j] == chords[i]:
                j += 1
            out.extend(("pad", p, float(first + i), float(first + j), True, True) for p in pad_voicing(chords[i]))
            i = j
    return [(n[0], n[1], max(n[2], float(from_step)), n[3], True, True) for n in out if n[3] > from_step]


def chord_at(frames: Iterable, step: float, key_text: str) -> str:
    """The name of the chord the band plays at ``step``: ``frames`` are the generator's
    recent (step, chord id, ...) in step order; spelled in ``key_text`` when it parses."""
    try:
        key = parse_key(key_text) if key_text else None
    except ValueError:
        key = None
    name = ""
    for frame in frames:
        if frame[0] <= step:
            name = chord_name(int(frame[1]), key)
        else:
            break
    return name

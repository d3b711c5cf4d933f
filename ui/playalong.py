"""Timed notes to the session, placed by the session's own playhead: "play along with a
file" and the hidden --autoplay. The notes go in as the player's notes (Session.key_event),
so the band follows them exactly as it follows a person.

The 5 ms timer only *looks at* the session clock (Session.snapshot().step, Thread: any);
each note is due at a step of that clock, never at a timer count.
"""

from __future__ import annotations

import math
from typing import Callable

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from liveband.playalong import Note


class NotePlayer(QObject):
    """Plays ``notes`` through ``send(pitch, down)`` from the first bar line after the band
    starts (after any count-in). ``loop_steps``: repeat every so many steps (None: once,
    then ``finished``). ``gap``: steps of silence before each note's end, so repeated
    pitches re-strike. Thread: UI."""

    finished = pyqtSignal()

    def __init__(
        self,
        session,
        notes: list[Note],
        send: Callable[[int, bool], None],
        loop_steps: float | None = None,
        gap: float = 0.3,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.notes = sorted(notes)
        self.send = send
        self.loop_steps = loop_steps
        self.gap = gap
        self.origin: float | None = None
        self.presses = 0
        self._next = 0  # index of the next note to start
        self._held: dict[int, tuple[float, int]] = {}  # note index -> (end position, pitch)
        self._lap = 0
        self.done = False
        self.timer = QTimer(self)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    @property
    def active(self) -> bool:
        return self.timer.isActive()

    def start(self) -> None:
        self.timer.start()

    def _tick(self) -> None:
        if self.done:
            return
        try:
            snap = self.session.snapshot()
        except Exception:
            return
        if not snap.playing:
            if self.origin is not None:  # the band stopped under us: we are done
                self._finish()
            return
        if snap.counting_in:
            return
        if self.origin is None:
            if snap.step <= 0.0:
                # The playhead rests at 0 until the first beat is really heard (the
                # session's start lead-in); decide where to begin once it moves.
                return
            self.origin = float(math.ceil(snap.step / 16 - 0.03) * 16)
        pos = snap.step - self.origin
        if pos < 0:
            return
        if self.loop_steps:
            lap, pos = divmod(pos, self.loop_steps)
            if lap != self._lap:  # wrapped round: release, start over
                self._release_all()
                self._lap, self._next = lap, 0
        for i, (end, pitch) in list(self._held.items()):
            if pos >= end:
                del self._held[i]
                self.send(pitch, False)
        while self._next < len(self.notes) and self.notes[self._next][0] <= pos:
            start, length, pitch = self.notes[self._next]
            end = start + max(0.25, length - self.gap)
            if pos < end:  # still due (a late tick skips nothing audible)
                self._held[self._next] = (end, pitch)
                self.send(pitch, True)
                self.presses += 1
            self._next += 1
        if not self.loop_steps and self._next >= len(self.notes) and not self._held:
            self._finish()

    def _finish(self) -> None:
        self.stop()
        self.done = True
        self.finished.emit()

    def _release_all(self) -> None:
        for _, pitch in self._held.values():
            self.send(pitch, False)
        self._held.clear()

    def stop(self) -> None:
        self.timer.stop()
        self._release_all()

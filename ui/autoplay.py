"""Hidden ``--autoplay keyboard``: plays a tune on the computer keyboard from inside the
app, as real key events through the window's own key handling, so tests and the README
screenshot exercise exactly what a player's fingers do.

Thread: UI only (driven by a QTimer, timed by the session's playhead, not the timer).
"""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QApplication

from ui.keyboard import OFFSET_KEYS

# (start step, length in steps, semitones above C) over four 4/4 bars; loops.
TUNE: tuple[tuple[int, int, int], ...] = (
    (0, 4, 0), (4, 2, 4), (6, 2, 7), (8, 6, 9), (14, 2, 7),
    (16, 4, 5), (20, 4, 4), (24, 6, 2), (30, 2, 4),
    (32, 3, 7), (36, 2, 9), (38, 2, 12), (40, 6, 11), (46, 2, 9),
    (48, 4, 7), (52, 4, 5), (56, 8, 4),
)
TUNE_STEPS = 64
MODES = ("keyboard",)


class KeyboardAutoplay(QObject):
    """Presses play, then plays TUNE with synthetic key presses/releases."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.origin: float | None = None   # session step where the tune starts
        self._down: dict[int, int] = {}    # note index -> key held
        self.presses = 0
        self.timer = QTimer(self)
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.window.set_input_mode("keyboard")
        if not self.window.last_snapshot or not self.window.last_snapshot.playing:
            self.window.play()
        self.timer.start()

    def _send(self, key: int, down: bool) -> None:
        ev = QKeyEvent(QEvent.Type.KeyPress if down else QEvent.Type.KeyRelease, key, Qt.KeyboardModifier.NoModifier)
        target = QApplication.focusWidget() or self.window
        QApplication.sendEvent(target, ev)

    def _tick(self) -> None:
        snap = self.window.last_snapshot
        if snap is None or not snap.playing or snap.counting_in:
            return
        if self.origin is None:
            # Start on the next bar line so the tune sits on the grid.
            self.origin = float(int(snap.step) // 16 * 16 + 16) if snap.step % 16 > 0.5 else float(int(snap.step))
        pos = (snap.step - self.origin)
        if pos < 0:
            return
        t = pos % TUNE_STEPS
        for i, (start, length, offset) in enumerate(TUNE):
            key = OFFSET_KEYS[offset]
            sounding = start <= t < start + length - 0.3
            if sounding and i not in self._down:
                self._down[i] = key
                self._send(key, True)
                self.presses += 1
            elif not sounding and i in self._down:
                self._send(self._down.pop(i), False)

    def stop(self) -> None:
        self.timer.stop()
        for key in self._down.values():
            self._send(key, False)
        self._down.clear()

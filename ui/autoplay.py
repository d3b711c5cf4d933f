"""Hidden ``--autoplay keyboard``: plays a tune on the computer keyboard from inside the
app, as real key events through the window's own key handling, so tests and the README
screenshot exercise exactly what a player's fingers do. Timed by the session's playhead
(ui/playalong.NotePlayer). Thread: UI only.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QApplication

from ui.keyboard import OFFSET_KEYS
from ui.playalong import NotePlayer

# (start step, length in steps, semitones above the keyboard's C) over four 4/4 bars; loops.
TUNE: tuple[tuple[int, int, int], ...] = (
    (0, 4, 0),
    (4, 2, 4),
    (6, 2, 7),
    (8, 6, 9),
    (14, 2, 7),
    (16, 4, 5),
    (20, 4, 4),
    (24, 6, 2),
    (30, 2, 4),
    (32, 3, 7),
    (36, 2, 9),
    (38, 2, 12),
    (40, 6, 11),
    (46, 2, 9),
    (48, 4, 7),
    (52, 4, 5),
    (56, 8, 4),
)
TUNE_STEPS = 64
MODES = ("keyboard",)


class KeyboardAutoplay(QObject):
    """Switches to computer-keyboard input, presses play, then plays TUNE as key presses."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        base = window.keyboard.base_pitch
        notes = [(float(s), float(n), base + off) for s, n, off in TUNE]
        self.player = NotePlayer(window.session, notes, self._send, loop_steps=TUNE_STEPS, parent=self)
        self._base = base

    @property
    def presses(self) -> int:
        return self.player.presses

    def start(self) -> None:
        self.window.set_input_mode("keyboard")
        if not self.window.last_snapshot or not self.window.last_snapshot.playing:
            self.window.play()
        self.player.start()

    def _send(self, pitch: int, down: bool) -> None:
        key = OFFSET_KEYS[pitch - self._base]
        ev = QKeyEvent(QEvent.Type.KeyPress if down else QEvent.Type.KeyRelease, key, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(QApplication.focusWidget() or self.window, ev)

    def stop(self) -> None:
        self.player.stop()

"""An on-screen piano: click (or drag across) keys to play; keys the player holds on the
computer keyboard light up too. Thread: UI only."""

from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from liveband.gm import note_name
from ui import theme

_WHITE_STEPS = (0, 2, 4, 5, 7, 9, 11)


class OnScreenKeys(QWidget):
    """``octaves`` octaves from ``base`` (a C) plus the top C.

    Signals: note(pitch, down) for mouse playing.
    """

    note = pyqtSignal(int, bool)

    def __init__(self, base: int = 60, octaves: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base = base
        self.octaves = octaves
        self.lit: set[int] = set()
        self._mouse_pitch: int | None = None
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumHeight(64)
        self.setMaximumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("click to play; Z S X D C ... on the computer keyboard")

    # -- geometry --------------------------------------------------------------
    def _whites(self) -> list[int]:
        pitches = [self.base + 12 * o + s for o in range(self.octaves) for s in _WHITE_STEPS]
        return pitches + [self.base + 12 * self.octaves]

    def key_rects(self) -> dict[int, QRectF]:
        """pitch -> rectangle; black keys listed after white ones (they are on top)."""
        whites = self._whites()
        w = (self.width() - 1) / len(whites)
        h = self.height() - 1
        rects: dict[int, QRectF] = {}
        for i, p in enumerate(whites):
            rects[p] = QRectF(i * w, 0, w, h)
        for i, p in enumerate(whites[:-1]):
            if (p % 12) in (0, 2, 5, 7, 9):  # a black key follows C D F G A
                rects[p + 1] = QRectF((i + 1) * w - w * 0.32, 0, w * 0.64, h * 0.6)
        return rects

    def pitch_at(self, x: float, y: float) -> int | None:
        rects = self.key_rects()
        for p, r in rects.items():  # black keys first: they lie on top
            if (p % 12) in (1, 3, 6, 8, 10) and r.contains(x, y):
                return p
        for p, r in rects.items():
            if r.contains(x, y):
                return p
        return None

    # -- playing ---------------------------------------------------------------
    def set_lit(self, pitches) -> None:
        lit = set(pitches)
        if lit != self.lit:
            self.lit = lit
            self.update()

    def _mouse_to(self, pitch: int | None) -> None:
        if pitch == self._mouse_pitch:
            return
        if self._mouse_pitch is not None:
            self.note.emit(self._mouse_pitch, False)
        self._mouse_pitch = pitch
        if pitch is not None:
            self.note.emit(pitch, True)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        self._mouse_to(self.pitch_at(e.position().x(), e.position().y()))

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if e.buttons() & Qt.MouseButton.LeftButton:
            self._mouse_to(self.pitch_at(e.position().x(), e.position().y()))

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        self._mouse_to(None)

    # -- painting --------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        accent = QColor(theme.ACCENT)
        for pitch, r in self.key_rects().items():
            black = (pitch % 12) in (1, 3, 6, 8, 10)
            on = pitch in self.lit
            fill = accent if on else QColor("#2b2f3a" if black else "#d5d8df")
            if on and black:
                fill = accent.darker(130)
            p.setPen(QPen(QColor("#0c0e12"), 1))
            p.setBrush(fill)
            p.drawRoundedRect(r.adjusted(0.5, -3, -0.5, 0), 3, 3)
            if pitch % 12 == 0 and not on:
                p.setPen(QColor("#6a7080"))
                p.drawText(
                    r.adjusted(0, 0, 0, -3),
                    Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                    note_name(pitch),
                )
        p.end()

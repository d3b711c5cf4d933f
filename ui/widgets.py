"""Small custom controls: a level meter and a rotary knob that fit the dark theme.

Thread: UI only.
"""

from __future__ import annotations

import math
import time

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QLinearGradient, QPainter, QPen
from PyQt6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ui import theme


class LevelMeter(QWidget):
    """Input level in dBFS, -60..0, with a peak-hold tick that falls back after 1.5 s."""

    FLOOR_DB = -60.0

    def __init__(self, parent: QWidget | None = None, horizontal: bool = True) -> None:
        super().__init__(parent)
        self.horizontal = horizontal
        self.db = self.FLOOR_DB
        self.peak_db = self.FLOOR_DB
        self._peak_t = 0.0
        if horizontal:
            self.setFixedHeight(10)
            self.setMinimumWidth(90)
        else:
            self.setFixedWidth(10)
            self.setMinimumHeight(60)
        self.setToolTip("input level")

    def set_db(self, db: float) -> None:
        db = self.FLOOR_DB if db is None or not math.isfinite(db) else max(self.FLOOR_DB, min(0.0, db))
        # Fast attack, slower release, so speech-like input reads steadily.
        self.db = db if db > self.db else self.db + 0.35 * (db - self.db)
        now = time.monotonic()
        if db >= self.peak_db or now - self._peak_t > 1.5:
            self.peak_db, self._peak_t = db, now
        self.update()

    def fraction(self) -> float:
        return (self.db - self.FLOOR_DB) / -self.FLOOR_DB

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        r = QRectF(self.rect())
        p.fillRect(r, QColor(theme.PANEL_HI))
        grad = QLinearGradient(r.topLeft(), r.topRight() if self.horizontal else r.topLeft())
        if not self.horizontal:
            grad = QLinearGradient(r.bottomLeft(), r.topLeft())
        grad.setColorAt(0.0, QColor(theme.GOOD))
        grad.setColorAt(0.75, QColor(theme.WARN))
        grad.setColorAt(1.0, QColor(theme.BAD))
        f = self.fraction()
        pf = (self.peak_db - self.FLOOR_DB) / -self.FLOOR_DB
        if self.horizontal:
            p.fillRect(QRectF(r.left(), r.top(), r.width() * f, r.height()), grad)
            p.fillRect(QRectF(r.left() + r.width() * pf - 1, r.top(), 2, r.height()), QColor(theme.TEXT))
        else:
            h = r.height() * f
            p.fillRect(QRectF(r.left(), r.bottom() - h, r.width(), h), grad)
            p.fillRect(QRectF(r.left(), r.bottom() - r.height() * pf, r.width(), 2), QColor(theme.TEXT))
        p.end()


class _Dial(QWidget):
    """The painted knob itself: drag up/down or scroll to change; double-click resets."""

    valueChanged = pyqtSignal(float)

    def __init__(self, lo: float, hi: float, value: float, default: float, color: str) -> None:
        super().__init__()
        self.lo, self.hi, self.default = lo, hi, default
        self._value = value
        self.color = QColor(color)
        self._drag: tuple[float, float] | None = None
        self.setFixedSize(54, 54)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the instrument

    def value(self) -> float:
        return self._value

    def setValue(self, v: float) -> None:  # noqa: N802 (Qt naming)
        v = max(self.lo, min(self.hi, float(v)))
        if v != self._value:
            self._value = v
            self.update()
            self.valueChanged.emit(v)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        self._drag = (e.position().y(), self._value)

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self._drag:
            y0, v0 = self._drag
            self.setValue(v0 + (y0 - e.position().y()) / 150.0 * (self.hi - self.lo))

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        self._drag = None

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        self.setValue(self.default)

    def wheelEvent(self, e) -> None:  # noqa: N802
        self.setValue(self._value + math.copysign(0.02, e.angleDelta().y()) * (self.hi - self.lo))

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(6, 6, self.width() - 12, self.height() - 12)
        frac = (self._value - self.lo) / (self.hi - self.lo)
        # Qt angles: 1/16 degree, 0 at 3 o'clock, counter-clockwise. Sweep 270 degrees from 7:30.
        start = 225 * 16
        p.setPen(QPen(QColor(theme.LINE), 4, cap=Qt.PenCapStyle.RoundCap))
        p.drawArc(r, start, -270 * 16)
        p.setPen(QPen(self.color, 4, cap=Qt.PenCapStyle.RoundCap))
        p.drawArc(r, start, int(-270 * 16 * frac))
        inner = r.adjusted(7, 7, -7, -7)
        p.setPen(QPen(QColor("#0c0e12"), 1))
        p.setBrush(QColor(theme.PANEL_HI))
        p.drawEllipse(inner)
        ang = math.radians(225 - 270 * frac)
        c = inner.center()
        rad = inner.width() / 2 - 3
        p.setPen(QPen(QColor(theme.TEXT), 2.2, cap=Qt.PenCapStyle.RoundCap))
        p.drawLine(c, QPointF(c.x() + rad * math.cos(ang), c.y() - rad * math.sin(ang)))
        p.end()


class Knob(QWidget):
    """A labelled knob: caption above, painted dial, value text below.

    ``fmt`` turns the value into the text shown (e.g. percent).
    """

    valueChanged = pyqtSignal(float)

    def __init__(
        self,
        caption: str,
        lo: float,
        hi: float,
        value: float,
        default: float | None = None,
        fmt=lambda v: f"{v:.2f}",
        color: str = theme.ACCENT,
        tooltip: str = "",
    ) -> None:
        super().__init__()
        self.fmt = fmt
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(0)
        cap = QLabel(caption.upper())
        cap.setObjectName("caption")
        cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.dial = _Dial(lo, hi, value, value if default is None else default, color)
        self.text = QLabel(fmt(value))
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(cap)
        lay.addWidget(self.dial, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.text)
        self.dial.valueChanged.connect(self._changed)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        if tooltip:
            self.setToolTip(tooltip)

    def _changed(self, v: float) -> None:
        self.text.setText(self.fmt(v))
        self.valueChanged.emit(v)

    def value(self) -> float:
        return self.dial.value()

    def setValue(self, v: float) -> None:  # noqa: N802
        self.dial.setValue(v)

"""The live view: a scrolling piano roll drawn with QPainter from fixed-size arrays.

Time runs left to right in 16th steps; the playhead sits at a fixed x and the music
scrolls under it. Left of the playhead is what was heard; right of it, faintly drawn
and outlined, is what the band has planned (Session.roll(...) marks those planned=True).
The player's hummed pitch is a continuous amber line; the note it snapped to is the
amber melody note under it. Drums get their own lane at the bottom (kick/snare/cymbals)
because their GM "pitches" are instruments, not notes.

All state lives in preallocated numpy arrays that ``set_frame`` overwrites in place;
painting never allocates per note beyond QRectF temporaries. Thread: UI only.
"""
from __future__ import annotations

import math

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ui import theme
from ui.gm import note_name

PARTS = ("melody", "bass", "keys", "pad", "drums")
_PART_INDEX = {p: i for i, p in enumerate(PARTS)}
_BLACK = {1, 3, 6, 8, 10}
_KICKS = {35, 36}
_SNARES = {37, 38, 39, 40}


def bar_and_beat_steps(meter: str) -> tuple[int, int]:
    """(16th steps per bar, per beat) for "4/4", "3/4", "6/8" (compound: dotted quarter beat)."""
    num, den = (int(x) for x in meter.split("/"))
    bar = num * 16 // den
    beat = 6 if den == 8 and num % 3 == 0 else 16 // den
    return bar, beat


class PianoRoll(QWidget):
    NOTE_CAPACITY = 4096
    HUM_CAPACITY = 2048
    CHORD_CAPACITY = 64
    GUTTER = 38          # px, the keyboard at the left
    TOP = 24             # px, the chord strip
    DRUM_LANE = 42       # px, the drum lane at the bottom

    def __init__(self, parent: QWidget | None = None, behind_steps: int = 40, ahead_steps: int = 8) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(480, 260)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.behind_steps = behind_steps
        self.ahead_steps = ahead_steps
        self.step = 0.0
        self.meter = "4/4"
        self.playing = False
        self.counting_in = False
        # Notes in view (rewritten every frame).
        self._part = np.zeros(self.NOTE_CAPACITY, np.int8)
        self._pitch = np.zeros(self.NOTE_CAPACITY, np.int16)
        self._start = np.zeros(self.NOTE_CAPACITY, np.float64)
        self._end = np.zeros(self.NOTE_CAPACITY, np.float64)
        self._planned = np.zeros(self.NOTE_CAPACITY, bool)
        self._n = 0
        # Hummed pitch trace: ring of (step, midi pitch or NaN).
        self._hum = np.full((self.HUM_CAPACITY, 2), np.nan)
        self._hum_w = 0
        self.hum_pitch: float | None = None
        # Chord changes: ring of (step, name).
        self._chords: list[tuple[float, str]] = []
        # Visible pitch range, eased towards the notes in view.
        self._lo = 48.0
        self._hi = 84.0
        self._fonts = (QFont(self.font().family(), 8), QFont(self.font().family(), 9, QFont.Weight.Bold))

    # -- data ----------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything drawn (a new take)."""
        self._n = 0
        self._hum[:] = np.nan
        self._hum_w = 0
        self._chords.clear()
        self.hum_pitch = None

    @property
    def note_count(self) -> int:
        """How many notes the last frame held (for tests and the status line)."""
        return self._n

    def view_start(self) -> float:
        """First step visible at the left edge; pass it to Session.roll(since_step)."""
        return self.step - self.behind_steps

    def set_frame(self, step: float, notes, hum_pitch: float | None = None, chord: str = "",
                  meter: str | None = None, playing: bool = True, counting_in: bool = False) -> None:
        """Show the music around ``step``.

        notes: iterable of (part, pitch, start_step, end_step, planned) as Session.roll returns
        (end_step may be None/inf for a note still sounding). Extra notes beyond
        NOTE_CAPACITY are dropped (the oldest first come first; the view holds far fewer).
        """
        if step < self.step - 1.0:          # the clock went back: a new take
            self.reset()
        self.step = float(step)
        self.playing = playing
        self.counting_in = counting_in
        if meter:
            self.meter = meter
        n = 0
        for part, pitch, start, end, planned in notes:
            if n >= self.NOTE_CAPACITY:
                break
            if end is None or not math.isfinite(end) or end <= start:
                end = max(float(start) + 0.25, self.step)
            self._part[n] = _PART_INDEX.get(part, len(PARTS))
            self._pitch[n] = int(pitch)
            self._start[n] = start
            self._end[n] = end
            self._planned[n] = bool(planned)
            n += 1
        self._n = n
        # Hum trace: one point per frame, NaN breaks the line when nothing is hummed.
        self.hum_pitch = None if hum_pitch is None or not math.isfinite(hum_pitch) else float(hum_pitch)
        if playing:
            self._hum[self._hum_w % self.HUM_CAPACITY] = (self.step, np.nan if self.hum_pitch is None else self.hum_pitch)
            self._hum_w += 1
        if chord and (not self._chords or self._chords[-1][1] != chord) and playing:
            self._chords.append((self.step, chord))
            if len(self._chords) > self.CHORD_CAPACITY:
                del self._chords[0]
        self._ease_range()
        self.update()

    def _ease_range(self) -> None:
        n = self._n
        tonal = (self._part[:n] != _PART_INDEX["drums"])
        pitches = self._pitch[:n][tonal]
        if self.hum_pitch is not None:
            pitches = np.append(pitches, round(self.hum_pitch))
        if len(pitches):
            lo, hi = float(pitches.min()) - 3, float(pitches.max()) + 3
        else:
            lo, hi = 48.0, 84.0
        span = hi - lo
        if span < 30:                      # never zoom in so far that lanes look like bricks
            mid = (lo + hi) / 2
            lo, hi = mid - 15, mid + 15
        # Ease (so the view does not jump with every note) but always include every note.
        self._lo = min(lo, self._lo + 0.08 * (lo - self._lo))
        self._hi = max(hi, self._hi + 0.08 * (hi - self._hi))

    # -- geometry ------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        return QRectF(self.GUTTER, self.TOP, self.width() - self.GUTTER, self.height() - self.TOP - self.DRUM_LANE)

    def _px_per_step(self) -> float:
        return self._plot_rect().width() / (self.behind_steps + self.ahead_steps)

    def x_of(self, step: float) -> float:
        return self.GUTTER + (step - self.view_start()) * self._px_per_step()

    def playhead_x(self) -> float:
        return self.x_of(self.step)

    def _lane_h(self) -> float:
        return self._plot_rect().height() / max(1.0, self._hi - self._lo + 1)

    def y_of(self, pitch: float) -> float:
        """Top of the lane of ``pitch`` (fractional pitches land between lanes)."""
        r = self._plot_rect()
        return r.top() + (self._hi - pitch) * self._lane_h()

    def note_rect(self, part: str, pitch: int, start: float, end: float) -> QRectF:
        """Where a note is drawn (widget coordinates)."""
        x0, x1 = self.x_of(start), self.x_of(end)
        if part == "drums":
            lane = self._drum_row(pitch)
            h = (self.DRUM_LANE - 6) / 3
            y = self.height() - self.DRUM_LANE + 3 + lane * h
            return QRectF(x0, y + 1, max(3.0, min(x1 - x0, 6.0)), h - 2)
        lh = self._lane_h()
        return QRectF(x0, self.y_of(pitch) + 0.5, max(2.0, x1 - x0 - 1), max(2.0, lh - 1))

    @staticmethod
    def _drum_row(pitch: int) -> int:
        return 2 if pitch in _KICKS else 1 if pitch in _SNARES else 0

    # -- painting ------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        W, H = self.width(), self.height()
        p.fillRect(0, 0, W, H, QColor(theme.PANEL))
        plot = self._plot_rect()
        px = self._px_per_step()
        lh = self._lane_h()
        # Lanes: black-key rows a shade darker, C rows marked.
        lo_i, hi_i = int(math.floor(self._lo)), int(math.ceil(self._hi))
        p.setPen(Qt.PenStyle.NoPen)
        for pitch in range(lo_i, hi_i + 1):
            y = self.y_of(pitch)
            if y > plot.bottom() or y + lh < plot.top():
                continue
            if pitch % 12 in _BLACK:
                p.fillRect(QRectF(plot.left(), y, plot.width(), lh), QColor("#161920"))
            if pitch % 12 == 0:
                p.fillRect(QRectF(plot.left(), y + lh - 1, plot.width(), 1), QColor("#252a35"))
        # Planned zone right of the playhead.
        phx = self.playhead_x()
        p.fillRect(QRectF(phx, 0, W - phx, H), QColor(255, 181, 71, 10))
        # Grid: bars strong, beats faint.
        bar, beat = bar_and_beat_steps(self.meter)
        first = int(math.floor(self.view_start()))
        last = int(math.ceil(self.step + self.ahead_steps))
        for s in range(max(first, 0), last + 1):
            if s % beat:
                continue
            x = self.x_of(s)
            if s % bar == 0:
                p.setPen(QPen(QColor(theme.LINE), 1.2))
                p.drawLine(QPointF(x, self.TOP - 6), QPointF(x, H))
                p.setPen(QColor(theme.TEXT_DIM))
                p.setFont(self._fonts[0])
                p.drawText(QPointF(x + 3, H - self.DRUM_LANE - 3), str(s // bar + 1))
            else:
                p.setPen(QPen(QColor("#222632"), 1))
                p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        # Drum lane background.
        p.fillRect(QRectF(self.GUTTER, H - self.DRUM_LANE, W, self.DRUM_LANE), QColor("#15171d"))
        p.fillRect(QRectF(0, H - self.DRUM_LANE, W, 1), QColor(theme.LINE))
        self._paint_notes(p)
        self._paint_hum(p, px)
        self._paint_chords(p)
        self._paint_gutter(p, lo_i, hi_i, lh)
        # Playhead.
        p.setPen(QPen(QColor(theme.ACCENT), 2))
        p.drawLine(QPointF(phx, self.TOP - 4), QPointF(phx, H))
        p.setFont(self._fonts[0])
        p.setPen(QColor(theme.TEXT_DIM))
        p.drawText(QRectF(phx + 6, plot.top() + 2, 120, 14), Qt.AlignmentFlag.AlignLeft, "band's plan ▸")
        if not self.playing:
            p.setFont(QFont(self.font().family(), 13))
            p.setPen(QColor(theme.TEXT_DIM))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Press Space (or ▶) to play")
        elif self.counting_in:
            p.setFont(QFont(self.font().family(), 22, QFont.Weight.Bold))
            p.setPen(QColor(theme.ACCENT))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "count-in…")
        p.end()

    def _paint_notes(self, p: QPainter) -> None:
        colors = [QColor(theme.PART_COLORS.get(part, theme.TEXT_DIM)) for part in PARTS] + [QColor(theme.TEXT_DIM)]
        left, right = self.GUTTER, self.width()
        # Band first, melody on top.
        order = np.argsort(self._part[: self._n] == _PART_INDEX["melody"], kind="stable")
        for i in order:
            part = PARTS[self._part[i]] if self._part[i] < len(PARTS) else "?"
            r = self.note_rect(part, int(self._pitch[i]), float(self._start[i]), float(self._end[i]))
            if r.right() < left or r.left() > right:
                continue
            if r.left() < left:
                r.setLeft(left)
            c = QColor(colors[self._part[i]])
            if self._planned[i]:
                fill = QColor(c)
                fill.setAlpha(55)
                p.setBrush(fill)
                pen = QPen(c, 1, Qt.PenStyle.DashLine)
                p.setPen(pen)
            else:
                p.setBrush(c)
                edge = QColor(c).lighter(140) if part == "melody" else QColor(c).darker(160)
                p.setPen(QPen(edge, 1))
            p.drawRoundedRect(r, 2.5, 2.5)

    def _paint_hum(self, p: QPainter, px: float) -> None:
        n = min(self._hum_w, self.HUM_CAPACITY)
        if n == 0:
            return
        idx = (np.arange(self._hum_w - n, self._hum_w)) % self.HUM_CAPACITY
        pts = self._hum[idx]
        v0 = self.view_start()
        path = QPainterPath()
        pen_down = False
        lh = self._lane_h()
        for s, pitch in pts:
            if s < v0 or not math.isfinite(pitch):
                pen_down = False
                continue
            pt = QPointF(self.x_of(s), self.y_of(pitch) + lh / 2)
            if pen_down:
                path.lineTo(pt)
            else:
                path.moveTo(pt)
                pen_down = True
        glow = QColor(theme.ACCENT)
        glow.setAlpha(60)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(glow, 5, cap=Qt.PenCapStyle.RoundCap, join=Qt.PenJoinStyle.RoundJoin))
        p.drawPath(path)
        p.setPen(QPen(QColor("#fff1d6"), 1.6, cap=Qt.PenCapStyle.RoundCap, join=Qt.PenJoinStyle.RoundJoin))
        p.drawPath(path)
        if self.hum_pitch is not None:
            snapped = int(round(self.hum_pitch))
            x, y = self.playhead_x(), self.y_of(self.hum_pitch) + lh / 2
            p.setBrush(QColor(theme.ACCENT))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawEllipse(QPointF(x, y), 4.5, 4.5)
            cents = (self.hum_pitch - snapped) * 100
            p.setFont(self._fonts[1])
            p.setPen(QColor(theme.ACCENT))
            p.drawText(QPointF(x + 8, self.y_of(snapped) + lh / 2 + 4), f"{note_name(snapped)} {cents:+.0f}¢")

    def _paint_chords(self, p: QPainter) -> None:
        p.setFont(self._fonts[1])
        v0 = self.view_start()
        for i, (s, name) in enumerate(self._chords):
            nxt = self._chords[i + 1][0] if i + 1 < len(self._chords) else self.step
            if nxt < v0:
                continue
            x = max(self.x_of(s), self.GUTTER)
            p.setPen(QPen(QColor(theme.ACCENT).darker(130), 2))
            p.drawLine(QPointF(x, 4), QPointF(x, self.TOP - 4))
            p.setPen(QColor(theme.TEXT))
            p.drawText(QPointF(x + 5, self.TOP - 8), name)

    def _paint_gutter(self, p: QPainter, lo_i: int, hi_i: int, lh: float) -> None:
        plot = self._plot_rect()
        p.fillRect(QRectF(0, 0, self.GUTTER, self.height()), QColor("#0e1015"))
        p.setFont(self._fonts[0])
        for pitch in range(lo_i, hi_i + 1):
            y = self.y_of(pitch)
            if y > plot.bottom() - 1 or y + lh < plot.top():
                continue
            black = pitch % 12 in _BLACK
            r = QRectF(2 if not black else 2, y + 0.5, (self.GUTTER - 4) if not black else 22, max(1.0, lh - 1))
            p.fillRect(r, QColor("#2b2f3a") if black else QColor("#c9ccd4"))
            if pitch % 12 == 0 and lh >= 7:
                p.setPen(QColor("#20232b"))
                p.drawText(r.adjusted(0, -2, -2, 2), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                           note_name(pitch))
        H = self.height()
        p.setPen(QColor(theme.TEXT_DIM))
        for row, label in enumerate(("cym", "snr", "kick")):
            h = (self.DRUM_LANE - 6) / 3
            p.drawText(QRectF(2, H - self.DRUM_LANE + 3 + row * h, self.GUTTER - 4, h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)

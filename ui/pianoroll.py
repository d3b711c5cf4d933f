"""The live view: a scrolling piano roll drawn with QPainter from fixed-size arrays.

Time runs left to right in 16th steps; the playhead sits at a fixed x and the music
scrolls under it. Left of the playhead is what was heard; right of it what the band has
committed (Session.roll(...) marks those planned=True), solid with a dashed outline, and
beyond that a beat of its tentative plan (tentative=True), faded: it may still change
and is never sounded.
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
from PyQt6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QPixmap
from PyQt6.QtWidgets import QSizePolicy, QWidget

from liveband.config import bar_steps, beat_steps
from liveband.gm import note_name
from ui import theme

PARTS = ("melody", "bass", "keys", "pad", "drums")
_PART_INDEX = {p: i for i, p in enumerate(PARTS)}
_BLACK = {1, 3, 6, 8, 10}
_KICKS = {35, 36}
_SNARES = {37, 38, 39, 40}


class PianoRoll(QWidget):
    _bg: QPixmap  # the cached background (_background)
    NOTE_CAPACITY = 4096
    HUM_CAPACITY = 2048
    CHORD_CAPACITY = 64
    GUTTER = 38  # px, the keyboard at the left
    TOP = 24  # px, the chord strip
    DRUM_LANE = 42  # px, the drum lane at the bottom

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
        self._planned = np.zeros(self.NOTE_CAPACITY, np.int8)  # 0 heard, 1 committed, 2 tentative
        self._n = 0
        # Hummed pitch trace: ring of (step, midi pitch or NaN).
        self._hum = np.full((self.HUM_CAPACITY, 2), np.nan)
        self._hum_w = 0
        self.hum_pitch: float | None = None
        # Chord changes: ring of (step, name).
        self._chords: list[tuple[float, str]] = []
        # Visible pitch range, eased towards the notes in view.
        self._lo = 48
        self._hi = 84
        self._fonts = (QFont(self.font().family(), 8), QFont(self.font().family(), 9, QFont.Weight.Bold))

    # -- data ----------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything drawn (a new take)."""
        self._n = 0
        self._hum[:] = np.nan
        self._hum_w = 0
        self._chords.clear()
        self.hum_pitch = None

    def freeze(self) -> None:
        """Stopped: keep the last frame on screen under the "press play" hint."""
        self.playing = False
        self.counting_in = False
        self.update()

    @property
    def note_count(self) -> int:
        """How many notes the last frame held (for tests and the status line)."""
        return self._n

    def view_start(self) -> float:
        """First step visible at the left edge; pass it to Session.roll(since_step)."""
        return self.step - self.behind_steps

    def set_frame(
        self,
        step: float,
        notes,
        hum_pitch: float | None = None,
        chord: str = "",
        meter: str | None = None,
        playing: bool = True,
        counting_in: bool = False,
    ) -> None:
        """Show the music around ``step``.

        notes: iterable of (part, pitch, start_step, end_step, planned[, tentative]) as
        Session.roll returns (end_step may be None/inf for a note still sounding). Extra notes beyond
        NOTE_CAPACITY are dropped (the oldest first come first; the view holds far fewer).
        """
        if step < self.step - 1.0:  # the clock went back: a new take
            self.reset()
        self.step = float(step)
        self.playing = playing
        self.counting_in = counting_in
        if meter:
            self.meter = meter
        n = 0
        for note in notes:
            part, pitch, start, end, planned = note[:5]
            if n >= self.NOTE_CAPACITY:
                break
            if end is None or not math.isfinite(end) or end <= start:
                end = max(float(start) + 0.25, self.step)
            self._part[n] = _PART_INDEX.get(part, len(PARTS))
            self._pitch[n] = int(pitch)
            self._start[n] = start
            self._end[n] = end
            self._planned[n] = 2 if len(note) > 5 and note[5] else int(bool(planned))
            n += 1
        self._n = n
        # Hum trace: one point per frame, NaN breaks the line when nothing is hummed.
        self.hum_pitch = None if hum_pitch is None or not math.isfinite(hum_pitch) else float(hum_pitch)
        if playing:
            self._hum[self._hum_w % self.HUM_CAPACITY] = (
                self.step,
                np.nan if self.hum_pitch is None else self.hum_pitch,
            )
            self._hum_w += 1
        if chord and (not self._chords or self._chords[-1][1] != chord) and playing:
            self._chords.append((self.step, chord))
            if len(self._chords) > self.CHORD_CAPACITY:
                del self._chords[0]
        self._ease_range()
        self.update()

    def _ease_range(self) -> None:
        """Keep every tonal note in view; widen at once, narrow one semitone at a time.
        The range is whole semitones so the cached background stays valid between frames."""
        n = self._n
        tonal = self._part[:n] != _PART_INDEX["drums"]
        pitches = self._pitch[:n][tonal]
        if len(pitches):
            lo, hi = int(pitches.min()) - 3, int(pitches.max()) + 3
        else:
            lo, hi = 48, 84
        if self.hum_pitch is not None:
            lo, hi = min(lo, int(self.hum_pitch) - 3), max(hi, int(self.hum_pitch) + 4)
        if hi - lo < 30:  # never zoom in so far that lanes look like bricks
            mid = (lo + hi) // 2
            lo, hi = mid - 15, mid + 15
        self._shrink_wait = getattr(self, "_shrink_wait", 0) + 1
        if lo < self._lo or hi > self._hi:
            self._lo, self._hi = min(lo, int(self._lo)), max(hi, int(self._hi))
        elif self._shrink_wait >= 6:  # ~5 semitones per second at a 30 ms tick
            self._shrink_wait = 0
            if lo > self._lo:
                self._lo += 1
            if hi < self._hi:
                self._hi -= 1

    # -- geometry ------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        return QRectF(self.GUTTER, self.TOP, self.width() - self.GUTTER, self.height() - self.TOP - self.DRUM_LANE)

    def _px_per_step(self) -> float:
        return (self.width() - self.GUTTER) / (self.behind_steps + self.ahead_steps)

    def x_of(self, step: float) -> float:
        return self.GUTTER + (step - self.view_start()) * self._px_per_step()

    def playhead_x(self) -> float:
        return self.x_of(self.step)

    def _lane_h(self) -> float:
        return (self.height() - self.TOP - self.DRUM_LANE) / max(1.0, self._hi - self._lo + 1)

    def y_of(self, pitch: float) -> float:
        """Top of the lane of ``pitch`` (fractional pitches land between lanes)."""
        return self.TOP + (self._hi - pitch) * self._lane_h()

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
    def _background(self) -> QPixmap:
        """Lanes, keyboard gutter and drum-lane labels: redrawn only when the size or the
        pitch range changes (they do not scroll)."""
        key = (
            self.width(),
            self.height(),
            self._lo,
            self._hi,
            self.devicePixelRatioF(),
            self.behind_steps,
            self.ahead_steps,
        )
        if getattr(self, "_bg_key", None) == key:
            return self._bg
        dpr = self.devicePixelRatioF()
        pm = QPixmap(int(self.width() * dpr), int(self.height() * dpr))
        pm.setDevicePixelRatio(dpr)
        pm.fill(QColor(theme.PANEL))
        p = QPainter(pm)
        plot = self._plot_rect()
        lh = self._lane_h()
        lo_i, hi_i = int(self._lo), int(self._hi)
        for pitch in range(lo_i, hi_i + 1):
            y = self.y_of(pitch)
            if pitch % 12 in _BLACK:
                p.fillRect(QRectF(plot.left(), y, plot.width(), lh), QColor("#161920"))
            if pitch % 12 == 0:
                p.fillRect(QRectF(plot.left(), y + lh - 1, plot.width(), 1), QColor("#252a35"))
        H = self.height()
        p.fillRect(QRectF(self.GUTTER, H - self.DRUM_LANE, self.width(), self.DRUM_LANE), QColor("#15171d"))
        p.fillRect(QRectF(0, H - self.DRUM_LANE, self.width(), 1), QColor(theme.LINE))
        # The planned zone right of the playhead (the playhead never moves on screen).
        phx = self.GUTTER + self.behind_steps * self._px_per_step()
        p.fillRect(QRectF(phx, 0, self.width() - phx, H), QColor(255, 181, 71, 10))
        self._paint_gutter(p, lo_i, hi_i, lh)
        p.end()
        self._bg, self._bg_key = pm, key
        return pm

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        H = self.height()
        p.drawPixmap(0, 0, self._background())
        plot = self._plot_rect()
        px = self._px_per_step()
        v0 = self.view_start()
        phx = self.GUTTER + (self.step - v0) * px
        # Grid: bars strong (with their numbers), beats faint.
        bar, beat = bar_steps(self.meter), beat_steps(self.meter)  # the band's grid
        first = max(0, int(math.ceil(v0 / beat)) * beat)
        last = int(math.ceil(self.step + self.ahead_steps))
        p.setFont(self._fonts[0])
        bar_pen, beat_pen, dim = QPen(QColor(theme.LINE), 1.2), QPen(QColor("#222632"), 1), QColor(theme.TEXT_DIM)
        for s in range(first, last + 1, beat):
            x = self.GUTTER + (s - v0) * px
            if s % bar == 0:
                p.setPen(bar_pen)
                p.drawLine(QPointF(x, self.TOP - 6), QPointF(x, H))
                p.setPen(dim)
                p.drawText(QPointF(x + 3, H - self.DRUM_LANE - 3), str(s // bar + 1))
            else:
                p.setPen(beat_pen)
                p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        # Notes are axis-aligned: crisp and cheap without antialiasing; the hum curve needs it.
        self._paint_notes(p, v0, px)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._paint_hum(p, v0, px)
        self._paint_chords(p, v0, px)
        # Playhead.
        p.setPen(QPen(QColor(theme.ACCENT), 2))
        p.drawLine(QPointF(phx, self.TOP - 4), QPointF(phx, H))
        p.setFont(self._fonts[0])
        p.setPen(dim)
        p.drawText(QRectF(phx + 6, plot.top() + 2, 120, 14), Qt.AlignmentFlag.AlignLeft, "band's plan ▸")
        if not self.playing:
            if self._n:  # the last take, dimmed under the hint
                p.fillRect(plot, QColor(18, 20, 26, 150))
            p.setFont(QFont(self.font().family(), 13))
            p.setPen(QColor(theme.TEXT))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Press Space (or ▶) to play")
        elif self.counting_in:
            p.setFont(QFont(self.font().family(), 22, QFont.Weight.Bold))
            p.setPen(QColor(theme.ACCENT))
            beats_left = max(1, math.ceil(-self.step / beat_steps(self.meter)))
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, f"count-in  {beats_left}")
        p.end()

    def _styles(self):
        """Pens and brushes per (part index, 0 heard / 1 committed / 2 tentative), made once."""
        if getattr(self, "_style_cache", None) is None:
            cache = {}
            for i, part in enumerate(PARTS + ("?",)):
                c = QColor(theme.PART_COLORS.get(part, theme.TEXT_DIM))
                faint = QColor(c)
                faint.setAlpha(55)
                edge = c.lighter(140) if part == "melody" else c.darker(160)
                cache[(i, 0)] = (QPen(edge, 1), QBrush(c))
                cache[(i, 1)] = (QPen(c.lighter(150), 1, Qt.PenStyle.DashLine), QBrush(c))
                cache[(i, 2)] = (QPen(c, 1, Qt.PenStyle.DotLine), QBrush(faint))
            self._style_cache = cache
        return self._style_cache

    def _paint_notes(self, p: QPainter, v0: float, px: float) -> None:
        """All notes in view, geometry computed for the whole array at once; pens change
        only between groups (band parts first, the melody on top)."""
        n = self._n
        if n == 0:
            return
        part, pitch, planned = self._part[:n], self._pitch[:n], self._planned[:n]
        x0 = self.GUTTER + (self._start[:n] - v0) * px
        x1 = self.GUTTER + (self._end[:n] - v0) * px
        visible = (x1 >= self.GUTTER) & (x0 <= self.width())
        x0 = np.maximum(x0, self.GUTTER)
        lh = self._lane_h()
        drums = part == _PART_INDEX["drums"]
        y = np.where(drums, 0.0, self.TOP + (self._hi - pitch) * lh + 0.5)
        h = np.full(n, max(2.0, lh - 1))
        w = np.maximum(2.0, x1 - x0 - 1)
        if drums.any():
            dh = (self.DRUM_LANE - 6) / 3
            rows = np.where(np.isin(pitch, list(_KICKS)), 2, np.where(np.isin(pitch, list(_SNARES)), 1, 0))
            y = np.where(drums, self.height() - self.DRUM_LANE + 4 + rows * dh, y)
            h = np.where(drums, dh - 2, h)
            w = np.where(drums, np.clip(x1 - x0, 3.0, 6.0), w)
        melody = part == _PART_INDEX["melody"]
        order = np.lexsort((planned, part, melody))  # groups, melody last
        styles = self._styles()
        radius = 2.5 if lh >= 6 else 1.0
        current = None
        for i in order[visible[order]]:
            key = (int(part[i]), int(planned[i]))
            if key != current:
                pen, brush = styles[key]
                p.setPen(pen)
                p.setBrush(brush)
                current = key
            p.drawRoundedRect(QRectF(x0[i], y[i], w[i], h[i]), radius, radius)

    def _paint_hum(self, p: QPainter, v0: float, px: float) -> None:
        n = min(self._hum_w, self.HUM_CAPACITY)
        if n == 0:
            return
        idx = np.arange(self._hum_w - n, self._hum_w) % self.HUM_CAPACITY
        pts = self._hum[idx]
        pts = pts[pts[:, 0] >= v0]
        if len(pts) == 0:
            return
        lh = self._lane_h()
        xs = self.GUTTER + (pts[:, 0] - v0) * px
        ys = self.TOP + (self._hi - pts[:, 1]) * lh + lh / 2
        path = QPainterPath()
        pen_down = False
        for x, y, ok in zip(xs.tolist(), ys.tolist(), np.isfinite(pts[:, 1]).tolist()):
            if not ok:
                pen_down = False
            elif pen_down:
                path.lineTo(x, y)
            else:
                path.moveTo(x, y)
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

    def chord_marks(self) -> list[tuple[float, str]]:
        """(x, name) of each chord change in view; name is "" where the previous label
        leaves no room (a chord that lasted a moment keeps its tick only)."""
        v0, px = self.view_start(), self._px_per_step()
        metrics = QFontMetricsF(self._fonts[1])
        marks, text_end = [], -1.0
        for i, (s, name) in enumerate(self._chords):
            nxt = self._chords[i + 1][0] if i + 1 < len(self._chords) else self.step
            if nxt < v0:
                continue
            x = max(self.GUTTER + (s - v0) * px, self.GUTTER)
            if x + 5 >= text_end:
                marks.append((x, name))
                text_end = x + 5 + metrics.horizontalAdvance(name) + 4
            else:
                marks.append((x, ""))
        return marks

    def _paint_chords(self, p: QPainter, v0: float, px: float) -> None:
        p.setFont(self._fonts[1])
        tick, text = QPen(QColor(theme.ACCENT).darker(130), 2), QColor(theme.TEXT)
        for x, name in self.chord_marks():
            p.setPen(tick)
            p.drawLine(QPointF(x, 4), QPointF(x, self.TOP - 4))
            if name:
                p.setPen(text)
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
            r = QRectF(2, y + 0.5, 22 if black else self.GUTTER - 4, max(1.0, lh - 1))
            p.fillRect(r, QColor("#2b2f3a") if black else QColor("#c9ccd4"))
            if pitch % 12 == 0 and lh >= 7:
                p.setPen(QColor("#20232b"))
                p.drawText(
                    r.adjusted(0, -2, -2, 2),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    note_name(pitch),
                )
        H = self.height()
        p.setPen(QColor(theme.TEXT_DIM))
        h = (self.DRUM_LANE - 6) / 3
        for row, label in enumerate(("cym", "snr", "kick")):
            p.drawText(
                QRectF(2, H - self.DRUM_LANE + 3 + row * h, self.GUTTER - 4, h),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )

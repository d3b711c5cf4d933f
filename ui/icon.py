"""LiveBand's window icon, drawn in code (no image files to ship): amber melody notes
over the band's coloured bars on a dark rounded square."""

from __future__ import annotations

from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QIcon, QPainter, QPixmap

from ui import theme


def _draw(size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 64.0
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(theme.PANEL))
    p.drawRoundedRect(QRectF(2 * s, 2 * s, 60 * s, 60 * s), 12 * s, 12 * s)
    bars = (
        (theme.PART_COLORS["bass"], 12, 44, 18),
        (theme.PART_COLORS["keys"], 20, 34, 22),
        (theme.PART_COLORS["pad"], 30, 26, 24),
    )
    for color, x, y, w in bars:
        p.setBrush(QColor(color))
        p.drawRoundedRect(QRectF(x * s, y * s, w * s, 6 * s), 3 * s, 3 * s)
    p.setBrush(QColor(theme.ACCENT))
    for x, y in ((10, 18), (24, 12), (40, 16)):
        p.drawRoundedRect(QRectF(x * s, y * s, 12 * s, 6 * s), 3 * s, 3 * s)
    p.end()
    return pm


def make_icon() -> QIcon:
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        icon.addPixmap(_draw(size))
    return icon

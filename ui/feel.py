"""The Band tab's feel controls: swing (straight .. triplet), humanise, fills and
half/double time. Picking a style puts its own feel on them (the window does that); the
player then changes what they like. Widgets only; MainWindow sends ``values()`` to the
session on ``changed``. Thread: UI only."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from liveband.config import FILLS, TIMES
from ui import theme
from ui.widgets import Knob

FILL_LABELS = {"off": "off", "phrase": "phrase ends", "more": "more"}
TIME_LABELS = {"normal": "normal", "half": "half time", "double": "double time"}


def swing_text(v: float) -> str:
    """0 straight, 1 triplet; between, the off-beat 8th's long:short ratio (1.5:1 at 0.6)."""
    if v < 0.005:
        return "straight"
    if v > 0.995:
        return "triplet"
    off = 0.5 + v / 6.0
    return f"{off / (1.0 - off):.2f}:1"


class FeelControls(QWidget):
    """Swing and humanise knobs beside the fills and time menus."""

    changed = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        self.swing = Knob(
            "swing",
            0.0,
            1.0,
            0.0,
            fmt=swing_text,
            color=theme.PART_COLORS["drums"],
            tooltip="straight 8ths .. triplet shuffle: how late the off-beat 8ths of the band and "
            "drums fall (6/8 and 12/8 already swing in threes)",
        )
        self.humanise = Knob(
            "humanise",
            0.0,
            1.0,
            0.0,
            fmt=lambda v: f"{v * 100:.0f}%",
            color=theme.ACCENT,
            tooltip="timing and velocity spread, like players who are not a machine (the same for the same seed)",
        )
        self.fills = QComboBox()
        for f in FILLS:
            self.fills.addItem(FILL_LABELS.get(f, f), f)
        self.fills.setToolTip("drum fills: none, at the end of every 4-bar phrase, or every 2 bars")
        self.time = QComboBox()
        for t in TIMES:
            self.time.addItem(TIME_LABELS.get(t, t), t)
        self.time.setToolTip("the drummer's pattern over two bars (half time) or twice in a bar (double time)")
        menus = QVBoxLayout()
        menus.setSpacing(6)
        menus.addStretch(1)
        for label, w in (("fills", self.fills), ("drummer", self.time)):
            cap = QLabel(label.upper())
            cap.setObjectName("caption")
            menus.addWidget(cap)
            menus.addWidget(w)
        menus.addStretch(1)
        grid.addWidget(self.swing, 0, 0, Qt.AlignmentFlag.AlignHCenter)
        grid.addWidget(self.humanise, 0, 1, Qt.AlignmentFlag.AlignHCenter)
        grid.addLayout(menus, 0, 2)
        for w in (self.fills, self.time):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys belong to the instrument
            w.currentIndexChanged.connect(lambda _=0: self.changed.emit())
        self.swing.valueChanged.connect(lambda _=0.0: self.changed.emit())
        self.humanise.valueChanged.connect(lambda _=0.0: self.changed.emit())

    def values(self) -> dict:
        """The feel as ``Session.set_feel`` takes it."""
        return {
            "swing": round(self.swing.value(), 3),
            "fills": self.fills.currentData(),
            "time_feel": self.time.currentData(),
            "humanise": round(self.humanise.value(), 3),
        }

    def show_feel(
        self,
        swing: float | None = None,
        fills: str | None = None,
        time_feel: str | None = None,
        humanise: float | None = None,
    ) -> None:
        """Put values on the controls without emitting ``changed`` (None: leave as is)."""
        widgets = (self.swing, self.humanise, self.fills, self.time)
        for w in widgets:
            w.blockSignals(True)
        try:
            if swing is not None:
                self.swing.setValue(float(swing))  # the knob's own text follows
            if humanise is not None:
                self.humanise.setValue(float(humanise))
            for combo, data in ((self.fills, fills), (self.time, time_feel)):
                i = combo.findData(data) if data is not None else -1
                if i >= 0:
                    combo.setCurrentIndex(i)
        finally:
            for w in widgets:
                w.blockSignals(False)

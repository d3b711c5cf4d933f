"""The transport bar across the top of the window: play, record, tempo with tap, meter,
count-in and click, key, style, the current chord and position, the input selector with
its level meter. Widgets only; MainWindow connects them to the session. Thread: UI only."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from liveband.config import COUNT_IN_RANGE, KEY_NAMES, METERS, STYLE_LABELS, STYLES, TEMPO_RANGE
from ui.panels import INPUT_LABELS, caption
from ui.widgets import LevelMeter

KEYS = ("Auto",) + KEY_NAMES  # spelled as the session names keys (G# minor, Db major)
_MODE_TIPS = {
    "keyboard": "computer keyboard: Z S X D C V G B H N J M , = C to C ([ ] octave)",
    "midi": "a MIDI controller (choose it in Setup)",
    "mic": "hum or sing into the microphone",
}


def fixed_width_for(button: QPushButton, *texts: str) -> None:
    """Fix ``button``'s width to fit the widest of ``texts`` (styled as it will be shown)."""
    button.ensurePolished()
    shown = button.text()
    width = 0
    for text in texts:
        button.setText(text)
        width = max(width, button.sizeHint().width())
    button.setText(shown)
    button.setFixedWidth(width)


class TransportBar(QFrame):
    """can_set_key: whether the session accepts a fixed key (else the key box only shows
    the key the session detects)."""

    def __init__(self, can_set_key: bool) -> None:
        super().__init__()
        self.setObjectName("panel")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 8)
        lay = QHBoxLayout()
        outer.addLayout(lay)
        lay.setSpacing(10)
        self.play_btn = QPushButton("▶")
        self.play_btn.setObjectName("play")
        self.play_btn.setCheckable(True)
        self.play_btn.setToolTip("play / stop (Space)")
        self.record_btn = QPushButton("● REC")
        self.record_btn.setObjectName("record")
        self.record_btn.setCheckable(True)
        self.record_btn.setToolTip("record each take from play to stop (WAV + MIDI, written as you play) (R)")
        # wide enough for "● RECORDING": the row must not shift when a take starts
        fixed_width_for(self.record_btn, "● REC", "● RECORDING")
        lay.addWidget(self.play_btn)
        lay.addWidget(self.record_btn)

        def group(text: str, *widgets) -> None:
            v = QVBoxLayout()
            v.setSpacing(2)
            v.addWidget(caption(text))
            h = QHBoxLayout()
            h.setSpacing(4)
            for w in widgets:
                h.addWidget(w)
            v.addLayout(h)
            lay.addLayout(v)

        self.tempo = QDoubleSpinBox()
        self.tempo.setRange(*TEMPO_RANGE)
        self.tempo.setDecimals(1)
        self.tempo.setSuffix(" bpm")
        self.tempo.setKeyboardTracking(False)  # one change when typing is done, not per digit
        self.tempo.setFixedWidth(104)
        self.tap_btn = QPushButton("TAP")
        self.tap_btn.setToolTip("tap the tempo (T)")
        group("tempo", self.tempo, self.tap_btn)
        self.meter = QComboBox()
        for m in METERS:
            self.meter.addItem(m, m)
        self.meter.setToolTip("a new meter applies from the next play")
        group("meter", self.meter)
        self.count_in = QSpinBox()
        self.count_in.setRange(*COUNT_IN_RANGE)
        self.count_in.setSuffix(" bar")
        self.count_in.setToolTip("count-in bars before the band starts")
        self.metronome = QPushButton("Click")
        self.metronome.setCheckable(True)
        self.metronome.setToolTip("metronome click")
        group("count-in", self.count_in, self.metronome)
        self.key = QComboBox()
        for k in KEYS:
            self.key.addItem(k, k)
        self.key.setMinimumContentsLength(9)
        if can_set_key:
            self.key.setToolTip("Auto follows your playing; or fix the key")
        else:
            self.key.setEnabled(False)
            self.key.setToolTip("auto-key: the band detects your key as you play")
        group("key", self.key)
        self.style_menu = QComboBox()
        for s in STYLES:  # shipped styles, then the user's style files
            self.style_menu.addItem(STYLE_LABELS[s], s)
        group("style", self.style_menu)
        lay.addStretch(1)

        chord_box = QVBoxLayout()
        chord_box.setSpacing(0)
        chord_box.addWidget(caption("chord"), 0, Qt.AlignmentFlag.AlignHCenter)
        self.chord_label = QLabel("–")
        self.chord_label.setObjectName("chord")
        self.chord_label.setMinimumWidth(90)
        self.chord_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chord_box.addWidget(self.chord_label)
        self.key_label = QLabel("")
        self.key_label.setObjectName("dim")
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chord_box.addWidget(self.key_label)
        lay.addLayout(chord_box)
        pos_box = QVBoxLayout()
        pos_box.setSpacing(0)
        pos_box.addWidget(caption("bar . beat"), 0, Qt.AlignmentFlag.AlignHCenter)
        self.position = QLabel("–")
        self.position.setObjectName("bignum")
        self.position.setMinimumWidth(70)
        self.position.setAlignment(Qt.AlignmentFlag.AlignCenter)
        pos_box.addWidget(self.position)
        pos_box.addStretch(1)
        lay.addSpacing(8)
        lay.addLayout(pos_box)
        lay.addStretch(1)

        inp = QVBoxLayout()
        inp.setSpacing(3)
        inp.addWidget(caption("you play with"))
        modes = QHBoxLayout()
        modes.setSpacing(0)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QPushButton] = {}
        for mode, label in INPUT_LABELS.items():
            b = QPushButton(label)
            b.setObjectName("mode")
            b.setCheckable(True)
            b.setToolTip(_MODE_TIPS[mode])
            self.mode_group.addButton(b)
            self.mode_buttons[mode] = b
            modes.addWidget(b)
        inp.addLayout(modes)
        lvl = QHBoxLayout()
        self.level = LevelMeter()
        self.hum_label = QLabel("")
        self.hum_label.setObjectName("dim")
        self.hum_label.setMinimumWidth(70)
        lvl.addWidget(self.level, 1)
        lvl.addWidget(self.hum_label)
        inp.addLayout(lvl)
        lay.addLayout(inp)
        # Only the number boxes take the focus (for typing); everything else leaves the
        # keys to the instrument.
        # The walk follows the layouts, not findChildren(): that also returns Qt's private
        # children (a combo box's popup, a spin box's line edit), whose Python wrappers can
        # outlive them and crashed a test run when touched.
        for w in _laid_out_widgets(outer):
            if w not in (self.tempo, self.count_in):
                w.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    @property
    def input_mode(self) -> str:
        for mode, b in self.mode_buttons.items():
            if b.isChecked():
                return mode
        return "keyboard"


def _laid_out_widgets(layout: QLayout) -> list[QWidget]:
    """Every widget placed in ``layout`` or its nested layouts (GUI thread)."""
    found: list[QWidget] = []
    for i in range(layout.count()):
        item = layout.itemAt(i)
        if item is None:
            continue
        w = item.widget()
        if w is not None:
            found.append(w)
        sub = item.layout()
        if sub is not None:
            found.extend(_laid_out_widgets(sub))
    return found

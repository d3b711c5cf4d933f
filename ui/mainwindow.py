"""The LiveBand window: transport, live piano roll, band controls, mixer, setup, sessions
and health, all talking to one ``liveband.session.Session``.

Threading: everything here runs on the UI thread. The window never waits on audio or
the model: it polls ``Session.snapshot()`` and ``Session.roll()`` (both cheap, callable
from any thread) on a ~30 ms timer and hands long work (offline render, export) to
QThreads (ui/workers.py). Session setters are quick flag writes by contract.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from PyQt6.QtCore import QEvent, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractSpinBox, QApplication, QButtonGroup, QComboBox, QDoubleSpinBox, QFileDialog, QFrame,
    QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMainWindow,
    QProgressBar, QPushButton, QSlider, QSpinBox, QTabWidget, QVBoxLayout, QWidget,
)

from liveband.config import METERS, STYLES
from ui import settings as st
from ui import theme
from ui.gm import NOTE_NAMES, note_name, program_choices
from ui.health import BAD, OK, HealthMonitor, Verdict
from ui.keyboard import OCTAVE_DOWN, OCTAVE_UP, ComputerKeyboard
from ui.onscreen import OnScreenKeys
from ui.pianoroll import PianoRoll, bar_and_beat_steps
from ui.widgets import Knob, LevelMeter
from ui.workers import CallWorker, ExportWorker, RenderWorker

INPUT_MODES = (("keyboard", "Keys"), ("midi", "MIDI"), ("mic", "Hum"))
BLOCKSIZES = (64, 128, 256, 512, 1024, 2048)
KEYS = ("Auto",) + tuple(f"{n} major" for n in NOTE_NAMES) + tuple(f"{n} minor" for n in NOTE_NAMES)
DEFAULT_PARTS = ("bass", "keys", "pad", "drums")
TICK_MS = 30


def _panel(layout_cls=QVBoxLayout) -> tuple[QFrame, QVBoxLayout]:
    f = QFrame()
    f.setObjectName("panel")
    lay = layout_cls(f)
    lay.setContentsMargins(10, 8, 10, 8)
    return f, lay


def _caption(text: str) -> QLabel:
    lab = QLabel(text.upper())
    lab.setObjectName("caption")
    return lab


def _set_combo(combo: QComboBox, data) -> bool:
    """Select the item carrying ``data`` without emitting signals; False when absent."""
    i = combo.findData(data)
    if i < 0:
        return False
    combo.blockSignals(True)
    combo.setCurrentIndex(i)
    combo.blockSignals(False)
    return True


class PartStrip(QFrame):
    """One band part in the mixer: name, instrument, mute, solo, volume."""

    changed = pyqtSignal(str, dict)   # part, {"mute"|"solo"|"volume"|"program": value}

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part
        self.setObjectName("panel")
        color = theme.PART_COLORS.get(part, theme.TEXT_DIM)
        lay = QGridLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setHorizontalSpacing(6)
        lay.setVerticalSpacing(4)
        name = QLabel(f"<span style='color:{color}'>●</span> <b>{theme.PART_LABELS.get(part, part.title())}</b>")
        self.program = QComboBox()
        self.program.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for prog, label in program_choices(part):
            self.program.addItem(label, prog)
        self.program.setMinimumContentsLength(14)
        self.program.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mute = QPushButton("M")
        self.mute.setObjectName("mute")
        self.solo = QPushButton("S")
        self.solo.setObjectName("solo")
        for b, tip in ((self.mute, f"mute the {part}"), (self.solo, f"solo the {part}")):
            b.setCheckable(True)
            b.setFixedWidth(30)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.volume.setToolTip(f"{part} volume")
        lay.addWidget(name, 0, 0)
        lay.addWidget(self.mute, 0, 1)
        lay.addWidget(self.solo, 0, 2)
        lay.addWidget(self.program, 1, 0, 1, 3)
        lay.addWidget(self.volume, 2, 0, 1, 3)
        self.mute.toggled.connect(lambda on: self.changed.emit(self.part, {"mute": on}))
        self.solo.toggled.connect(lambda on: self.changed.emit(self.part, {"solo": on}))
        self.volume.valueChanged.connect(lambda v: self.changed.emit(self.part, {"volume": v / 100.0}))
        self.program.currentIndexChanged.connect(
            lambda i: self.changed.emit(self.part, {"program": int(self.program.itemData(i))}))

    def show_state(self, state) -> None:
        """Reflect a PartState without emitting ``changed``."""
        for w, v in ((self.mute, state.mute), (self.solo, state.solo)):
            w.blockSignals(True)
            w.setChecked(bool(v))
            w.blockSignals(False)
        self.volume.blockSignals(True)
        self.volume.setValue(int(round(state.volume * 100)))
        self.volume.blockSignals(False)
        if not _set_combo(self.program, int(state.program)):
            self.program.blockSignals(True)
            self.program.addItem(f"program {state.program}", int(state.program))
            self.program.setCurrentIndex(self.program.count() - 1)
            self.program.blockSignals(False)


class MainWindow(QMainWindow):
    """The instrument window.

    session: a liveband.session.Session (or anything with its API).
    settings: where to remember choices (default: the user's LiveBand settings).
    blocksize: the audio buffer size the session was opened with (health advice).
    """

    def __init__(self, session, settings: QSettings | None = None, blocksize: int | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = settings if settings is not None else st.open_settings()
        self.blocksize = int(blocksize or st.read(self.settings, "devices/blocksize"))
        self.keyboard = ComputerKeyboard()
        self.health = HealthMonitor()
        self.verdict = Verdict(OK, "")
        self.last_snapshot = None
        self.last_recording = False
        self._workers: list = []
        self._messages: list[str] = []          # transient problems from our own calls
        self._closing = False
        self._starting = None                   # the CallWorker running Session.play, if any
        self.setWindowTitle("LiveBand")
        self.resize(1360, 820)
        self._build()
        self._restore()
        self._refresh_devices()
        self._refresh_sessions()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self.roll.setFocus()
        self.tick()

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        root = QWidget()
        outer = QVBoxLayout(root)
        outer.setContentsMargins(12, 10, 12, 6)
        outer.setSpacing(8)
        outer.addWidget(self._build_transport())
        self.notice = QFrame()
        self.notice.setObjectName("notice")
        nl = QHBoxLayout(self.notice)
        nl.setContentsMargins(10, 6, 10, 6)
        self.notice_text = QLabel()
        self.notice_text.setWordWrap(True)
        self.notice_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        nl.addWidget(self.notice_text)
        self.notice.hide()
        outer.addWidget(self.notice)
        body = QHBoxLayout()
        body.setSpacing(10)
        left = QVBoxLayout()
        left.setSpacing(8)
        roll_frame, rl = _panel()
        rl.setContentsMargins(4, 4, 4, 4)
        self.roll = PianoRoll()
        # The roll holds the keyboard focus, so no text box shows a cursor or eats notes.
        self.roll.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        rl.addWidget(self.roll)
        left.addWidget(roll_frame, 1)
        mixer = QHBoxLayout()
        mixer.setSpacing(8)
        self.strips: dict[str, PartStrip] = {}
        snap_parts = self._safe_snapshot()
        parts = tuple(snap_parts.parts) if snap_parts is not None and snap_parts.parts else DEFAULT_PARTS
        for part in parts:
            strip = PartStrip(part)
            strip.changed.connect(self._part_changed)
            self.strips[part] = strip
            mixer.addWidget(strip)
        left.addLayout(mixer)
        body.addLayout(left, 1)
        self.tabs = QTabWidget()
        self.tabs.setFixedWidth(330)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.addTab(self._build_band_tab(), "Band")
        self.tabs.addTab(self._build_setup_tab(), "Setup")
        self.tabs.addTab(self._build_sessions_tab(), "Sessions")
        body.addWidget(self.tabs)
        outer.addLayout(body, 1)
        outer.addWidget(self._build_health())
        self.setCentralWidget(root)

    def _build_transport(self) -> QWidget:
        f, _ = _panel()
        lay = QHBoxLayout()
        f.layout().addLayout(lay)
        lay.setSpacing(14)
        self.play_btn = QPushButton("▶")
        self.play_btn.setObjectName("play")
        self.play_btn.setCheckable(True)
        self.play_btn.setToolTip("play / stop (Space)")
        self.play_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.play_btn.clicked.connect(lambda: self.toggle_play())
        self.record_btn = QPushButton("● REC")
        self.record_btn.setObjectName("record")
        self.record_btn.setCheckable(True)
        self.record_btn.setToolTip("record this session (MIDI + WAV, written as you play)")
        self.record_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.record_btn.toggled.connect(lambda on: self._call(self.session.set_recording, on))
        lay.addWidget(self.play_btn)
        lay.addWidget(self.record_btn)

        def group(caption: str, *widgets) -> QVBoxLayout:
            v = QVBoxLayout()
            v.setSpacing(2)
            v.addWidget(_caption(caption))
            h = QHBoxLayout()
            h.setSpacing(4)
            for w in widgets:
                h.addWidget(w)
            v.addLayout(h)
            lay.addLayout(v)
            return v

        self.tempo = QDoubleSpinBox()
        self.tempo.setRange(40.0, 240.0)
        self.tempo.setDecimals(1)
        self.tempo.setSuffix(" bpm")
        self.tempo.setKeyboardTracking(False)
        self.tempo.setFixedWidth(118)
        self.tempo.valueChanged.connect(self._tempo_changed)
        self.tap_btn = QPushButton("TAP")
        self.tap_btn.setToolTip("tap the tempo (T)")
        self.tap_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tap_btn.clicked.connect(self.tap)
        group("tempo", self.tempo, self.tap_btn)
        self.meter = QComboBox()
        for m in METERS:
            self.meter.addItem(m, m)
        self.meter.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.meter.currentIndexChanged.connect(lambda i: self._call(self.session.set_meter, self.meter.itemData(i)))
        self.count_in = QSpinBox()
        self.count_in.setRange(0, 4)
        self.count_in.setSuffix(" bar")
        self.count_in.setToolTip("count-in bars before the band starts")
        self.count_in.valueChanged.connect(lambda v: self._call(self.session.set_count_in, v))
        self.metronome = QPushButton("Click")
        self.metronome.setCheckable(True)
        self.metronome.setToolTip("metronome click")
        self.metronome.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.metronome.toggled.connect(lambda on: self._call(self.session.set_metronome, on))
        group("meter", self.meter)
        group("count-in", self.count_in, self.metronome)
        self.key = QComboBox()
        for k in KEYS:
            self.key.addItem(k, k)
        self.key.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.key.setMinimumContentsLength(12)
        self.key.currentIndexChanged.connect(self._key_changed)
        if not callable(getattr(self.session, "set_key", None)):
            # This session always follows the player's key: the box shows what it detects.
            self.key.setEnabled(False)
            self.key.setToolTip("auto-key: the band detects your key as you play")
        else:
            self.key.setToolTip("Auto follows your playing; or fix the key")
        group("key", self.key)
        self.style = QComboBox()
        for s in STYLES:
            self.style.addItem(s.title(), s)
        self.style.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.style.currentIndexChanged.connect(lambda i: self._call(self.session.set_style, self.style.itemData(i)))
        group("style", self.style)
        lay.addStretch(1)
        chord_box = QVBoxLayout()
        chord_box.setSpacing(0)
        chord_box.addWidget(_caption("chord"), 0, Qt.AlignmentFlag.AlignHCenter)
        self.chord_label = QLabel("–")
        self.chord_label.setObjectName("chord")
        self.chord_label.setMinimumWidth(110)
        self.chord_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chord_box.addWidget(self.chord_label)
        self.key_label = QLabel("")
        self.key_label.setObjectName("dim")
        self.key_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        chord_box.addWidget(self.key_label)
        lay.addLayout(chord_box)
        pos_box = QVBoxLayout()
        pos_box.setSpacing(0)
        pos_box.addWidget(_caption("bar . beat"), 0, Qt.AlignmentFlag.AlignHCenter)
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
        inp.addWidget(_caption("you play with"))
        modes = QHBoxLayout()
        modes.setSpacing(0)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QPushButton] = {}
        for mode, label in INPUT_MODES:
            b = QPushButton(label)
            b.setObjectName("mode")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip({"keyboard": "computer keyboard: Z S X D C V G B H N J M , = C to C ([ ] octave)",
                          "midi": "a MIDI controller (choose it in Setup)",
                          "mic": "hum or sing into the microphone"}[mode])
            self.mode_group.addButton(b)
            self.mode_buttons[mode] = b
            modes.addWidget(b)
            b.clicked.connect(lambda _=False, m=mode: self.set_input_mode(m))
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
        return f

    def _build_band_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(_caption("how the band plays"))
        grid = QGridLayout()
        pct = lambda v: f"{v * 100:.0f}%"  # noqa: E731
        self.temperature = Knob("creativity", 0.05, 2.0, 0.9, fmt=lambda v: f"{v:.2f}", color=theme.PART_COLORS["pad"],
                                tooltip="low: safe, predictable; high: adventurous")
        self.density = Knob("intensity", 0.0, 1.0, 0.5, fmt=pct, color=theme.PART_COLORS["bass"],
                            tooltip="how busy the band plays")
        self.harmony = Knob("follow", 0.0, 1.0, 0.5, fmt=pct, color=theme.PART_COLORS["keys"],
                            tooltip="how strictly the harmony follows your notes")
        self.master = Knob("master", 0.0, 1.0, 0.8, fmt=pct, color=theme.ACCENT, tooltip="master volume")
        self.temperature.valueChanged.connect(lambda v: self._call(self.session.set_temperature, v))
        self.density.valueChanged.connect(lambda v: self._call(self.session.set_density, v))
        self.harmony.valueChanged.connect(lambda v: self._call(self.session.set_harmony_follow, v))
        self.master.valueChanged.connect(lambda v: self._call(self.session.set_master_volume, v))
        for i, k in enumerate((self.temperature, self.density, self.harmony, self.master)):
            grid.addWidget(k, i // 2, i % 2, Qt.AlignmentFlag.AlignHCenter)
        lay.addLayout(grid)
        lay.addSpacing(6)
        lay.addWidget(_caption("play here or on your keyboard"))
        self.onscreen = OnScreenKeys(base=self.keyboard.base_pitch)
        self.onscreen.note.connect(self.play_note)
        lay.addWidget(self.onscreen)
        help_ = QLabel(
            "<b>Space</b> play / stop &nbsp; <b>T</b> tap tempo<br>"
            "<b>Z S X D C V G B H N J M ,</b> play notes<br><b>[ ]</b> octave down / up")
        help_.setObjectName("dim")
        help_.setWordWrap(True)
        lay.addSpacing(10)
        lay.addWidget(_caption("keys"))
        lay.addWidget(help_)
        lay.addStretch(1)
        return w

    def _build_setup_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(4)
        self.audio_out = QComboBox()
        self.audio_in = QComboBox()
        self.buffer = QComboBox()
        for b in BLOCKSIZES:
            self.buffer.addItem(f"{b} frames", b)
        self.buffer.setToolTip("smaller: lower latency; larger: fewer dropouts on a busy computer")
        self.midi_in = QComboBox()
        self.midi_out = QComboBox()
        for caption, combo in (("audio output", self.audio_out), ("audio input (microphone)", self.audio_in),
                               ("buffer size", self.buffer), ("MIDI controller in", self.midi_in),
                               ("MIDI out (to a DAW)", self.midi_out)):
            combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            lay.addWidget(_caption(caption))
            lay.addWidget(combo)
            lay.addSpacing(4)
        self.audio_out.activated.connect(lambda _: self._apply_audio())
        self.audio_in.activated.connect(lambda _: self._apply_audio())
        self.buffer.activated.connect(lambda _: self._apply_audio())
        self.midi_in.activated.connect(lambda _: self._apply_midi_in())
        self.midi_out.activated.connect(lambda _: self._apply_midi_out())
        refresh = QPushButton("Rescan devices")
        refresh.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        refresh.clicked.connect(self._refresh_devices)
        lay.addWidget(refresh)
        self.audio_info = QLabel("")
        self.audio_info.setWordWrap(True)
        lay.addWidget(self.audio_info)
        self.latency_hint = QLabel("")
        self.latency_hint.setObjectName("dim")
        self.latency_hint.setWordWrap(True)
        lay.addWidget(self.latency_hint)
        lay.addStretch(1)
        return w

    def _build_sessions_tab(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(_caption("recorded sessions"))
        self.session_list = QListWidget()
        self.session_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.session_list.setWordWrap(True)
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addWidget(self.session_list, 1)
        row = QHBoxLayout()
        self.refresh_sessions_btn = QPushButton("Refresh")
        self.export_btn = QPushButton("Export MIDI + WAV…")
        for b in (self.refresh_sessions_btn, self.export_btn):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            row.addWidget(b)
        self.refresh_sessions_btn.clicked.connect(self._refresh_sessions)
        self.export_btn.clicked.connect(self._export_clicked)
        lay.addLayout(row)
        lay.addSpacing(10)
        lay.addWidget(_caption("melody files"))
        self.render_btn = QPushButton("Render a melody file…")
        self.render_btn.setToolTip("accompany a .mid (or hummed .wav) offline into WAV + MIDI")
        self.render_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.render_btn.clicked.connect(self._render_clicked)
        lay.addWidget(self.render_btn)
        self.along_btn = QPushButton("Play along with a file…")
        self.along_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.along_btn.clicked.connect(self._play_along_clicked)
        if not callable(getattr(self.session, "play_along", None)):
            self.along_btn.setEnabled(False)
            self.along_btn.setToolTip("this session cannot play files along yet")
        lay.addWidget(self.along_btn)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        lay.addWidget(self.progress)
        self.job_label = QLabel("")
        self.job_label.setObjectName("dim")
        self.job_label.setWordWrap(True)
        lay.addWidget(self.job_label)
        return w

    def _build_health(self) -> QWidget:
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(18)
        self.health_labels: dict[str, QLabel] = {}
        for key, tip in (("latency", "audio output latency"), ("xruns", "audio dropouts since play"),
                         ("lead", "how far the band is generated ahead of the beat"),
                         ("cpu", "CPU used by LiveBand"), ("backend", "inference backend")):
            lab = QLabel("")
            lab.setObjectName("dim")
            lab.setToolTip(tip)
            self.health_labels[key] = lab
            lay.addWidget(lab)
        lay.addStretch(1)
        self.health_dot = QLabel("●")
        self.health_text = QLabel("")
        lay.addWidget(self.health_dot)
        lay.addWidget(self.health_text)
        return w

    # --------------------------------------------------------------- settings
    def _restore(self) -> None:
        """Put the remembered choices on the controls and send them to the session."""
        s = self.settings
        geo = st.read(s, "window/geometry")
        if geo:
            self.restoreGeometry(geo)
        self.tempo.setValue(max(40.0, min(240.0, st.read(s, "transport/tempo"))))
        self._tempo_changed(self.tempo.value())
        meter = st.read(s, "transport/meter")
        self.meter.setCurrentIndex(max(0, self.meter.findData(meter)))
        self._call(self.session.set_meter, self.meter.currentData())
        self.count_in.setValue(max(0, min(4, st.read(s, "transport/count_in"))))
        self._call(self.session.set_count_in, self.count_in.value())
        self.metronome.setChecked(st.read(s, "transport/metronome"))
        self._call(self.session.set_metronome, self.metronome.isChecked())
        self.key.setCurrentIndex(max(0, self.key.findData(st.read(s, "transport/key"))))
        self.style.setCurrentIndex(max(0, self.style.findData(st.read(s, "band/style"))))
        self._call(self.session.set_style, self.style.currentData())
        for knob, key, fn in ((self.temperature, "band/temperature", self.session.set_temperature),
                              (self.density, "band/density", self.session.set_density),
                              (self.harmony, "band/harmony_follow", self.session.set_harmony_follow),
                              (self.master, "band/master", self.session.set_master_volume)):
            knob.setValue(st.read(s, key))
            self._call(fn, knob.value())
        snap = self._safe_snapshot()
        for part, strip in self.strips.items():
            state = snap.parts.get(part) if snap is not None else None
            if state is not None:
                strip.show_state(state)
            changes = {}
            for attr in st.PART_KEYS:
                key = f"parts/{part}/{attr}"
                if s.contains(key):
                    default = getattr(state, attr) if state is not None else (0.8 if attr == "volume" else False if attr in ("mute", "solo") else 0)
                    changes[attr] = st.read(s, key, default)
            if changes:
                self._call(self.session.set_part, part, **changes)
                if state is not None:
                    strip.show_state(type(state)(**{**{a: getattr(state, a) for a in st.PART_KEYS}, **changes}))
        self.record_btn.setChecked(st.read(s, "transport/record"))
        self._call(self.session.set_recording, self.record_btn.isChecked())
        self.set_input_mode(st.read(s, "input/mode"))
        self.buffer.setCurrentIndex(max(0, self.buffer.findData(self.blocksize)))

    def save_settings(self) -> None:
        s = self.settings
        st.write(s, "transport/tempo", float(self.tempo.value()))
        st.write(s, "transport/meter", self.meter.currentData())
        st.write(s, "transport/count_in", int(self.count_in.value()))
        st.write(s, "transport/metronome", bool(self.metronome.isChecked()))
        st.write(s, "transport/key", self.key.currentData())
        st.write(s, "transport/record", bool(self.record_btn.isChecked()))
        st.write(s, "band/style", self.style.currentData())
        st.write(s, "band/temperature", float(self.temperature.value()))
        st.write(s, "band/density", float(self.density.value()))
        st.write(s, "band/harmony_follow", float(self.harmony.value()))
        st.write(s, "band/master", float(self.master.value()))
        st.write(s, "input/mode", self.input_mode)
        st.write(s, "devices/blocksize", int(self.buffer.currentData()))
        st.write(s, "devices/audio_out", self.audio_out.currentData() or "")
        st.write(s, "devices/audio_in", self.audio_in.currentData() or "")
        st.write(s, "devices/midi_in", self.midi_in.currentData() or "")
        st.write(s, "devices/midi_out", self.midi_out.currentData() or "")
        for part, strip in self.strips.items():
            st.write(s, f"parts/{part}/mute", strip.mute.isChecked())
            st.write(s, f"parts/{part}/solo", strip.solo.isChecked())
            st.write(s, f"parts/{part}/volume", strip.volume.value() / 100.0)
            st.write(s, f"parts/{part}/program", int(strip.program.currentData()))
        st.write(s, "window/geometry", bytes(self.saveGeometry()))
        s.sync()

    # ---------------------------------------------------------------- actions
    def _call(self, fn, *args, **kwargs):
        """Call a session setter; a refusal (bad value, vanished device) becomes a message
        in the window instead of an exception that would lose the player's session."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the player must keep playing whatever went wrong
            self.flash(str(exc) or exc.__class__.__name__)
            return None

    def flash(self, message: str) -> None:
        """Show a problem in the notice banner for ~8 s."""
        self._messages.append(message)
        QTimer.singleShot(8000, lambda m=message: self._messages.remove(m) if m in self._messages else None)
        self._show_notices(self.last_snapshot)

    def toggle_play(self) -> None:
        if self._starting is not None:
            return
        snap = self._safe_snapshot()
        playing = snap.playing if snap is not None else self.play_btn.isChecked()
        if playing:
            self.stop()
        else:
            self.play()

    def play(self) -> None:
        """Start the band. Session.play can take seconds the first time (it loads the
        model), so it runs in a worker while the window keeps drawing."""
        if self._starting is not None:
            return
        self.health.reset()
        self.roll.reset()
        self.play_btn.setText("…")
        self.play_btn.setToolTip("starting the band…")
        worker = CallWorker(self.session.play, self)
        worker.done.connect(self._play_started)
        self._starting = worker
        self._workers.append(worker)
        worker.finished.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        worker.start()

    @property
    def starting(self) -> bool:
        """True while Session.play is still running in its worker."""
        return self._starting is not None

    def _play_started(self, ok: bool, message: str) -> None:
        self._starting = None
        self.play_btn.setToolTip("play / stop (Space)")
        if not ok:
            self.flash(f"Could not start the band: {message}")
        self.tick()

    def stop(self) -> None:
        if self._starting is not None:       # let the start finish first; stopping then is instant
            self._starting.wait()
            self._starting = None
        self._release_held()
        self._call(self.session.stop)
        self.tick()

    def tap(self) -> None:
        bpm = self._call(self.session.tap_tempo)
        if bpm and math.isfinite(bpm) and 40 <= bpm <= 240:
            self.tempo.blockSignals(True)
            self.tempo.setValue(float(bpm))
            self.tempo.blockSignals(False)

    def _tempo_changed(self, bpm: float) -> None:
        self._call(self.session.set_tempo, float(bpm))

    def _key_changed(self, i: int) -> None:
        fn = getattr(self.session, "set_key", None)
        key = self.key.itemData(i)
        if callable(fn):
            self._call(fn, None if key == "Auto" else key)

    @property
    def input_mode(self) -> str:
        for mode, b in self.mode_buttons.items():
            if b.isChecked():
                return mode
        return "keyboard"

    def set_input_mode(self, mode: str) -> None:
        if mode not in self.mode_buttons:
            mode = "keyboard"
        self._release_held()
        self.mode_buttons[mode].setChecked(True)
        self._call(self.session.set_input_mode, mode)

    def _part_changed(self, part: str, change: dict) -> None:
        self._call(self.session.set_part, part, **change)

    # ----------------------------------------------------------------- devices
    def _refresh_devices(self) -> None:
        audio = self._call(self.session.audio_devices) or {}
        midi = self._call(self.session.midi_ports) or {}
        s = self.settings

        def fill(combo: QComboBox, names, none_label: str, saved: str, extra=()) -> None:
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(none_label, "")
            for label, data in extra:
                combo.addItem(label, data)
            for n in names or ():
                combo.addItem(str(n), str(n))
            i = combo.findData(saved)
            combo.setCurrentIndex(i if i >= 0 else 0)
            combo.blockSignals(False)

        fill(self.audio_out, audio.get("outputs"), "System default", st.read(s, "devices/audio_out"))
        fill(self.audio_in, audio.get("inputs"), "System default", st.read(s, "devices/audio_in"))
        fill(self.midi_in, [n for n in midi.get("inputs") or () if not str(n).startswith("LiveBand")], "None",
             st.read(s, "devices/midi_in"), extra=(("Virtual port “LiveBand in”", "LiveBand in"),))
        fill(self.midi_out, [n for n in midi.get("outputs") or () if not str(n).startswith("LiveBand")], "Off",
             st.read(s, "devices/midi_out"), extra=(("Virtual port “LiveBand band”", "virtual:"),))
        missing = []
        if not audio.get("outputs"):
            missing.append("No audio output found: start PulseAudio/PipeWire or JACK (or plug in a sound "
                           "card), then Rescan. Offline render still works.")
        if not midi.get("inputs"):
            missing.append("No MIDI controller found: plug one in and press Rescan, or play with the "
                           "computer keyboard.")
        self.latency_hint.setText("\n\n".join(missing))

    def _apply_audio(self) -> None:
        out = self.audio_out.currentData() or None
        inp = self.audio_in.currentData() or None
        self.blocksize = int(self.buffer.currentData())
        self.health.reset()
        # Re-opening the stream can take a moment: do it off the UI thread.
        worker = CallWorker(lambda: self.session.set_audio_devices(output=out, input=inp, blocksize=self.blocksize),
                            self)
        worker.done.connect(lambda ok, msg: None if ok else self.flash(f"Could not switch audio: {msg}"))
        self._start(worker, "")

    def _apply_midi_in(self) -> None:
        self._call(self.session.open_midi_input, self.midi_in.currentData() or None)

    def _apply_midi_out(self) -> None:
        data = self.midi_out.currentData() or ""
        if data.startswith("virtual:"):
            self._call(self.session.open_midi_output, data.split(":", 1)[1] or None, virtual=True)
        else:
            self._call(self.session.open_midi_output, data or None, virtual=False)

    # ---------------------------------------------------------------- sessions
    def _refresh_sessions(self) -> None:
        self.session_list.clear()
        for info in self._call(self.session.list_sessions) or []:
            name = str(info.get("name", "?"))
            details = []
            secs = info.get("seconds")
            if isinstance(secs, (int, float)) and secs > 0:
                details.append(f"{int(secs) // 60}:{int(secs) % 60:02d}")
            if info.get("style"):
                details.append(str(info["style"]))
            if info.get("tempo"):
                details.append(f"{float(info['tempo']):.0f} bpm")
            if info.get("complete") is False:
                details.append("recovered")
            item = QListWidgetItem(name + ("\n    " + " · ".join(details) if details else ""))
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(", ".join(info.get("files", [])) if isinstance(info.get("files"), list) else "")
            self.session_list.addItem(item)

    def export_selected(self, dest: str) -> ExportWorker | None:
        """Export the selected session into ``dest`` in a worker thread."""
        item = self.session_list.currentItem()
        if item is None:
            self.flash("Choose a recorded session to export first.")
            return None
        worker = ExportWorker(self.session, item.data(Qt.ItemDataRole.UserRole), dest, self)
        worker.done.connect(self._job_done)
        self._start(worker, f"Exporting {item.data(Qt.ItemDataRole.UserRole)}…")
        return worker

    def _export_clicked(self) -> None:
        dest = QFileDialog.getExistingDirectory(self, "Export session to")
        if dest:
            self.export_selected(dest)

    def render_file(self, path: str, out_wav: str, midi_out: str | None = None) -> RenderWorker:
        """Accompany ``path`` offline into ``out_wav`` (+ ``midi_out``) in a worker thread."""
        worker = RenderWorker(self.session, path, out_wav, midi_out, self)
        worker.progress.connect(lambda f: self.progress.setValue(int(f * 1000)))
        worker.done.connect(self._job_done)
        self.progress.setValue(0)
        self.progress.show()
        self._start(worker, f"Rendering {Path(path).name}…")
        return worker

    def _render_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Melody to accompany", "",
                                              "Melodies (*.mid *.midi *.wav);;All files (*)")
        if not path:
            return
        stem = os.path.splitext(path)[0]
        out, _ = QFileDialog.getSaveFileName(self, "Save the band as", stem + "-band.wav", "WAV audio (*.wav)")
        if out:
            self.render_file(path, out, os.path.splitext(out)[0] + ".mid")

    def _play_along_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play along with", "", "Melodies (*.mid *.midi);;All files (*)")
        if path:
            self._call(self.session.play_along, path)

    def _start(self, worker, label: str) -> None:
        self._workers.append(worker)
        worker.finished.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        if label:
            self.job_label.setText(label)
        worker.start()

    def wait_for_workers(self, ms: int = 30000) -> None:
        """Block until background calls finish (closing, tests)."""
        for w in list(self._workers):
            w.wait(ms)

    def _job_done(self, ok: bool, message: str) -> None:
        self.job_label.setText(message)
        self.progress.setValue(1000 if ok else self.progress.value())
        if not ok:
            self.flash(message)
        self._refresh_sessions()

    # ---------------------------------------------------------------- the tick
    def _safe_snapshot(self):
        try:
            return self.session.snapshot()
        except Exception:
            return None

    def tick(self) -> None:
        """Poll the session and redraw (Thread: UI, every TICK_MS)."""
        snap = self._safe_snapshot()
        if snap is None:
            return
        self.last_snapshot = snap
        self.play_btn.blockSignals(True)
        self.play_btn.setChecked(snap.playing)
        self.play_btn.setText("…" if self._starting is not None else "■" if snap.playing else "▶")
        self.play_btn.blockSignals(False)
        # The button is the wish to record takes; the text says whether a take is being written.
        rec_text = "● RECORDING" if snap.recording else "● REC"
        if self.last_recording and not snap.recording:
            self._refresh_sessions()             # a take was just saved
        self.last_recording = snap.recording
        if self.record_btn.text() != rec_text:
            self.record_btn.setText(rec_text)
        if snap.input_mode != self.input_mode and snap.input_mode in self.mode_buttons:
            self._release_held()
            self.mode_buttons[snap.input_mode].setChecked(True)
        if not self.tempo.hasFocus() and abs(snap.tempo - self.tempo.value()) > 0.05:
            self.tempo.blockSignals(True)
            self.tempo.setValue(snap.tempo)
            self.tempo.blockSignals(False)
        self.chord_label.setText(snap.chord or "–")
        if snap.playing and not snap.counting_in:
            bar, beat = bar_and_beat_steps(snap.meter)
            s = max(0.0, snap.step)
            self.position.setText(f"{int(s // bar) + 1}.{int(s % bar // beat) + 1}")
        else:
            self.position.setText("count" if snap.counting_in else "–")
        self.key_label.setText(f"key: {snap.key}" if snap.key else "key: listening…")
        auto = f"Auto: {snap.key}" if snap.key else "Auto"
        if self.key.itemText(0) != auto:
            self.key.setItemText(0, auto)
        self.level.set_db(snap.input_level_db)
        hp = snap.hummed_pitch
        self.hum_label.setText(note_name(int(round(hp))) if hp is not None and math.isfinite(hp) else "")
        try:
            notes = self.session.roll(self.roll.step - self.roll.behind_steps) if snap.playing or snap.step else []
        except Exception:
            notes = []
        self.roll.set_frame(snap.step, notes, hp, snap.chord, snap.meter, snap.playing, snap.counting_in)
        for part, strip in self.strips.items():
            state = snap.parts.get(part)
            if state is not None and not strip.volume.isSliderDown():
                strip.show_state(state)
        self.verdict = self.health.update(snap, self.blocksize)
        self._show_health(snap)
        self._show_notices(snap)

    def _show_health(self, snap) -> None:
        info = (f"Output latency {snap.audio_latency_ms:.1f} ms with {self.blocksize}-frame buffers. "
                f"Band model: {snap.backend}.")
        if self.audio_info.text() != info:
            self.audio_info.setText(info)
        hl = self.health_labels
        hl["latency"].setText(f"latency <b>{snap.audio_latency_ms:.1f} ms</b>")
        hl["xruns"].setText(f"dropouts <b>{snap.xruns}</b>")
        hl["lead"].setText(f"band ahead <b>{snap.lead_ms:.0f} ms</b>")
        hl["cpu"].setText(f"CPU <b>{snap.cpu_percent:.0f}%</b>")
        hl["backend"].setText(f"model <b>{snap.backend}</b>")
        color = {OK: theme.GOOD, BAD: theme.BAD}.get(self.verdict.level, theme.WARN)
        self.health_dot.setStyleSheet(f"color: {color}")
        if self.verdict.level == OK:
            self.health_text.setText("keeping up" if snap.playing else "ready")
        else:
            self.health_text.setText("cannot keep up" if self.verdict.level == BAD else "under strain")

    def notice_lines(self, snap=None) -> list[str]:
        """Everything the banner says right now: session notices, health advice, our own messages."""
        lines = list(snap.notices) if snap is not None else []
        if self.verdict.level != OK and self.verdict.message:
            lines.append(self.verdict.message)
        lines.extend(self._messages)
        return lines

    def _show_notices(self, snap) -> None:
        lines = self.notice_lines(snap)
        if not lines:
            self.notice.hide()
            return
        level = "bad" if self.verdict.level == BAD else "warn"
        if self.notice.property("level") != level:
            self.notice.setProperty("level", level)
            self.notice.style().unpolish(self.notice)
            self.notice.style().polish(self.notice)
        text = "<br>".join(f"⚠ {line}" for line in lines)
        if self.notice_text.text() != text:
            self.notice_text.setText(text)
        self.notice.show()

    # --------------------------------------------------------------- keyboard
    @staticmethod
    def _is_text_entry(w) -> bool:
        """A free-text box keeps every key; number boxes (tempo, count-in) take only digits,
        so letters, Space and T still play the instrument while they have the focus."""
        return isinstance(w, QLineEdit) and not isinstance(w.parent(), QAbstractSpinBox)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        """Transport keys and computer-keyboard notes, wherever the focus is in this window."""
        et = event.type()
        if et not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) or self._closing:
            return False
        if not isinstance(obj, QWidget) or obj.window() is not self or QApplication.activePopupWidget():
            return False
        if not isinstance(event, QKeyEvent):
            return False
        return self.handle_key(event)

    def handle_key(self, event: QKeyEvent) -> bool:
        """True when the key was ours (transport or a note)."""
        key = event.key()
        press = event.type() == QEvent.Type.KeyPress
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods not in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier):
            return False
        focus = QApplication.focusWidget()
        if self._is_text_entry(focus):
            return False
        if key == Qt.Key.Key_Space:
            if press and not event.isAutoRepeat():
                self.toggle_play()
            return True
        if key == Qt.Key.Key_T:
            if press and not event.isAutoRepeat():
                self.tap()
            return True
        if self.input_mode != "keyboard":
            return False
        if key in (OCTAVE_DOWN, OCTAVE_UP) or self.keyboard.is_note_key(key):
            if event.isAutoRepeat():
                return True
            if press:
                pitch = self.keyboard.press(key)
                if pitch is not None:
                    self.play_note(pitch, True)
                if key in (OCTAVE_DOWN, OCTAVE_UP):
                    self.onscreen.base = self.keyboard.base_pitch
                    self.onscreen.update()
            else:
                pitch = self.keyboard.release(key)
                if pitch is not None:
                    self.play_note(pitch, False)
            return True
        return False

    def play_note(self, pitch: int, down: bool) -> None:
        """The player's note (computer keyboard or on-screen keys) to the session."""
        if down:
            self._call(self.session.key_event, pitch, True, 100)
        else:
            self._call(self.session.key_event, pitch, False)
        lit = set(self.onscreen.lit)
        (lit.add if down else lit.discard)(pitch)
        self.onscreen.set_lit(lit)

    def _release_held(self) -> None:
        for pitch in self.keyboard.release_all():
            self.play_note(pitch, False)

    def changeEvent(self, event) -> None:  # noqa: N802
        # A key released while another window has focus never reaches us: end held notes.
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self._release_held()
        super().changeEvent(event)

    # ------------------------------------------------------------------ close
    def closeEvent(self, event) -> None:  # noqa: N802
        self._closing = True
        self.timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        try:
            self.save_settings()
        except Exception:
            pass
        for w in list(self._workers):
            w.wait(30000)
        self._release_held()
        super().closeEvent(event)

"""The LiveBand window: transport, live piano roll, mixer, Band / Setup / Sessions tabs and
the health bar, all talking to one ``liveband.session.Session``.

Threading: everything here runs on the UI thread. The window never waits on audio or
the model: it polls ``Session.snapshot()`` and ``Session.roll()`` (both cheap, callable
from any thread) on a ~30 ms timer; calls that can take long (starting the band, which
loads the model the first time; re-opening the audio stream; offline render; export)
run in QThreads (ui/workers.py) and report back through queued signals.
"""

from __future__ import annotations

import html
import math
import os
import re
import time
from pathlib import Path

from PyQt6.QtCore import QEvent, QSettings, Qt, QTimer
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from liveband import presets as pr
from liveband.config import INPUT_GAIN_DB_RANGE, TEMPO_RANGE, bar_steps, beat_steps, style_feel
from liveband.errors import first_line
from liveband.gm import note_name
from liveband.playalong import melody_steps
from ui import settings as st
from ui.chords import ChordsPanel
from ui.health import BAD, OK, HealthMonitor, Verdict
from ui.keyboard import OCTAVE_DOWN, OCTAVE_UP, ComputerKeyboard
from ui.learn import add_learn_menu
from ui.panels import BLOCKSIZES, BandPanel, HealthBar, PartStrip, SessionsPanel, SetupPanel, panel_frame, set_combo
from ui.pianoroll import PianoRoll
from ui.playalong import NotePlayer
from ui.transport import TransportBar
from ui.workers import CallWorker, ExportWorker, RenderWorker

DEFAULT_PARTS = ("bass", "keys", "pad", "drums", "melody")
TICK_MS = 30
NOTICE_LINES = 2  # the notice area's fixed height, in lines: the layout never moves
CONFIRM_S = 4.0  # how long a confirmation ("preset saved") stays


def plain_words(line: str) -> str:
    """A notice as the player reads it: the tab names they see, files by their name, no
    device-file paths or errno codes (the tooltip keeps the full text for whoever asks)."""
    line = line.replace("in the settings", "in the Setup tab")
    line = re.sub(r"\[Errno -?\d+\]\s*", "", line)
    # a file by its name, not its folders (/home/me/.config/LiveBand/LiveBand.ini -> LiveBand.ini)
    line = re.sub(r"(?<![\w/.])/(?!dev/)(?:[^\s/:,;()'\"]+/)+([^\s/:,;()'\"]+)", r"\1", line)
    line = re.sub(r"['\"]?/dev/[^\s,;:)'\"]+['\"]?", "", line)
    line = " ".join(line.replace("( ", "(").replace("()", "").split())
    return re.sub(r"\s+([.,;:)])", r"\1", line)


class MainWindow(QMainWindow):
    """The instrument window.

    session: a liveband.session.Session (or anything with its API).
    settings: where to remember choices (default: the user's LiveBand settings).
    blocksize: the audio buffer size the session was opened with (health advice).
    """

    def __init__(self, session, settings: st.Settings | QSettings | None = None, blocksize: int | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = st.as_settings(settings)
        self.blocksize = int(blocksize or st.read(self.settings, "devices/blocksize"))
        self.keyboard = ComputerKeyboard()
        self.health = HealthMonitor()
        self.verdict = Verdict(OK, "")
        self.last_snapshot = None
        self.last_recording = False
        self._workers: list = []
        self._messages: list[str] = []  # transient problems from our own calls
        self._confirmation: tuple[float, str] = (0.0, "")  # our own brief successes
        self._midi_ok = {"in": "", "out": ""}  # the MIDI ports that opened: a failed choice reverts to them
        self._closing = False
        self._starting: CallWorker | None = None  # the one running Session.play, if any
        self._along: NotePlayer | None = None  # a melody file being played along with
        self.setWindowTitle("LiveBand")
        self.resize(1360, 820)
        self._build()
        self._connect()
        self._restore()
        for notice in self.settings.notices:
            self.flash(notice)
        self._refresh_devices()
        self._restore_devices()
        self._refresh_sessions()
        self._refresh_presets()
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
        self.transport = TransportBar(can_set_key=callable(getattr(self.session, "set_key", None)))
        outer.addWidget(self.transport)
        self.notice = QFrame()
        self.notice.setObjectName("notice")
        self.notice.setProperty("level", "none")
        nl = QHBoxLayout(self.notice)
        nl.setContentsMargins(10, 4, 10, 4)
        self.notice_text = QLabel()
        self.notice_text.setWordWrap(False)  # lines are elided to the width: never taller
        self.notice_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        nl.addWidget(self.notice_text, 1)
        # the health advice as an action: "Use 512 frames" on repeated dropouts
        self.notice_action = QPushButton()
        self.notice_action.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.notice_action.hide()
        self.notice_action.clicked.connect(lambda: self.use_buffer(self.notice_action.property("blocksize")))
        nl.addWidget(self.notice_action)
        # always there, NOTICE_LINES high, empty or not: a notice never moves the controls
        self.notice.setFixedHeight(NOTICE_LINES * self.notice_text.fontMetrics().lineSpacing() + 4 + 4 + 2)
        outer.addWidget(self.notice)
        body = QHBoxLayout()
        body.setSpacing(10)
        left = QVBoxLayout()
        left.setSpacing(8)
        roll_frame, rl = panel_frame()
        rl.setContentsMargins(4, 4, 4, 4)
        self.roll = PianoRoll()
        # The roll holds the keyboard focus, so no text box shows a cursor or eats notes.
        self.roll.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        rl.addWidget(self.roll)
        left.addWidget(roll_frame, 1)
        mixer = QHBoxLayout()
        mixer.setSpacing(8)
        self.strips: dict[str, PartStrip] = {}
        snap = self._safe_snapshot()
        for part in tuple(snap.parts) if snap is not None and snap.parts else DEFAULT_PARTS:
            self.strips[part] = PartStrip(part)
            mixer.addWidget(self.strips[part])
        left.addLayout(mixer)
        body.addLayout(left, 1)
        self.tabs = QTabWidget()
        self.tabs.setFixedWidth(310)
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.band_panel = BandPanel(self.keyboard.base_pitch)
        self.setup_panel = SetupPanel()
        self.sessions_panel = SessionsPanel()
        self.chords_panel = ChordsPanel()
        self.tabs.addTab(self.band_panel, "Band")
        self.tabs.addTab(self.chords_panel, "Chords")
        self.tabs.addTab(self.setup_panel, "Setup")
        self.tabs.addTab(self.sessions_panel, "Sessions")
        body.addWidget(self.tabs)
        outer.addLayout(body, 1)
        self.health_bar = HealthBar()
        outer.addWidget(self.health_bar)
        self.setCentralWidget(root)

    def _connect(self) -> None:
        """Controls -> session."""
        t, b, su, se, ss = self.transport, self.band_panel, self.setup_panel, self.sessions_panel, self.session
        t.play_btn.clicked.connect(lambda: self.toggle_play())
        t.record_btn.toggled.connect(lambda on: self._call(ss.set_recording, on))
        t.tempo.valueChanged.connect(self._tempo_changed)
        t.tap_btn.clicked.connect(self.tap)
        t.meter.currentIndexChanged.connect(lambda i: self._call(ss.set_meter, t.meter.itemData(i)))
        t.count_in.valueChanged.connect(lambda v: self._call(ss.set_count_in, v))
        t.metronome.toggled.connect(lambda on: self._call(ss.set_metronome, on))
        t.key.currentIndexChanged.connect(self._key_changed)
        self.chords_panel.connect(ss, self._call)
        t.style_menu.currentIndexChanged.connect(lambda i: self._call(ss.set_style, t.style_menu.itemData(i)))
        t.style_menu.currentIndexChanged.connect(
            lambda i: self._style_feel(t.style_menu.itemData(i))
        )  # after the style
        b.feel.changed.connect(self._feel_changed)
        for mode, button in t.mode_buttons.items():
            button.clicked.connect(lambda _=False, m=mode: self.set_input_mode(m))
        b.temperature.valueChanged.connect(lambda v: self._call(ss.set_temperature, v))
        b.density.valueChanged.connect(lambda v: self._call(ss.set_density, v))
        b.harmony.valueChanged.connect(lambda v: self._call(ss.set_harmony_follow, v))
        b.master.valueChanged.connect(lambda v: self._call(ss.set_master_volume, v))
        b.onscreen.note.connect(self.play_note)
        for strip in self.strips.values():
            strip.changed.connect(self._part_changed)
        su.audio_out.activated.connect(lambda _: self._apply_audio())
        su.audio_in.activated.connect(lambda _: self._apply_audio())
        su.buffer.activated.connect(lambda _: self._apply_audio())
        su.input_gain.valueChanged.connect(lambda v: self._call(ss.set_input_gain, float(v)))
        su.midi_in.activated.connect(lambda _: self._apply_midi_in())
        su.midi_out.activated.connect(lambda _: self._apply_midi_out())
        su.sync.activated.connect(lambda _: self._apply_sync())
        su.sync_delay.valueChanged.connect(lambda v: self._call(ss.set_sync_delay, float(v)))
        su.send_clock.toggled.connect(lambda on: self._call(ss.set_midi_clock, on))
        su.rescan.clicked.connect(self._refresh_devices)
        se.refresh.clicked.connect(self._refresh_sessions)
        se.export.clicked.connect(self._export_clicked)
        se.rename.clicked.connect(self._rename_clicked)
        se.delete.clicked.connect(self._delete_clicked)
        b.preset_save.clicked.connect(self._save_preset_clicked)
        b.preset_load.clicked.connect(lambda: self.load_preset(b.presets.currentData() or ""))
        b.preset_delete.clicked.connect(self._delete_preset_clicked)
        se.render_button.clicked.connect(self._render_clicked)
        se.along.clicked.connect(self._play_along_clicked)
        # right-click: MIDI learn (a knob, pad or foot switch on the controller drives it)
        always: list[tuple[QWidget, str]] = [
            (t.play_btn, "play_stop"),
            (t.record_btn, "record"),
            (t.tap_btn, "tap_tempo"),
            (b.temperature, "creativity"),
            (b.density, "density"),
            (b.harmony, "harmony_follow"),
            (b.master, "master_volume"),
        ]
        for widget, target in always:
            add_learn_menu(widget, ss, target, self._call)
        # and every other control the session can be driven by: tempo, click, feel, each
        # strip, the Chords tab's next section, lock and arranger
        try:
            learnable = set(ss.midi_targets())
        except Exception:  # a session without MIDI learn
            learnable = set()
        c = self.chords_panel
        more: list[tuple[QWidget, str]] = [
            (t.tempo, "tempo"),
            (t.metronome, "metronome"),
            (b.feel.swing, "swing"),
            (b.feel.humanise, "humanise"),
            (c.section, "next_section"),
            (c.lock_btn, "lock_form"),
            (c.arranger, "arranger"),
        ]
        for part, strip in self.strips.items():
            more += [(strip.volume, f"volume:{part}"), (strip.mute, f"mute:{part}"), (strip.solo, f"solo:{part}")]
        for widget, target in more:
            if target in learnable:
                add_learn_menu(widget, ss, target, self._call)

    # --------------------------------------------------------------- settings
    def _restore(self) -> None:
        """Put the remembered choices on the controls and send them to the session."""
        s = self.settings
        geo = st.read(s, "window/geometry")
        if geo:
            self.restoreGeometry(geo)
        self.transport.tempo.setValue(max(TEMPO_RANGE[0], min(TEMPO_RANGE[1], st.read(s, "transport/tempo"))))
        self._tempo_changed(self.transport.tempo.value())
        meter = st.read(s, "transport/meter")
        self.transport.meter.setCurrentIndex(max(0, self.transport.meter.findData(meter)))
        self._call(self.session.set_meter, self.transport.meter.currentData())
        self.transport.count_in.setValue(max(0, min(4, st.read(s, "transport/count_in"))))
        self._call(self.session.set_count_in, self.transport.count_in.value())
        self.transport.metronome.setChecked(st.read(s, "transport/metronome"))
        self._call(self.session.set_metronome, self.transport.metronome.isChecked())
        self.transport.key.setCurrentIndex(max(0, self.transport.key.findData(st.read(s, "transport/key"))))
        self.transport.style_menu.setCurrentIndex(max(0, self.transport.style_menu.findData(st.read(s, "band/style"))))
        self._call(self.session.set_style, self.transport.style_menu.currentData())
        self._restore_feel()
        self.chords_panel.split.setValue(st.read(s, "chords/split"))
        self.chords_panel.arranger.setChecked(st.read(s, "chords/arranger"))
        for knob, key, fn in (
            (self.band_panel.temperature, "band/temperature", self.session.set_temperature),
            (self.band_panel.density, "band/density", self.session.set_density),
            (self.band_panel.harmony, "band/harmony_follow", self.session.set_harmony_follow),
            (self.band_panel.master, "band/master", self.session.set_master_volume),
        ):
            knob.setValue(st.read(s, key))
            self._call(fn, knob.value())
        # Parts: the session's defaults (engine/parts.py) unless the player changed them;
        # the strips show the result on the first tick.
        snap = self._safe_snapshot()
        for part in self.strips:
            state = snap.parts.get(part) if snap is not None else None
            saved = {
                a: st.read(s, f"parts/{part}/{a}", getattr(state, a, st.PART_DEFAULTS[a]))
                for a in st.PART_KEYS
                if s.contains(f"parts/{part}/{a}")
            }
            if part == "melody" and s.contains("parts/melody/through"):
                saved["through"] = st.read(s, "parts/melody/through", True)
            if saved:
                self._call(self.session.set_part, part, **saved)
        self.transport.record_btn.setChecked(st.read(s, "transport/record"))
        self._call(self.session.set_recording, self.transport.record_btn.isChecked())
        self.set_input_mode(st.read(s, "input/mode"))
        self.setup_panel.buffer.setCurrentIndex(max(0, self.setup_panel.buffer.findData(self.blocksize)))
        self.setup_panel.auto_buffer.setChecked(st.read(s, "devices/auto_buffer"))
        lo, hi = (int(g) for g in INPUT_GAIN_DB_RANGE)
        self.setup_panel.input_gain.setValue(max(lo, min(hi, st.read(s, "devices/input_gain_db"))))

    def _restore_feel(self) -> None:
        """The remembered feel; what was never set is the style's own."""
        s = self.settings
        feel = style_feel(self.transport.style_menu.currentData())
        feel["humanise"] = 0.0
        for key, name in (
            ("band/swing", "swing"),
            ("band/fills", "fills"),
            ("band/time", "time_feel"),
            ("band/humanise", "humanise"),
        ):
            if s.contains(key):
                feel[name] = st.read(s, key)
        self.band_panel.feel.show_feel(**feel)
        self._feel_changed()

    def _style_feel(self, style: str) -> None:
        """A style the player picks brings its own swing, fills and time (humanise stays)."""
        try:
            self.band_panel.feel.show_feel(**style_feel(style))
        except ValueError:
            return
        self._feel_changed()

    def _feel_changed(self) -> None:
        self._call(self.session.set_feel, **self.band_panel.feel.values())

    def apply_steering(self, arranger: int | None = None, chart: str | None = None) -> None:
        """``liveband play --arranger SPLIT --chart FILE``: the Chords tab's settings for this
        launch (the chart loops from the first bar, the arranger reads chords below SPLIT)."""
        c = self.chords_panel
        if chart and self._call(self.session.load_chart, chart) is not None:
            c.chart_text.setPlainText(self.session.chart_text())
        if arranger is not None:
            c.split.setValue(int(arranger))
            c.arranger.setChecked(True)

    def apply_band(
        self,
        style: str | None = None,
        tempo: float | None = None,
        meter: str | None = None,
        swing: float | None = None,
        fills: str | None = None,
        time_feel: str | None = None,
        humanise: float | None = None,
    ) -> None:
        """Settings for this launch (``liveband play --style ... --swing ...``) put on the
        controls, which send them to the session; None leaves a control as it is."""
        t, f = self.transport, self.band_panel.feel
        if style is not None:
            t.style_menu.setCurrentIndex(max(0, t.style_menu.findData(style)))  # brings its feel
        if meter is not None:
            t.meter.setCurrentIndex(max(0, t.meter.findData(meter)))
        if tempo is not None:
            t.tempo.setValue(float(tempo))
        if any(v is not None for v in (swing, fills, time_feel, humanise)):
            f.show_feel(swing, fills, time_feel, humanise)
            self._feel_changed()

    def save_settings(self) -> None:
        s = self.settings
        st.write(s, "transport/tempo", float(self.transport.tempo.value()))
        st.write(s, "transport/meter", self.transport.meter.currentData())
        st.write(s, "transport/count_in", int(self.transport.count_in.value()))
        st.write(s, "transport/metronome", bool(self.transport.metronome.isChecked()))
        st.write(s, "transport/key", self.transport.key.currentData())
        st.write(s, "transport/record", bool(self.transport.record_btn.isChecked()))
        st.write(s, "band/style", self.transport.style_menu.currentData())
        st.write(s, "band/temperature", float(self.band_panel.temperature.value()))
        st.write(s, "band/density", float(self.band_panel.density.value()))
        st.write(s, "band/harmony_follow", float(self.band_panel.harmony.value()))
        st.write(s, "band/master", float(self.band_panel.master.value()))
        feel = self.band_panel.feel.values()
        for key, name in (
            ("band/swing", "swing"),
            ("band/fills", "fills"),
            ("band/time", "time_feel"),
            ("band/humanise", "humanise"),
        ):
            st.write(s, key, feel[name])
        st.write(s, "chords/arranger", bool(self.chords_panel.arranger.isChecked()))
        st.write(s, "chords/split", int(self.chords_panel.split.value()))
        st.write(s, "input/mode", self.input_mode)
        st.write(s, "devices/blocksize", int(self.setup_panel.buffer.currentData()))
        st.write(s, "devices/auto_buffer", bool(self.setup_panel.auto_buffer.isChecked()))
        st.write(s, "devices/audio_out", self.setup_panel.audio_out.currentData() or "")
        st.write(s, "devices/audio_in", self.setup_panel.audio_in.currentData() or "")
        st.write(s, "devices/input_gain_db", int(self.setup_panel.input_gain.value()))
        st.write(s, "devices/midi_in", self.setup_panel.midi_in.currentData() or "")
        st.write(s, "devices/midi_out", self.setup_panel.midi_out.currentData() or "")
        st.write(s, "devices/sync", self.setup_panel.sync.currentData())
        st.write(s, "devices/sync_delay_ms", float(self.setup_panel.sync_delay.value()))
        st.write(s, "devices/send_clock", bool(self.setup_panel.send_clock.isChecked()))
        for part, strip in self.strips.items():
            st.write(s, f"parts/{part}/mute", strip.mute.isChecked())
            st.write(s, f"parts/{part}/solo", strip.solo.isChecked())
            st.write(s, f"parts/{part}/volume", strip.volume.value() / 100.0)
            st.write(s, f"parts/{part}/program", int(strip.program.currentData()))
            if strip.through is not None:
                st.write(s, f"parts/{part}/through", strip.through.isChecked())
        st.write(s, "window/geometry", self.saveGeometry().data())
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

    def confirm(self, message: str) -> None:
        """A brief success in the notice area (green, no warning sign) for CONFIRM_S."""
        self._confirmation = (time.monotonic(), message)
        self._show_notices(self.last_snapshot)

    def flash(self, message: str) -> None:
        """Show a problem in the notice banner for ~8 s."""
        self._messages.append(message)
        QTimer.singleShot(8000, lambda m=message: self._messages.remove(m) if m in self._messages else None)
        self._show_notices(self.last_snapshot)

    def toggle_play(self) -> None:
        if self._starting is not None:
            return
        snap = self._safe_snapshot()
        playing = snap.playing if snap is not None else self.transport.play_btn.isChecked()
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
        self.transport.play_btn.setText("…")
        self.transport.play_btn.setToolTip("starting the band…")
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
        self.transport.play_btn.setToolTip("play / stop (Space)")
        if not ok:
            self.flash(f"Could not start the band: {message}")
        self.tick()

    def stop(self) -> None:
        if self._along is not None:
            self._along.stop()
            self._along = None
        if self._starting is not None:  # let the start finish first; stopping then is instant
            self._starting.wait()
            self._starting = None
        self._release_held()
        self._call(self.session.stop)
        self.tick()

    def tap(self) -> None:
        bpm = self._call(self.session.tap_tempo)
        if bpm and math.isfinite(bpm) and TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1]:
            self.transport.tempo.blockSignals(True)
            self.transport.tempo.setValue(float(bpm))
            self.transport.tempo.blockSignals(False)

    def _tempo_changed(self, bpm: float) -> None:
        self._call(self.session.set_tempo, float(bpm))

    def _key_changed(self, i: int) -> None:
        fn = getattr(self.session, "set_key", None)
        key = self.transport.key.itemData(i)
        if callable(fn):
            self._call(fn, None if key == "Auto" else key)

    @property
    def input_mode(self) -> str:
        return self.transport.input_mode

    def set_input_mode(self, mode: str) -> None:
        if mode not in self.transport.mode_buttons:
            mode = "keyboard"
        self._release_held()
        self.transport.mode_buttons[mode].setChecked(True)
        self._call(self.session.set_input_mode, mode)

    def _part_changed(self, part: str, change: dict) -> None:
        self._call(self.session.set_part, part, **change)

    # ----------------------------------------------------------------- devices
    def _refresh_devices(self) -> None:
        saved = {k: st.read(self.settings, f"devices/{k}") for k in ("audio_out", "audio_in", "midi_in", "midi_out")}
        self.setup_panel.show_devices(
            self._call(self.session.audio_devices) or {}, self._call(self.session.midi_ports) or {}, saved
        )

    def _restore_devices(self) -> None:
        """Move the session to the remembered devices when they are still connected; say so
        when one has gone (the session stays on the system default)."""
        su = self.setup_panel
        gone = []
        for combo, key, label in (
            (su.audio_out, "audio_out", "audio output"),
            (su.audio_in, "audio_in", "microphone"),
            (su.midi_in, "midi_in", "MIDI input"),
            (su.midi_out, "midi_out", "MIDI output"),
        ):
            saved = st.read(self.settings, f"devices/{key}")
            if saved and combo.currentData() != saved:
                gone.append(f"your {label} “{saved.split(':', 1)[-1] or 'LiveBand band'}”")
        if su.audio_out.currentData() or su.audio_in.currentData():
            self._apply_audio()
        if su.midi_in.currentData():
            self._apply_midi_in()
        if su.midi_out.currentData():
            self._apply_midi_out()
        delay = st.read(self.settings, "devices/sync_delay_ms")
        if delay:
            su.sync_delay.setValue(delay)  # sent to the session by valueChanged
        if st.read(self.settings, "devices/send_clock"):
            su.send_clock.setChecked(True)
        sync = st.read(self.settings, "devices/sync")
        if sync != "internal" and set_combo(su.sync, sync):
            self._apply_sync()
        if gone:
            what = " and ".join(gone)
            self.flash(
                f"{what[0].upper()}{what[1:]} {'is' if len(gone) == 1 else 'are'} not connected; "
                "using the system default. Choose another in Setup."
            )

    def _apply_audio(self) -> None:
        out = self.setup_panel.audio_out.currentData() or None
        inp = self.setup_panel.audio_in.currentData() or None
        bs = self.blocksize = int(self.setup_panel.buffer.currentData())
        self.health.reset()
        # Re-opening the stream can take a moment: do it off the UI thread.
        worker = CallWorker(lambda: self.session.set_audio_devices(output=out, input=inp, blocksize=bs), self)
        worker.done.connect(lambda ok, msg: None if ok else self.flash(f"Could not switch audio: {msg}"))
        self._start(worker, "")

    def _offer_buffer(self, blocksize: int | None) -> None:
        """Repeated dropouts: the next buffer size as a button in the notice area, or
        switched to at once when Setup allows it."""
        if blocksize not in BLOCKSIZES:
            blocksize = None
        if blocksize is not None and self.setup_panel.auto_buffer.isChecked():
            self.use_buffer(blocksize, automatic=True)
            blocksize = None
        if blocksize is None:
            self.notice_action.hide()
            return
        if self.notice_action.property("blocksize") != blocksize or self.notice_action.isHidden():
            self.notice_action.setProperty("blocksize", blocksize)
            self.notice_action.setText(f"Use {blocksize} frames")
            self.notice_action.setToolTip(
                f"switch the audio buffer from {self.blocksize} to {blocksize} frames "
                "now (more latency, fewer dropouts); Setup can do this by itself"
            )
            self.notice_action.show()

    def use_buffer(self, blocksize: int, automatic: bool = False) -> None:
        """Switch the audio buffer to ``blocksize`` frames, as the Setup picker does (the
        session's own stream switch; the band plays on)."""
        if not set_combo(self.setup_panel.buffer, int(blocksize)):
            return
        self.notice_action.hide()
        self._apply_audio()
        self.verdict = Verdict(OK, "")
        self.confirm(f"audio buffer raised to {blocksize} frames" + (" after repeated dropouts" if automatic else ""))

    def _apply_midi_in(self) -> None:
        combo = self.setup_panel.midi_in
        self._open_midi("in", combo, lambda data: self.session.open_midi_input(data or None))

    def _apply_sync(self) -> None:
        """Tempo sync from Setup; a refusal (Link cannot start) says why and puts the picker back."""
        combo = self.setup_panel.sync
        if (
            self._call(self.session.set_sync, combo.currentData()) is None
            and self.session.sync_mode != combo.currentData()
        ):
            set_combo(combo, self.session.sync_mode)
        self.setup_panel.sync_delay.setEnabled(combo.currentData() == "midi clock")

    def _apply_midi_out(self) -> None:
        def open_out(data: str) -> None:
            if data.startswith("virtual:"):
                self.session.open_midi_output(data.split(":", 1)[1] or None, virtual=True)
            else:
                self.session.open_midi_output(data or None, virtual=False)

        self._open_midi("out", self.setup_panel.midi_out, open_out)

    def _open_midi(self, which: str, combo, open_port) -> None:
        """Open the port chosen in ``combo``; when it fails, say so and put the picker back
        on the port that was open, so the failed choice is neither shown nor remembered."""
        data = combo.currentData() or ""
        try:
            open_port(data)
        except Exception as exc:  # a busy or vanished port must not take the window down
            label = combo.currentText()
            set_combo(combo, self._midi_ok[which])
            self.flash(
                f"Could not open MIDI {'input' if which == 'in' else 'output'} “{label}”: "
                f"{first_line(exc)}; kept {combo.currentText()}."
            )
            return
        self._midi_ok[which] = data

    # ---------------------------------------------------------------- sessions
    def _refresh_sessions(self) -> None:
        self.sessions_panel.show_sessions(self._call(self.session.list_sessions) or [])

    def rename_selected(self, new: str) -> bool:
        """Rename the selected take to ``new``; a refusal is one line in the notices."""
        name = self.sessions_panel.selected()
        if name is None:
            self.flash("Choose a recorded session to rename first.")
            return False
        try:
            done = self.session.rename_session(name, new.strip())
        except Exception as exc:
            self.flash(first_line(exc))
            return False
        self._refresh_sessions()
        self.confirm(f"renamed {name} to {done}")
        return True

    def delete_selected(self) -> bool:
        name = self.sessions_panel.selected()
        if name is None:
            self.flash("Choose a recorded session to delete first.")
            return False
        try:
            self.session.delete_session(name)
        except Exception as exc:
            self.flash(first_line(exc))
            return False
        self._refresh_sessions()
        self.confirm(f"deleted {name}")
        return True

    def _rename_clicked(self) -> None:
        name = self.sessions_panel.selected()
        if name is None:
            self.flash("Choose a recorded session to rename first.")
            return
        new, ok = QInputDialog.getText(self, "Rename take", "New name:", text=name)
        if ok and new.strip() and new.strip() != name:
            self.rename_selected(new)

    def _delete_clicked(self) -> None:
        name = self.sessions_panel.selected()
        if name is None:
            self.flash("Choose a recorded session to delete first.")
            return
        if (
            QMessageBox.question(self, "Delete take", f"Delete the take {name} (its WAV, MIDI and notes)?")
            == QMessageBox.StandardButton.Yes
        ):
            self.delete_selected()

    # ----------------------------------------------------------------- presets
    def _refresh_presets(self, current: str | None = None) -> None:
        self.band_panel.show_presets(pr.list_presets(), current)

    def save_preset(self, name: str) -> bool:
        """Save the band's setup now as preset ``name``; a refusal is one line."""
        try:
            path = pr.save_preset(name.strip(), pr.capture(self.session))
        except (pr.PresetError, ValueError, AttributeError) as exc:
            self.flash(first_line(exc))
            return False
        self._refresh_presets(path.stem)
        self.confirm(f"preset “{path.stem}” saved")
        return True

    def load_preset(self, name: str) -> bool:
        """Put preset ``name`` on the band; a corrupt one is one line and nothing changes."""
        try:
            preset = pr.load_preset(name)
        except pr.PresetError as exc:
            self.flash(first_line(exc))
            return False
        return self.use_preset(preset, name)

    def use_preset(self, preset: pr.Preset, name: str = "") -> bool:
        """Put a loaded (checked) preset on the session and show it on the controls."""
        try:
            pr.apply(self.session, preset)
        except Exception as exc:
            self.flash(f"preset “{name}”: {first_line(exc)}")
            return False
        t, b = self.transport, self.band_panel
        for widget, value in (
            (t.tempo, preset.tempo),
            (b.temperature, preset.temperature),
            (b.density, preset.density),
            (b.harmony, preset.harmony_follow),
            (b.master, preset.master),
        ):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        set_combo(t.meter, preset.meter)
        set_combo(t.style_menu, preset.style)
        # the preset's feel; unset parts of it are the style's own
        shown = dict(style_feel(preset.style))
        shown.update(
            {
                k: v
                for k, v in (("swing", preset.swing), ("fills", preset.fills), ("time_feel", preset.time_feel))
                if v is not None
            }
        )
        b.feel.show_feel(humanise=preset.humanise, **shown)
        if not set_combo(t.key, preset.key or "Auto"):
            set_combo(t.key, "Auto")
        self.chords_panel.chart_text.setPlainText(preset.chart or "")  # the chart it plays, or none
        self._refresh_presets(name or None)
        self.confirm(f"preset “{name}” loaded" if name else "preset loaded")
        return True

    def _save_preset_clicked(self) -> None:
        name, ok = QInputDialog.getText(
            self, "Save preset", "Preset name:", text=self.band_panel.presets.currentData() or ""
        )
        if ok and name.strip():
            if (
                name.strip() in pr.list_presets()
                and QMessageBox.question(self, "Save preset", f"Replace the preset “{name.strip()}”?")
                != QMessageBox.StandardButton.Yes
            ):
                return
            self.save_preset(name)

    def _delete_preset_clicked(self) -> None:
        name = self.band_panel.presets.currentData()
        if not name:
            return
        if (
            QMessageBox.question(self, "Delete preset", f"Delete the preset “{name}”?")
            == QMessageBox.StandardButton.Yes
        ):
            try:
                pr.delete_preset(name)
            except pr.PresetError as exc:
                self.flash(first_line(exc))
                return
            self._refresh_presets()
            self.confirm(f"preset “{name}” deleted")

    def export_selected(self, dest: str) -> ExportWorker | None:
        """Export the selected session into ``dest`` in a worker thread."""
        name = self.sessions_panel.selected()
        if name is None:
            self.flash("Choose a recorded session to export first.")
            return None
        worker = ExportWorker(self.session, name, dest, self)
        worker.done.connect(self._job_done)
        self._start(worker, f"Exporting {name}…")
        return worker

    def _export_clicked(self) -> None:
        dest = QFileDialog.getExistingDirectory(self, "Export session to")
        if dest:
            self.export_selected(dest)

    def render_file(
        self, path: str, out_wav: str, midi_out: str | None = None, stems: bool | None = None
    ) -> RenderWorker:
        """Accompany ``path`` offline into ``out_wav`` (+ ``midi_out``, + a WAV per part when
        ``stems``, default: the Sessions tab's "stems" box) in a worker thread."""
        if stems is None:
            stems = self.sessions_panel.stems.isChecked()
        worker = RenderWorker(self.session, path, out_wav, midi_out, self, stems=stems)
        worker.progress.connect(lambda f: self.sessions_panel.progress.setValue(int(f * 1000)))
        worker.done.connect(self._job_done)
        self.sessions_panel.progress.setValue(0)
        self.sessions_panel.progress.show()
        self._start(worker, f"Rendering {Path(path).name}…")
        return worker

    def _render_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Melody to accompany", "", "Melodies (*.mid *.midi *.wav);;All files (*)"
        )
        if not path:
            return
        stem = os.path.splitext(path)[0]
        out, _ = QFileDialog.getSaveFileName(self, "Save the band as", stem + "-band.wav", "WAV audio (*.wav)")
        if out:
            self.render_file(path, out, os.path.splitext(out)[0] + ".mid")

    def _play_along_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play along with", "", "Melodies (*.mid *.midi);;All files (*)")
        if path:
            self.play_along(path)

    def play_along(self, path: str) -> NotePlayer | None:
        """Play a melody file's notes as the player's notes from the next bar (pressing play
        if needed); the band follows them as it follows you. None when the file is unusable."""
        try:
            notes = melody_steps(path)
        except ValueError as exc:
            self.flash(str(exc))
            return None
        if self._along is not None:
            self._along.stop()
        player = NotePlayer(self.session, notes, self.play_note, parent=self)
        name = Path(path).name
        player.finished.connect(lambda: self.sessions_panel.job_label.setText(f"Played along with {name}"))
        self._along = player
        self.sessions_panel.job_label.setText(f"Playing along with {name} ({len(notes)} notes)…")
        if not (self.last_snapshot is not None and self.last_snapshot.playing):
            self.play()
        player.start()
        return player

    def _start(self, worker, label: str) -> None:
        self._workers.append(worker)
        worker.finished.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        if label:
            self.sessions_panel.job_label.setText(label)
        worker.start()

    def wait_for_workers(self, ms: int = 30000) -> None:
        """Block until background calls finish (closing, tests)."""
        for w in list(self._workers):
            w.wait(ms)

    def _job_done(self, ok: bool, message: str) -> None:
        self.sessions_panel.job_label.setText(message)
        self.sessions_panel.progress.setValue(1000 if ok else self.sessions_panel.progress.value())
        if not ok:
            self.flash(message)
        self._refresh_sessions()

    # ---------------------------------------------------------------- the tick
    def _safe_snapshot(self):
        try:
            return self.session.snapshot()
        except Exception:
            return None

    def _follow_buttons(self) -> None:
        """Record and click switched from MIDI (MIDI learn): show it, without sending it back."""
        for button, on in (
            (self.transport.record_btn, getattr(self.session, "recording_enabled", None)),
            (self.transport.metronome, getattr(self.session, "metronome", None)),
        ):
            if isinstance(on, bool) and button.isChecked() != on:
                button.blockSignals(True)
                button.setChecked(on)
                button.blockSignals(False)

    def _follow_knobs(self) -> None:
        """A knob moved from MIDI (MIDI learn) changed the session: show it, without sending
        it back."""
        cfg = getattr(self.session, "engine_config", None)
        master = getattr(self.session, "master_volume", None)
        if cfg is None or not isinstance(master, float):
            return
        b = self.band_panel
        for knob, v in (
            (b.temperature, cfg.temperature),
            (b.density, cfg.density),
            (b.harmony, cfg.harmony_follow),
            (b.master, master),
        ):
            if abs(knob.value() - v) > 1e-6:
                knob.blockSignals(True)
                knob.setValue(v)
                knob.blockSignals(False)
        # the feel too (a learned swing or humanise knob); None is the style's, shown already
        shown = b.feel.values()
        now = {k: getattr(cfg, k, None) for k in ("swing", "fills", "time_feel", "humanise")}
        if any(
            v is not None and (abs(v - shown[k]) > 1e-3 if isinstance(v, float) else v != shown[k])
            for k, v in now.items()
        ):
            b.feel.show_feel(**now)

    def tick(self) -> None:
        """Poll the session and redraw (Thread: UI, every TICK_MS)."""
        snap = self._safe_snapshot()
        if snap is None:
            return
        self.last_snapshot = snap
        self.transport.play_btn.blockSignals(True)
        self.transport.play_btn.setChecked(snap.playing)
        self.transport.play_btn.setText("…" if self._starting is not None else "■" if snap.playing else "▶")
        self.transport.play_btn.blockSignals(False)
        # The button is the wish to record takes; the text says whether a take is being written.
        rec_text = "● RECORDING" if snap.recording else "● REC"
        if self.last_recording and not snap.recording:
            self._refresh_sessions()  # a take was just saved
        self.last_recording = snap.recording
        if self.transport.record_btn.text() != rec_text:
            self.transport.record_btn.setText(rec_text)
        if snap.input_mode != self.input_mode and snap.input_mode in self.transport.mode_buttons:
            self._release_held()
            self.transport.mode_buttons[snap.input_mode].setChecked(True)
        if not self.transport.tempo.hasFocus() and abs(snap.tempo - self.transport.tempo.value()) > 0.05:
            self.transport.tempo.blockSignals(True)
            self.transport.tempo.setValue(snap.tempo)
            self.transport.tempo.blockSignals(False)
        self._follow_knobs()
        self._follow_buttons()
        self.transport.chord_label.setText(snap.chord or "–")
        if snap.playing and not snap.counting_in:
            bar, beat = bar_steps(snap.meter), beat_steps(snap.meter)
            s = max(0.0, snap.step)
            self.transport.position.setText(
                f"{int(s // bar) + 1}.{int(s % bar // beat) + 1}" + (f" {snap.section}" if snap.section else "")
            )
        else:
            self.transport.position.setText("count" if snap.counting_in else "–")
        if self.tabs.currentWidget() is self.chords_panel:
            self.chords_panel.show_state(self.session.form_state(), self.session.chart_sections())
        self.transport.key_label.setText(f"key: {snap.key}" if snap.key else "key: listening…")
        auto = f"Auto: {snap.key}" if snap.key else "Auto"
        if self.transport.key.itemText(0) != auto:
            self.transport.key.setItemText(0, auto)
        self.transport.level.set_db(snap.input_level_db)
        hp = snap.hummed_pitch
        self.transport.hum_label.setText(note_name(int(round(hp))) if hp is not None and math.isfinite(hp) else "")
        if snap.playing:
            try:
                notes = self.session.roll(snap.step - self.roll.behind_steps)
            except Exception:  # a view must never take the window down
                notes = []
            self.roll.set_frame(snap.step, notes, hp, snap.chord, snap.meter, True, snap.counting_in)
        elif self.roll.playing:
            self.roll.freeze()  # stopped: the last take stays on screen
        for part, strip in self.strips.items():
            state = snap.parts.get(part)
            if state is not None and not strip.volume.isSliderDown():
                strip.show_state(state)
        self.verdict = self.health.update(snap, self.blocksize)
        self._offer_buffer(self.verdict.offer)
        self._show_health(snap)
        self._show_notices(snap)

    def _show_health(self, snap) -> None:
        info = (
            f"Output latency {snap.audio_latency_ms:.1f} ms with {self.blocksize}-frame buffers. "
            f"Band model: {snap.backend}."
        )
        if self.setup_panel.audio_info.text() != info:
            self.setup_panel.audio_info.setText(info)
        self.health_bar.show_snapshot(snap, self.verdict)

    def notice_lines(self, snap=None, plain: bool = True) -> list[str]:
        """Every problem the banner says right now (session notices, health advice, our own
        messages), in plain words (``plain=False``: as they were given)."""
        lines = list(snap.notices) if snap is not None else []
        if self.verdict.level != OK and self.verdict.message:
            lines.append(self.verdict.message)
        lines.extend(self._messages)
        return [plain_words(line) for line in lines] if plain else lines

    def confirmation(self, snap=None) -> str:
        """The brief success shown now ("take saved"), if any."""
        t, mine = self._confirmation
        if mine and time.monotonic() - t < CONFIRM_S:
            return mine
        return plain_words(getattr(snap, "confirmation", "") or "") if snap is not None else ""

    def _show_notices(self, snap) -> None:
        """A confirmation (a check mark) for a moment, and the problems (a warning sign each),
        in a box of fixed height: lines are elided to its width, problems beyond its lines
        are counted on the last one, and the tooltip holds the whole text."""
        lines = self.notice_lines(snap)
        # the answer to what the player just did comes first, newest first: a box full of
        # standing warnings must not hide it behind "… and N more"
        mine = [plain_words(m) for m in reversed(self._messages)]
        lines = mine + [line for line in lines if line not in mine]
        ok = self.confirmation(snap)
        shown = [f"⚠ {line}" for line in lines]
        if len(shown) > NOTICE_LINES - bool(ok):
            keep = NOTICE_LINES - bool(ok) - 1
            shown = shown[:keep] + [f"⚠ … and {len(shown) - keep} more (hover to read all)"]
        if ok:
            shown.insert(0, f"✓ {ok[:1].upper()}{ok[1:]}")
        level = ("bad" if self.verdict.level == BAD else "warn") if lines else "ok" if ok else "none"
        fm = self.notice_text.fontMetrics()
        # before the window is laid out the label has no real width: elide once it has
        width = max(80, self.notice_text.width()) if self.notice_text.isVisible() else 1 << 16
        text = "<br>".join(html.escape(fm.elidedText(line, Qt.TextElideMode.ElideRight, width)) for line in shown)
        if self.notice.property("level") != level:
            self.notice.setProperty("level", level)
            style = self.notice.style()
            if style is not None:
                style.unpolish(self.notice)
                style.polish(self.notice)
        if self.notice_text.text() != text:
            self.notice_text.setText(text)
            self.notice_text.setToolTip("\n".join(self.notice_lines(snap, plain=False)))

    # --------------------------------------------------------------- keyboard
    @staticmethod
    def _is_text_entry(w) -> bool:
        """A free-text box keeps every key; number boxes (tempo, count-in) take only digits,
        so letters, Space and T still play the instrument while they have the focus."""
        return (isinstance(w, QLineEdit) and not isinstance(w.parent(), QAbstractSpinBox)) or isinstance(
            w, QPlainTextEdit
        )  # the Chords tab's chart

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
        if key == Qt.Key.Key_R:
            if press and not event.isAutoRepeat():
                self.transport.record_btn.toggle()
            return True
        if key == Qt.Key.Key_Escape:
            if press and self.last_snapshot is not None and self.last_snapshot.playing:
                self.stop()
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
                    self.band_panel.onscreen.base = self.keyboard.base_pitch
                    self.band_panel.onscreen.update()
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
        lit = set(self.band_panel.onscreen.lit)
        (lit.add if down else lit.discard)(pitch)
        self.band_panel.onscreen.set_lit(lit)

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
        if self._along is not None:
            self._along.stop()
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

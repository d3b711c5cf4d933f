"""The window's panels: a mixer strip per band part, the Band / Setup / Sessions tabs and
the health bar. Widgets only; MainWindow connects them to the session. Thread: UI only."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from liveband.config import (
    DEFAULT_DENSITY,
    DEFAULT_HARMONY_FOLLOW,
    DEFAULT_LUFS,
    DEFAULT_TEMPERATURE,
    INPUT_GAIN_DB_RANGE,
    SYNC_DELAY_MS_RANGE,
    TEMPERATURE_RANGE,
)
from liveband.gm import program_choices
from ui import theme
from ui.feel import FeelControls
from ui.health import BAD, OK, Verdict
from ui.onscreen import OnScreenKeys
from ui.widgets import Knob

BLOCKSIZES = (64, 128, 256, 512, 1024, 2048)
# each input mode (liveband.config.INPUT_MODES) as the transport's buttons and the takes list name it
INPUT_LABELS = {"keyboard": "Keys", "midi": "MIDI", "mic": "Hum"}


def panel_frame() -> tuple[QFrame, QVBoxLayout]:
    """A rounded panel (theme "panel") with a vertical layout."""
    f = QFrame()
    f.setObjectName("panel")
    lay = QVBoxLayout(f)
    lay.setContentsMargins(10, 8, 10, 8)
    return f, lay


def caption(text: str) -> QLabel:
    lab = QLabel(text.upper())
    lab.setObjectName("caption")
    return lab


def set_combo(combo: QComboBox, data) -> bool:
    """Select the item carrying ``data`` without emitting signals; False when absent."""
    i = combo.findData(data)
    if i < 0:
        return False
    combo.blockSignals(True)
    combo.setCurrentIndex(i)
    combo.blockSignals(False)
    return True


def _no_focus(*widgets) -> None:
    # Controls never take the keyboard focus: the keys belong to the instrument.
    for w in widgets:
        w.setFocusPolicy(Qt.FocusPolicy.NoFocus)


class PartStrip(QFrame):
    """One part in the mixer: name, instrument, mute, solo, volume; the player's own part
    ("melody", shown as "You") also a Thru switch: off when a hardware synth sounds it."""

    changed = pyqtSignal(str, dict)  # part, {"mute"|"solo"|"volume"|"program"|"through": value}

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
        for prog, label in program_choices(part):
            self.program.addItem(label, prog)
        self.program.setMinimumContentsLength(10)
        self.program.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mute = QPushButton("M")
        self.mute.setObjectName("mute")
        self.solo = QPushButton("S")
        self.solo.setObjectName("solo")
        for b, tip in ((self.mute, f"mute the {part}"), (self.solo, f"solo the {part}")):
            b.setCheckable(True)
            b.setFixedWidth(30)
            b.setToolTip(tip)
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setToolTip(f"{part} volume")
        self.through: QPushButton | None = None
        _no_focus(self.program, self.mute, self.solo, self.volume)
        lay.addWidget(name, 0, 0)
        lay.addWidget(self.mute, 0, 1)
        lay.addWidget(self.solo, 0, 2)
        cols = 3
        if part == "melody":
            self.through = QPushButton("Thru")
            self.through.setObjectName("through")
            self.through.setCheckable(True)
            self.through.setChecked(True)
            self.through.setFixedWidth(44)
            self.through.setToolTip(
                "sound your notes here; turn off when a hardware synth plays them "
                "(they still reach the band, MIDI out and takes)"
            )
            _no_focus(self.through)
            lay.addWidget(self.through, 0, 3)
            self.through.toggled.connect(lambda on: self.changed.emit(self.part, {"through": on}))
            cols = 4
        lay.addWidget(self.program, 1, 0, 1, cols)
        lay.addWidget(self.volume, 2, 0, 1, cols)
        self.mute.toggled.connect(lambda on: self.changed.emit(self.part, {"mute": on}))
        self.solo.toggled.connect(lambda on: self.changed.emit(self.part, {"solo": on}))
        self.volume.valueChanged.connect(lambda v: self.changed.emit(self.part, {"volume": v / 100.0}))
        self.program.currentIndexChanged.connect(
            lambda i: self.changed.emit(self.part, {"program": int(self.program.itemData(i))})
        )

    def show_state(self, state) -> None:
        """Reflect a PartState without emitting ``changed``."""
        buttons = [(self.mute, state.mute), (self.solo, state.solo)]
        if self.through is not None:
            buttons.append((self.through, getattr(state, "through", True)))
        for w, v in buttons:
            w.blockSignals(True)
            w.setChecked(bool(v))
            w.blockSignals(False)
        self.volume.blockSignals(True)
        self.volume.setValue(int(round(state.volume * 100)))
        self.volume.blockSignals(False)
        if not set_combo(self.program, int(state.program)):
            self.program.blockSignals(True)
            self.program.addItem(f"program {state.program}", int(state.program))
            self.program.setCurrentIndex(self.program.count() - 1)
            self.program.blockSignals(False)


class BandPanel(QScrollArea):
    """How the band plays (creativity, intensity, harmony follow, master), its feel, an
    on-screen piano with the key help and the presets. It scrolls, so the window still
    fits a laptop screen (the tab is taller than the mixer beside it)."""

    def __init__(self, keyboard_base: int = 60) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        body = QWidget()
        self.setWidget(body)
        viewport = self.viewport()
        if viewport is not None:
            viewport.setAutoFillBackground(False)
        body.setAutoFillBackground(False)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.addWidget(caption("how the band plays"))
        grid = QGridLayout()
        pct = lambda v: f"{v * 100:.0f}%"  # noqa: E731
        self.temperature = Knob(
            "creativity",
            *TEMPERATURE_RANGE,
            DEFAULT_TEMPERATURE,
            fmt=lambda v: f"{v:.2f}",
            color=theme.PART_COLORS["pad"],
            tooltip="low: safe, predictable; high: adventurous",
        )
        self.density = Knob(
            "intensity",
            0.0,
            1.0,
            DEFAULT_DENSITY,
            fmt=pct,
            color=theme.PART_COLORS["bass"],
            tooltip="how busy the band plays",
        )
        self.harmony = Knob(
            "follow",
            0.0,
            1.0,
            DEFAULT_HARMONY_FOLLOW,
            fmt=pct,
            color=theme.PART_COLORS["keys"],
            tooltip="how strictly the harmony follows your notes",
        )
        self.master = Knob("master", 0.0, 1.0, 0.8, fmt=pct, color=theme.ACCENT, tooltip="master volume")
        for i, k in enumerate((self.temperature, self.density, self.harmony, self.master)):
            grid.addWidget(k, i // 2, i % 2, Qt.AlignmentFlag.AlignHCenter)
        lay.addLayout(grid)
        lay.addSpacing(4)
        lay.addWidget(caption("feel"))
        self.feel = FeelControls()
        lay.addWidget(self.feel)
        lay.addSpacing(6)
        lay.addWidget(caption("play here or on your keyboard"))
        self.onscreen = OnScreenKeys(base=keyboard_base)
        lay.addWidget(self.onscreen)
        help_ = QLabel(
            "<b>Space</b> play / stop &nbsp; <b>Esc</b> stop &nbsp; <b>T</b> tap tempo &nbsp; <b>R</b> record<br>"
            "<b>Z S X D C V G B H N J M ,</b> play notes<br><b>[ ]</b> octave down / up"
        )
        help_.setObjectName("dim")
        help_.setWordWrap(True)
        lay.addSpacing(6)
        lay.addWidget(caption("presets"))
        self.presets = QComboBox()
        self.presets.setToolTip("saved band setups: style, tempo, meter, key, knobs, feel and the mixer")
        lay.addWidget(self.presets)
        row = QHBoxLayout()
        self.preset_save = QPushButton("Save…")
        self.preset_load = QPushButton("Load")
        self.preset_delete = QPushButton("Delete")
        for b in (self.preset_save, self.preset_load, self.preset_delete):
            row.addWidget(b)
        lay.addLayout(row)
        _no_focus(self.presets, self.preset_save, self.preset_load, self.preset_delete)
        lay.addSpacing(6)  # the key help last: what a small screen scrolls to
        lay.addWidget(caption("keys"))
        lay.addWidget(help_)
        lay.addStretch(1)

    def show_presets(self, names: list[str], current: str | None = None) -> None:
        """Fill the preset picker, keeping ``current`` (or the chosen one) selected."""
        keep = current if current is not None else self.presets.currentData()
        self.presets.blockSignals(True)
        self.presets.clear()
        for n in names:
            self.presets.addItem(n, n)
        i = self.presets.findData(keep)
        self.presets.setCurrentIndex(i if i >= 0 else 0)
        self.presets.blockSignals(False)
        for b in (self.preset_load, self.preset_delete):
            b.setEnabled(bool(names))


class SetupPanel(QWidget):
    """Audio and MIDI devices and the buffer size."""

    def __init__(self) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.setSpacing(4)
        self.audio_out = QComboBox()
        self.audio_in = QComboBox()
        self.buffer = QComboBox()
        for b in BLOCKSIZES:
            self.buffer.addItem(f"{b} frames", b)
        self.buffer.setToolTip("smaller: lower latency; larger: fewer dropouts on a busy computer")
        self.auto_buffer = QCheckBox("raise it by itself on repeated dropouts")
        self.auto_buffer.setToolTip(
            "on repeated audio dropouts, switch to the next buffer size by itself "
            "(otherwise the notice offers it as a button)"
        )
        self.midi_in = QComboBox()
        self.midi_out = QComboBox()
        self.sync = QComboBox()
        for label, mode in (
            ("own tempo", "internal"),
            ("MIDI clock (from the MIDI controller in)", "midi clock"),
            ("Ableton Link", "link"),
        ):
            self.sync.addItem(label, mode)
        self.sync.setToolTip(
            "play to another device's tempo: a DAW or drum machine's MIDI clock (its start/stop "
            "start and stop the band), or Ableton Link on this network (its apps' play/stop "
            "start and stop the band, and yours start and stop them)"
        )
        self.sync_delay = QDoubleSpinBox()
        self.sync_delay.setRange(*SYNC_DELAY_MS_RANGE)
        self.sync_delay.setDecimals(1)
        self.sync_delay.setSingleStep(0.5)
        self.sync_delay.setSuffix(" ms")
        self.sync_delay.setToolTip(
            "MIDI clock delay: how late the clock reaches LiveBand (a DAW's “MIDI clock "
            "sync delay”); the band plays this much earlier. About 3 ms through JACK."
        )
        self.sync_delay.setEnabled(False)  # MIDI clock only: Link's beat is already where it sounds
        sync_row = QWidget()
        row = QHBoxLayout(sync_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.sync, 1)
        row.addWidget(QLabel("delay"))
        row.addWidget(self.sync_delay)
        self.send_clock = QCheckBox("send MIDI clock and start/stop")
        self.send_clock.setToolTip(
            "the MIDI out also carries LiveBand's tempo (24 clocks per beat) and play/stop, "
            "so a DAW or drum machine follows the band"
        )
        self.input_gain = QSpinBox()
        self.input_gain.setRange(*(int(g) for g in INPUT_GAIN_DB_RANGE))
        self.input_gain.setSuffix(" dB")
        self.input_gain.setToolTip(
            "microphone gain before the pitch tracker: raise it for a quiet voice, "
            "lower it when LiveBand says the input clips"
        )
        for text, combo in (
            ("audio output", self.audio_out),
            ("audio input (microphone)", self.audio_in),
            ("microphone gain", self.input_gain),
            ("buffer size", self.buffer),
            ("MIDI controller in", self.midi_in),
            ("MIDI out (to a DAW)", self.midi_out),
            ("tempo sync", sync_row),
        ):
            lay.addWidget(caption(text))
            lay.addWidget(combo)
            if combo is self.midi_out:
                lay.addWidget(self.send_clock)
            if combo is self.buffer:
                lay.addWidget(self.auto_buffer)
            lay.addSpacing(4)
        self.rescan = QPushButton("Rescan devices")
        _no_focus(
            self.audio_out,
            self.audio_in,
            self.input_gain,
            self.buffer,
            self.auto_buffer,
            self.midi_in,
            self.midi_out,
            self.sync,
            self.sync_delay,
            self.send_clock,
            self.rescan,
        )
        lay.addWidget(self.rescan)
        self.audio_info = QLabel("")
        self.audio_info.setWordWrap(True)
        lay.addWidget(self.audio_info)
        self.hint = QLabel("")
        self.hint.setObjectName("dim")
        self.hint.setWordWrap(True)
        lay.addWidget(self.hint)
        lay.addStretch(1)

    def show_devices(self, audio: dict, midi: dict, saved: dict[str, str]) -> None:
        """Fill the pickers (audio/midi as Session.audio_devices()/midi_ports() return them)
        and select the remembered choices; say what is missing and how to fix it."""

        def fill(combo: QComboBox, names, none_label: str, chosen: str, extra=()) -> None:
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(none_label, "")
            for label, data in extra:
                combo.addItem(label, data)
            for n in names or ():
                combo.addItem(str(n), str(n))
            i = combo.findData(chosen)
            combo.setCurrentIndex(i if i >= 0 else 0)
            combo.blockSignals(False)

        ours = lambda names: [n for n in names or () if not str(n).startswith("LiveBand")]  # noqa: E731
        fill(self.audio_out, audio.get("outputs"), "System default", saved.get("audio_out", ""))
        fill(self.audio_in, audio.get("inputs"), "System default", saved.get("audio_in", ""))
        fill(
            self.midi_in,
            ours(midi.get("inputs")),
            "None",
            saved.get("midi_in", ""),
            extra=(("Virtual port “LiveBand in”", "LiveBand in"),),
        )
        fill(
            self.midi_out,
            ours(midi.get("outputs")),
            "Off",
            saved.get("midi_out", ""),
            extra=(("Virtual port “LiveBand band”", "virtual:"),),
        )
        missing = []
        if not audio.get("outputs"):
            missing.append(
                "No audio output found: start PulseAudio/PipeWire or JACK (or plug in a sound "
                "card), then Rescan. Offline render still works."
            )
        if not midi.get("inputs"):
            missing.append(
                "No MIDI controller found: plug one in and press Rescan, or play with the computer keyboard."
            )
        self.hint.setText("\n\n".join(missing))


class SessionsPanel(QWidget):
    """Recorded takes (list, export) and melody files (render offline, play along)."""

    def __init__(self) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(caption("recorded sessions"))
        self.session_list = QListWidget()
        self.session_list.setWordWrap(True)
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addWidget(self.session_list, 1)
        row = QHBoxLayout()
        self.refresh = QPushButton("Refresh")
        self.export = QPushButton("Export MIDI + WAV…")
        row.addWidget(self.refresh)
        row.addWidget(self.export)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.rename = QPushButton("Rename…")
        self.delete = QPushButton("Delete…")
        row.addWidget(self.rename)
        row.addWidget(self.delete)
        lay.addLayout(row)
        lay.addSpacing(10)
        lay.addWidget(caption("melody files"))
        self.render_button = QPushButton("Render a melody file…")
        self.render_button.setToolTip(
            f"accompany a .mid (or hummed .wav) offline into WAV + MIDI, the mix at {DEFAULT_LUFS:g} LUFS "
            "with peaks under -1 dBFS"
        )
        lay.addWidget(self.render_button)
        self.stems = QCheckBox("with stems for a DAW (a WAV per part)")
        self.stems.setToolTip("also write band.bass.wav, band.keys.wav, ... beside the mix; they add up to it")
        lay.addWidget(self.stems)
        self.along = QPushButton("Play along with a file…")
        self.along.setToolTip("a melody file plays your part from the next bar; the band follows it live")
        lay.addWidget(self.along)
        _no_focus(
            self.session_list,
            self.refresh,
            self.export,
            self.rename,
            self.delete,
            self.render_button,
            self.stems,
            self.along,
        )
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        lay.addWidget(self.progress)
        self.job_label = QLabel("")
        self.job_label.setObjectName("dim")
        self.job_label.setWordWrap(True)
        lay.addWidget(self.job_label)

    def show_sessions(self, rows: list[dict]) -> None:
        """rows as Session.list_sessions() returns them (name, seconds, style, tempo, ...)."""
        self.session_list.clear()
        for info in rows:
            name = str(info.get("name", "?"))
            details = []
            secs = info.get("seconds")
            if isinstance(secs, (int, float)) and secs > 0:
                details.append(f"{int(secs) // 60}:{int(secs) % 60:02d}")
            if info.get("style"):
                details.append(str(info["style"]))
            if info.get("tempo"):
                details.append(f"{float(info['tempo']):.0f} bpm")
            for key in ("meter", "key", "input"):
                if info.get(key):
                    details.append(
                        INPUT_LABELS.get(str(info[key]), str(info[key])) if key == "input" else str(info[key])
                    )
            problem = info.get("problem")
            if problem:
                details = ["unreadable"]
            elif info.get("complete") is False:
                details.append("recovered")
            lost = info.get("lost_seconds")
            if not problem and isinstance(lost, (int, float)) and lost > 0:
                details.append(f"{lost:.1f} s of audio lost")
            item = QListWidgetItem(name + ("\n    " + " · ".join(details) if details else ""))
            item.setData(Qt.ItemDataRole.UserRole, name)
            files = info.get("files")
            item.setToolTip(str(problem) if problem else ", ".join(files) if isinstance(files, list) else "")
            self.session_list.addItem(item)

    def selected(self) -> str | None:
        item = self.session_list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)


class HealthBar(QWidget):
    """Latency, dropouts, band lead, CPU, backend, and a traffic light."""

    FIELDS = (
        ("latency", "audio output latency"),
        ("xruns", "audio dropouts since play"),
        ("lead", "how far the band is generated ahead of the beat"),
        ("cpu", "CPU used by LiveBand"),
        ("backend", "inference backend"),
    )

    def __init__(self) -> None:
        super().__init__()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(18)
        self.labels: dict[str, QLabel] = {}
        for key, tip in self.FIELDS:
            lab = QLabel("")
            lab.setObjectName("dim")
            lab.setToolTip(tip)
            self.labels[key] = lab
            lay.addWidget(lab)
        lay.addStretch(1)
        self.dot = QLabel("●")
        self.text = QLabel("")
        lay.addWidget(self.dot)
        lay.addWidget(self.text)

    def show_snapshot(self, snap, verdict: Verdict) -> None:
        lab = self.labels
        lab["latency"].setText(f"latency <b>{snap.audio_latency_ms:.1f} ms</b>")
        lab["xruns"].setText(f"dropouts <b>{snap.xruns}</b>")
        lab["lead"].setText(f"band ahead <b>{snap.lead_ms:.0f} ms</b>")
        lab["cpu"].setText(f"CPU <b>{snap.cpu_percent:.0f}%</b>")
        lab["backend"].setText(f"model <b>{snap.backend}</b>")
        color = {OK: theme.GOOD, BAD: theme.BAD}.get(verdict.level, theme.WARN)
        self.dot.setStyleSheet(f"color: {color}")
        if verdict.level == OK:
            self.text.setText("keeping up" if snap.playing else "ready")
        else:
            self.text.setText("cannot keep up" if verdict.level == BAD else "under strain")

"""The Chords tab: arranger mode (chords below a split point drive the band), a chord chart
to load, type, save, clear or loop a section of, locking the band's form for 2/4/8 bars,
and a practice tempo ramp; with where the band is in the form. ``connect`` wires it to a
session through the window's ``call`` (which turns a refusal into a message); ``show_state``
puts a ``FormState`` on it. Thread: UI only."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from liveband.config import DEFAULT_SPLIT, SPLIT_RANGE
from liveband.session_steering import note_name
from ui.panels import _no_focus, caption

WHOLE = "whole chart"


class SplitBox(QSpinBox):
    """A MIDI note number shown as its name (F#3 = 54)."""

    def textFromValue(self, v: int) -> str:  # noqa: N802 (Qt's name)
        return f"{note_name(v)} ({v})"

    def valueFromText(self, text: str | None) -> int:  # noqa: N802
        inside = (text or "").rsplit("(", 1)[-1].rstrip(") ")
        return int(inside) if inside.isdigit() else self.value()


class ChordsPanel(QWidget):
    def __init__(self) -> None:
        super().__init__()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(caption("arranger"))
        row = QHBoxLayout()
        self.arranger = QCheckBox("chords below")
        self.arranger.setToolTip(
            "arranger mode: the notes you hold below the split are read as chords "
            "(triads, sevenths, inversions, slash chords) and the band plays them from "
            "the next 16th; notes from the split up are the melody"
        )
        self.split = SplitBox()
        self.split.setRange(*SPLIT_RANGE)
        self.split.setValue(DEFAULT_SPLIT)
        self.split.setToolTip(
            "the split point: the lowest melody note. On the computer keyboard set it to "
            "C4 and press [ (an octave down): Z to M are then the chord hand (C3-B3) and "
            ", L . ; / the melody"
        )
        row.addWidget(self.arranger)
        row.addWidget(self.split, 1)
        lay.addLayout(row)
        self.arranger_chord = QLabel("–")
        self.arranger_chord.setObjectName("dim")
        lay.addWidget(self.arranger_chord)
        lay.addSpacing(8)
        lay.addWidget(caption("chord chart"))
        self.chart_text = QPlainTextEdit()
        self.chart_text.setPlaceholderText("A: | C | Am | F G7 |\nB: |: Dm7 | G7 :| C | % |")
        self.chart_text.setFixedHeight(74)
        self.chart_text.setToolTip(
            "bars between | |, chords split a bar evenly; |: :| repeats, % repeats a bar, "
            "'A:' names a section (docs/engine.md)"
        )
        lay.addWidget(self.chart_text)
        row = QHBoxLayout()
        self.chart_apply = QPushButton("Play")
        self.chart_apply.setToolTip("the band loops this chart from the next bar line")
        self.chart_load = QPushButton("Load…")
        self.chart_save = QPushButton("Save…")
        self.chart_clear = QPushButton("Clear")
        for b in (self.chart_apply, self.chart_load, self.chart_save, self.chart_clear):
            row.addWidget(b)
        lay.addLayout(row)
        self.chart_name = QLabel("no chart: the band finds its own chords")
        self.chart_name.setObjectName("dim")
        self.chart_name.setWordWrap(True)
        lay.addWidget(self.chart_name)
        row = QHBoxLayout()
        row.addWidget(QLabel("loop"))
        self.section = QComboBox()
        self.section.addItem(WHOLE, None)
        self.section.setToolTip("loop one section of the chart from the next bar line")
        row.addWidget(self.section, 1)
        lay.addLayout(row)
        lay.addSpacing(8)
        lay.addWidget(caption("lock the form"))
        row = QHBoxLayout()
        self.lock_bars = QComboBox()
        for n in (2, 4, 8):
            self.lock_bars.addItem(f"last {n} bars", n)
        self.lock_bars.setCurrentIndex(1)
        self.lock_btn = QPushButton("Lock")
        self.lock_btn.setCheckable(True)
        self.lock_btn.setToolTip("loop the chords the band has just played from the next bar line, until unlocked")
        row.addWidget(self.lock_bars, 1)
        row.addWidget(self.lock_btn)
        lay.addLayout(row)
        lay.addSpacing(8)
        lay.addWidget(caption("practice"))
        row = QHBoxLayout()
        self.ramp = QCheckBox("ramp")
        self.ramp_bpm = QSpinBox()
        self.ramp_bpm.setRange(1, 20)
        self.ramp_bpm.setValue(4)
        self.ramp_bpm.setPrefix("+")
        self.ramp_bpm.setSuffix(" BPM")
        self.ramp_every = QSpinBox()
        self.ramp_every.setRange(1, 16)
        self.ramp_every.setValue(2)
        self.ramp_every.setPrefix("every ")
        for w in (self.ramp, self.ramp_bpm, self.ramp_every):
            w.setToolTip(
                "tempo ramp for practice: each time the chart or locked form has come round "
                "'every' times, the tempo rises by that many BPM"
            )
        for w in (self.ramp, self.ramp_bpm, self.ramp_every):
            row.addWidget(w)
        lay.addLayout(row)
        lay.addSpacing(8)
        lay.addWidget(caption("where the band is"))
        self.position = QLabel("–")
        self.position.setObjectName("big")
        lay.addWidget(self.position)
        lay.addStretch(1)
        _no_focus(
            self.arranger,
            self.split,
            self.chart_apply,
            self.chart_load,
            self.chart_save,
            self.chart_clear,
            self.section,
            self.lock_bars,
            self.lock_btn,
            self.ramp,
            self.ramp_bpm,
            self.ramp_every,
        )
        self._sections: list[str] = []

    # -- wiring ----------------------------------------------------------------------------
    def connect(self, session, call) -> None:
        """Controls -> ``session`` through ``call(fn, *args)``."""
        self.arranger.toggled.connect(lambda on: call(session.set_arranger, on, self.split.value()))
        self.split.valueChanged.connect(lambda v: call(session.set_arranger, self.arranger.isChecked(), v))
        self.chart_apply.clicked.connect(lambda: self._apply_text(session, call))
        self.chart_load.clicked.connect(lambda: self._load(session, call))
        self.chart_save.clicked.connect(lambda: self._save(session, call))
        self.chart_clear.clicked.connect(lambda: (call(session.clear_chart), self.chart_text.setPlainText("")))  # type: ignore[func-returns-value]
        self.section.currentIndexChanged.connect(lambda i: call(session.loop_section, self.section.itemData(i)))
        self.lock_btn.toggled.connect(lambda on: self._lock(session, call, on))
        for sig in (self.ramp.toggled, self.ramp_bpm.valueChanged, self.ramp_every.valueChanged):
            sig.connect(
                lambda _=0: call(
                    session.set_tempo_ramp,
                    self.ramp_bpm.value() if self.ramp.isChecked() else None,
                    self.ramp_every.value(),
                )
            )

    def _apply_text(self, session, call) -> None:
        call(session.set_chart_text, self.chart_text.toPlainText(), "typed chart")
        self.chart_text.clearFocus()  # the keys go back to the instrument

    def _load(self, session, call) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a chord chart", "", "Charts (*.txt *.chart);;All files (*)")
        if path and call(session.load_chart, path) is not None:
            self.chart_text.setPlainText(session.chart_text())

    def _save(self, session, call) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the chord chart", "chart.txt", "Charts (*.txt)")
        if path:
            call(session.save_chart, path, self.lock_btn.isChecked())

    def _lock(self, session, call, on: bool) -> None:
        done = call(session.lock_form, self.lock_bars.currentData()) if on else call(session.unlock_form)
        if on and done is None and not session.form_state().locked_bars:
            self.lock_btn.blockSignals(True)  # refused (not playing): the button stays up
            self.lock_btn.setChecked(False)
            self.lock_btn.blockSignals(False)
        self.lock_btn.setText("Unlock" if self.lock_btn.isChecked() else "Lock")

    # -- display ---------------------------------------------------------------------------
    def show_state(self, st, sections: list[str]) -> None:
        """Put a ``liveband.session_steering.FormState`` on the tab."""
        if st.arranger != self.arranger.isChecked():
            self.arranger.blockSignals(True)
            self.arranger.setChecked(st.arranger)
            self.arranger.blockSignals(False)
        if st.split != self.split.value() and not self.split.hasFocus():
            self.split.blockSignals(True)
            self.split.setValue(st.split)
            self.split.blockSignals(False)
        self.arranger_chord.setText(
            (f"left hand: {st.chord}" if st.chord else f"left hand: play a chord below {st.split_name}")
            if st.arranger
            else "off: your notes are all melody"
        )
        self.chart_name.setText(
            f"chart: {st.chart_name}" if st.chart_name else "no chart: the band finds its own chords"
        )
        if sections != self._sections:
            self._sections = list(sections)
            self.section.blockSignals(True)
            self.section.clear()
            self.section.addItem(WHOLE, None)
            for s in sections:
                self.section.addItem(f"section {s}", s)
            self.section.blockSignals(False)
        locked = bool(st.locked_bars)
        if locked != self.lock_btn.isChecked():
            self.lock_btn.blockSignals(True)
            self.lock_btn.setChecked(locked)
            self.lock_btn.blockSignals(False)
            self.lock_btn.setText("Unlock" if locked else "Lock")
        self.position.setText(position_text(st))


def position_text(st) -> str:
    """``bar 12 · A 3/8 · loop 2 · locked`` (what the tab and the transport show)."""
    if not st.bar:
        return "–"
    parts = [f"bar {st.bar}"]
    if st.form_bar:
        parts.append(f"{st.section + ' ' if st.section else ''}{st.form_bar}/{st.form_bars}")
        parts.append(f"loop {st.loop}")
    parts.append(
        {"locked": "locked", "arranger": "your chords", "chart": "chart", "section": "section", "model": "free"}[
            st.source
        ]
    )
    if st.ramp:
        parts.append(st.ramp)
    return " · ".join(parts)

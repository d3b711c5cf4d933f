"""MIDI learn and tempo sync from the window on a real session: right-click a control,
"MIDI learn" arms the session for it; once bound, "Forget MIDI binding" names the control
and clears it. Setup's tempo sync picker switches the session (Ableton Link joins)."""

from __future__ import annotations

import mido
from PyQt6.QtCore import QPoint, QSettings, Qt, QTimer
from PyQt6.QtWidgets import QApplication

from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session
from ui.mainwindow import MainWindow


def choose(widget, index: int, seen: list) -> None:
    """Open ``widget``'s context menu and pick its ``index``-th action."""

    def pick() -> None:
        menu = QApplication.activePopupWidget()
        acts = menu.actions()
        seen.append([(a.text(), a.isEnabled()) for a in acts])
        acts[index].trigger()
        menu.close()

    QTimer.singleShot(100, pick)
    widget.customContextMenuRequested.emit(QPoint(5, 5))


def test_right_click_learn_and_forget_on_the_band_knobs(themed_app, qtbot, tmp_path, liveband_home):
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = MainWindow(s, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
        qtbot.addWidget(w)
        w.show()
        for widget in (w.transport.play_btn, w.transport.tap_btn, w.band_panel.density, w.band_panel.master):
            assert widget.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
        seen = []
        choose(w.band_panel.density, 0, seen)
        assert s.midi_learning == "density"
        assert seen[0][1] == ("Forget MIDI binding", False)
        # the controller's knob moves (what the MIDI input's filter hands MIDI learn)
        assert s.inputs.learn.handle(mido.Message("control_change", control=21, value=40, channel=2), 0.0)
        assert [b.target for b in s.midi_bindings()] == ["density"]
        # turning it drives the session, and the window's knob follows
        s.inputs.learn.handle(mido.Message("control_change", control=21, value=127, channel=2), 0.0)
        assert s.control.wait_idle()
        assert s.engine_config.density == 1.0
        w.tick()
        assert w.band_panel.density.value() == 1.0
        choose(w.band_panel.density, 1, seen)
        assert seen[1][1] == ("Forget MIDI binding (CC 21 (channel 3))", True)
        assert s.midi_bindings() == []
        w.close()


def test_setup_tempo_sync_picker_switches_the_session(themed_app, qtbot, tmp_path, liveband_home):
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = MainWindow(s, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
        qtbot.addWidget(w)
        combo = w.setup_panel.sync
        for mode in ("link", "midi clock", "internal"):
            combo.setCurrentIndex(combo.findData(mode))
            combo.activated.emit(combo.currentIndex())
            assert s.sync_mode == mode
            assert (s.sync.link is not None) == (mode == "link")
        # the choice is remembered for the next launch
        combo.setCurrentIndex(combo.findData("midi clock"))
        combo.activated.emit(combo.currentIndex())
        w.save_settings()
        w.close()
        s.set_sync("internal")
        w2 = MainWindow(s, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
        qtbot.addWidget(w2)
        assert s.sync_mode == "midi clock" and w2.setup_panel.sync.currentData() == "midi clock"
        w2.close()

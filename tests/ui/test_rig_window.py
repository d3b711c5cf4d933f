"""The rig from the window on a real session: Setup's MIDI clock delay and 'send MIDI clock'
reach the session and come back on the next launch; every mixer strip (your own part too),
the tempo and the click can be MIDI-learned from a right-click, and a controller on the
real MIDI input over JACK then drives them, with the window following."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings, Qt
from test_learn_menu import choose
from waiting import wait_for

from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, Session
from ui.mainwindow import MainWindow

sys.path.insert(0, str(Path(__file__).parents[1] / "liveband"))
from test_session_learn import Controller  # noqa: E402  (a controller on JACK, as there)

os.environ.setdefault("JACK_NO_START_SERVER", "1")


def window(s, path, qtbot) -> MainWindow:
    w = MainWindow(s, QSettings(str(path), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    return w


def test_setup_clock_delay_and_send_clock_reach_the_session_and_are_remembered(
    themed_app, qtbot, tmp_path, liveband_home
):
    ini = tmp_path / "ui.ini"
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = window(s, ini, qtbot)
        su = w.setup_panel
        # the delay sits beside the sync choice and matters for MIDI clock only
        assert su.sync_delay.parentWidget() is su.sync.parentWidget()
        assert not su.sync_delay.isEnabled()
        su.sync.setCurrentIndex(su.sync.findData("midi clock"))
        su.sync.activated.emit(su.sync.currentIndex())
        assert su.sync_delay.isEnabled()
        su.sync_delay.setValue(2.9)
        assert abs(s.sync.clock_in.delay_s - 0.0029) < 1e-12
        su.send_clock.setChecked(True)
        assert s.midi_clock
        w.save_settings()
        w.close()
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = window(s, ini, qtbot)
        assert s.sync_mode == "midi clock" and w.setup_panel.sync_delay.isEnabled()
        assert w.setup_panel.sync_delay.value() == 2.9 and abs(s.sync.clock_in.delay_s - 0.0029) < 1e-12
        assert w.setup_panel.send_clock.isChecked() and s.midi_clock
        s.set_sync("internal")
        w.close()
    # a hand-edited value out of range falls back to none, with a notice naming the key
    text = ini.read_text().replace("sync_delay_ms=2.9", "sync_delay_ms=500")
    ini.write_text(text)
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = window(s, ini, qtbot)
        assert w.setup_panel.sync_delay.value() == 0.0 and s.sync.clock_in.delay_s == 0.0
        assert any("sync_delay_ms" in n for n in w.settings.notices)
        s.set_sync("internal")
        w.close()


@pytest.mark.timeout(180)
def test_strips_tempo_and_click_learned_from_the_window_follow_a_controller_over_jack(
    themed_app, qtbot, tmp_path, jack_server, liveband_home, monkeypatch
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with Session(EngineConfig(tempo=120.0), AudioConfig(blocksize=256)) as s:
        w = window(s, tmp_path / "ui.ini", qtbot)
        w.show()
        you = w.strips["melody"]
        for widget in (w.transport.tempo, w.transport.metronome, you.volume, you.mute, you.solo, w.strips["bass"].solo):
            assert widget.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
        s.open_midi_input(VIRTUAL_IN_NAME)
        box = Controller(VIRTUAL_IN_NAME)
        seen: list = []
        try:
            # your own part's volume on a fader (CC 7)
            choose(you.volume, 0, seen)
            assert s.midi_learning == "volume:melody"
            box.cc(7, 100)
            assert wait_for(lambda: [b.target for b in s.midi_bindings()] == ["volume:melody"], 3.0)
            box.cc(7, 0)
            assert wait_for(lambda: s.snapshot().parts["melody"].volume == 0.0, 3.0)
            w.tick()
            assert you.volume.value() == 0
            # the bass's solo on a pad (note 36)
            choose(w.strips["bass"].solo, 0, seen)
            box.note(36, 100)
            assert wait_for(lambda: len(s.midi_bindings()) == 2, 3.0)
            box.note(36, 100)
            assert wait_for(lambda: s.snapshot().parts["bass"].solo, 3.0)
            w.tick()
            assert w.strips["bass"].solo.isChecked()
            # the tempo on a knob: 0-127 onto 40-240 BPM
            choose(w.transport.tempo, 0, seen)
            box.cc(22, 5)
            assert wait_for(lambda: len(s.midi_bindings()) == 3, 3.0)
            box.cc(22, 127)
            assert wait_for(lambda: abs(s.snapshot().tempo - 240.0) < 1e-6, 3.0), s.snapshot().tempo
            w.tick()
            assert w.transport.tempo.value() == 240.0
            # the click on a pad, and the window's button follows
            choose(w.transport.metronome, 0, seen)
            box.note(37, 100)
            assert wait_for(lambda: len(s.midi_bindings()) == 4, 3.0)
            box.note(37, 100)
            assert wait_for(lambda: s.metronome, 3.0)
            w.tick()
            assert w.transport.metronome.isChecked()
        finally:
            box.close()
        w.close()


def test_the_chords_tab_controls_offer_midi_learn_for_their_actions(themed_app, qtbot, tmp_path, liveband_home):
    with Session(EngineConfig(), AudioConfig(), start_audio=False) as s:
        w = window(s, tmp_path / "ui.ini", qtbot)
        w.show()
        c = w.chords_panel
        seen: list = []
        for widget, target, label in (
            (c.section, "next_section", "next section"),
            (c.lock_btn, "lock_form", "lock / unlock the form"),
            (c.arranger, "arranger", "arranger on / off"),
        ):
            assert widget.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu, target
            choose(widget, 0, seen)
            assert s.midi_learning == target
            assert seen[-1][0] == (f"MIDI learn ({label}): move a control on your controller", True)
        s.midi_learn(None)
        w.close()

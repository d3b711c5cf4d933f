"""The Chords tab on the real Session (PulseAudio, the shipped model, the SoundFont): the
arranger switched on with its split at C4, chords played on the computer keyboard an
octave down become the band's chord and show on the tab; a typed chart plays from the next
bar line with its section shown in the transport; Lock loops the band's form and Unlock
lets it go; a screenshot of the tab is saved to artifacts/ui/chords.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings, Qt

from ui.mainwindow import MainWindow

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"


@pytest.fixture()
def live_session(pulse_server, liveband_home):
    from liveband.config import AudioConfig
    from liveband.session import Session

    session = Session(audio_config=AudioConfig(blocksize=256))
    yield session
    session.close()


def test_arranger_chart_and_lock_from_the_chords_tab(themed_app, qtbot, live_session, tmp_path):
    s = live_session
    w = MainWindow(s, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    w.resize(1360, 820)
    w.show()
    w.transport.count_in.setValue(0)
    w.transport.tempo.setValue(120.0)
    c = w.chords_panel
    w.tabs.setCurrentWidget(c)
    c.split.setValue(60)
    c.arranger.setChecked(True)
    assert s.form_state().arranger and s.form_state().split == 60
    w.toggle_play()
    qtbot.waitUntil(lambda: s.snapshot().playing and s.snapshot().step > 4, timeout=60000)

    def key(k, down=True):
        (qtbot.keyPress if down else qtbot.keyRelease)(w.roll, k)

    key(Qt.Key.Key_BracketLeft)  # an octave down: Z is C3
    for k in (Qt.Key.Key_Z, Qt.Key.Key_C, Qt.Key.Key_B):
        key(k)
    key(Qt.Key.Key_Comma)  # C4: the melody
    qtbot.waitUntil(lambda: s.form_state().chord == "C" and s.snapshot().chord == "C", timeout=5000)
    for k in (Qt.Key.Key_Z, Qt.Key.Key_C, Qt.Key.Key_B, Qt.Key.Key_Comma):
        key(k, down=False)
    qtbot.waitUntil(lambda: "your chords" in c.position.text() and "C" in c.arranger_chord.text(), timeout=3000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(ARTIFACTS / "chords.png"))
    # a typed chart, the arranger off: the chart from the next bar line, its section shown
    c.arranger.setChecked(False)
    c.chart_text.setPlainText("A: | F | Bb |\nB: | C7 | F |\n")
    c.chart_apply.click()
    assert s.chart_text().startswith("A: | F |")
    qtbot.waitUntil(lambda: s.form_state().source == "chart" and s.snapshot().section in ("A", "B"), timeout=6000)
    qtbot.waitUntil(lambda: w.transport.position.text().endswith((" A", " B")), timeout=3000)
    assert s.chart_sections() == ["A", "B"] and c.section.count() == 3
    # lock the last 2 bars: from the next bar line the form is locked; Unlock lets it go
    c.lock_bars.setCurrentIndex(c.lock_bars.findData(2))
    c.lock_btn.click()
    qtbot.waitUntil(lambda: s.form_state().source == "locked", timeout=6000)
    qtbot.waitUntil(lambda: "locked" in c.position.text(), timeout=3000)
    assert c.lock_btn.text() == "Unlock"
    c.lock_btn.click()
    qtbot.waitUntil(lambda: s.form_state().source != "locked", timeout=3000)
    assert not s.form_state().locked_bars and c.lock_btn.text() == "Lock"
    w.stop()


def test_the_arranger_and_its_split_are_remembered(themed_app, qtbot, fake_session, tmp_path):
    ini = str(tmp_path / "ui.ini")
    w = MainWindow(fake_session, QSettings(ini, QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    assert not w.chords_panel.arranger.isChecked() and w.chords_panel.split.value() == 54
    w.chords_panel.split.setValue(62)
    w.chords_panel.arranger.setChecked(True)
    w.close()  # saves the settings
    again = MainWindow(fake_session, QSettings(ini, QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(again)
    assert again.chords_panel.arranger.isChecked() and again.chords_panel.split.value() == 62
    assert fake_session.called("set_arranger")[-1] == (True, 62)  # and the session has them
    again.close()


def test_the_split_box_offers_every_split_the_band_and_the_settings_file_take(themed_app, qtbot):
    """One split range (engine.arranger.SPLIT_RANGE): a split the settings file keeps is
    never clamped by the box (issue 16; the box said 21-108, the file 1-127)."""
    from liveband.config import SPLIT_RANGE
    from ui import settings as st
    from ui.chords import ChordsPanel

    c = ChordsPanel()
    qtbot.addWidget(c)
    assert (c.split.minimum(), c.split.maximum()) == SPLIT_RANGE
    ok, allowed = st.CHECKS["chords/split"]
    assert allowed == "{}-{}".format(*SPLIT_RANGE) and ok(SPLIT_RANGE[0]) and not ok(SPLIT_RANGE[0] - 1)

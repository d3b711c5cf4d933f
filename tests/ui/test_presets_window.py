"""Presets from the app (issue 19 item 2) on the real Session (no audio stream): save,
change, load puts the band, its chord chart and the controls back; a corrupt preset is one line and
changes nothing; takes are renamed and deleted from the Sessions tab."""

import pytest
from PyQt6.QtCore import QSettings

from liveband import presets as pr
from liveband.session import Session
from ui.mainwindow import MainWindow


@pytest.fixture()
def real_window(themed_app, qtbot, tmp_path, liveband_home):
    s = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    session = Session(start_audio=False)
    w = MainWindow(session, s, blocksize=256)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    session.close()


CHART = "A: | Em7 | A7 | Dm7 | G7 |\nB: | C | C |\n"


def test_save_change_and_load_a_preset_from_the_app(real_window):
    w = real_window
    t, b = w.transport, w.band_panel
    t.tempo.setValue(150.0)
    t.style_menu.setCurrentIndex(t.style_menu.findData("funk"))
    b.density.setValue(0.9)
    w.strips["bass"].program.setCurrentIndex(w.strips["bass"].program.findData(38))
    w.strips["melody"].through.click()
    c = w.chords_panel  # a chart typed on the Chords tab goes with the preset
    c.chart_text.setPlainText(CHART)
    c.chart_apply.click()
    assert w.session.chart_text() == CHART
    assert w.save_preset("funk night")
    assert w.notice_text.text().startswith("✓ Preset “funk night” saved")  # a confirmation, first
    assert b.presets.currentData() == "funk night"
    t.tempo.setValue(90.0)
    t.style_menu.setCurrentIndex(t.style_menu.findData("pop"))
    b.density.setValue(0.1)
    w.strips["melody"].through.click()
    c.chart_clear.click()
    assert w.session.chart_text() == "" and c.chart_text.toPlainText() == ""
    assert w.load_preset("funk night")
    assert w.session.chart_text() == CHART == c.chart_text.toPlainText()
    cfg = w.session.engine_config
    assert (cfg.tempo, cfg.style, cfg.density) == (150.0, "funk", 0.9)
    assert (t.tempo.value(), t.style_menu.currentData(), b.density.value()) == (150.0, "funk", 0.9)
    parts = w.session.snapshot().parts
    assert parts["bass"].program == 38 and parts["melody"].through is False
    w.tick()
    assert not w.strips["melody"].through.isChecked()


def test_a_corrupt_preset_from_the_app_is_one_line_and_changes_nothing(real_window):
    w = real_window
    pr.presets_dir().mkdir(parents=True, exist_ok=True)
    (pr.presets_dir() / "broken.json").write_text('{"liveband_preset": 1, "tempo": 1000}')
    w._refresh_presets()
    before = pr.capture(w.session).to_json()
    tempo = w.transport.tempo.value()
    assert not w.load_preset("broken")
    assert pr.capture(w.session).to_json() == before and w.transport.tempo.value() == tempo
    assert w.notice_lines() == [line for line in w.notice_lines() if "broken.json" in line and "tempo" in line]
    assert len(w.notice_lines()) == 1


def test_takes_are_renamed_and_deleted_from_the_sessions_tab(themed_app, qtbot, tmp_path, fake_session):
    w = MainWindow(fake_session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    lst = w.sessions_panel.session_list
    lst.setCurrentRow(0)
    assert w.rename_selected("first gig")
    assert fake_session.called("rename_session") == [("2026-11-23_1700", "first gig")]
    assert lst.item(0).data(0x0100) == "first gig"
    lst.setCurrentRow(0)
    assert w.delete_selected()
    assert fake_session.called("delete_session") == [("first gig",)] and lst.count() == 0
    w.close()


def test_the_render_button_asks_for_stems_when_the_box_is_ticked(themed_app, qtbot, tmp_path, fake_session):
    w = MainWindow(fake_session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    w.sessions_panel.stems.setChecked(True)
    w.render_file(str(tmp_path / "tune.mid"), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"))
    qtbot.waitUntil(lambda: "Rendered" in w.sessions_panel.job_label.text(), timeout=5000)
    assert fake_session.called("render_file") == [
        (str(tmp_path / "tune.mid"), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"), "stems")
    ]
    w.close()

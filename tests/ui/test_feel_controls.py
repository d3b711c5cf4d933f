"""The Band tab's feel controls: a style brings its own feel, the player's swing, fills,
time and humanise reach the session, they are remembered with the other settings, a
preset's feel shows on them, and `liveband play --swing ...` puts them on for a launch."""

from PyQt6.QtCore import QSettings

from liveband.presets import Preset
from ui import settings as st
from ui.feel import swing_text
from ui.mainwindow import MainWindow


def window(fake_session, qtbot, path):
    w = MainWindow(fake_session, QSettings(str(path), QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    return w


def test_a_style_brings_its_feel_and_each_control_reaches_the_session(themed_app, qtbot, tmp_path, fake_session):
    w = window(fake_session, qtbot, tmp_path / "ui.ini")
    feel = w.band_panel.feel
    assert not feel.isHidden() and w.tabs.currentWidget() is w.band_panel
    fake_session.calls.clear()
    w.transport.style_menu.setCurrentIndex(w.transport.style_menu.findData("blues"))
    assert fake_session.called("set_style")[-1] == ("blues",)
    assert fake_session.called("set_feel")[-1] == (
        {"swing": 1.0, "fills": "phrase", "time_feel": "normal", "humanise": 0.0},
    )
    assert feel.swing.text.text() == "triplet"
    feel.swing.setValue(0.6)
    assert fake_session.called("set_feel")[-1][0]["swing"] == 0.6 and feel.swing.text.text() == "1.50:1"
    feel.fills.setCurrentIndex(feel.fills.findData("more"))
    feel.time.setCurrentIndex(feel.time.findData("half"))
    feel.humanise.setValue(0.3)
    assert fake_session.called("set_feel")[-1] == (
        {"swing": 0.6, "fills": "more", "time_feel": "half", "humanise": 0.3},
    )
    # another style: its swing, fills and time; the player's humanise stays
    w.transport.style_menu.setCurrentIndex(w.transport.style_menu.findData("rock"))
    assert fake_session.called("set_feel")[-1] == (
        {"swing": 0.0, "fills": "phrase", "time_feel": "normal", "humanise": 0.3},
    )
    assert swing_text(0.0) == "straight"


def test_the_feel_is_remembered_with_the_other_settings(themed_app, qtbot, tmp_path, fake_session):
    path = tmp_path / "ui.ini"
    w = window(fake_session, qtbot, path)
    w.transport.style_menu.setCurrentIndex(w.transport.style_menu.findData("jazz"))
    f = w.band_panel.feel
    f.swing.setValue(0.4)
    f.fills.setCurrentIndex(f.fills.findData("off"))
    f.time.setCurrentIndex(f.time.findData("double"))
    f.humanise.setValue(0.25)
    w.save_settings()
    s = st.Settings(path)
    assert (
        st.read(s, "band/swing"),
        st.read(s, "band/fills"),
        st.read(s, "band/time"),
        st.read(s, "band/humanise"),
    ) == (0.4, "off", "double", 0.25)
    fake_session.calls.clear()
    w2 = window(fake_session, qtbot, path)
    assert w2.band_panel.feel.values() == {"swing": 0.4, "fills": "off", "time_feel": "double", "humanise": 0.25}
    assert fake_session.called("set_feel")[-1] == (w2.band_panel.feel.values(),)


def test_a_bad_remembered_feel_is_a_notice_and_the_style_s_own(themed_app, qtbot, tmp_path, fake_session):
    path = tmp_path / "ui.ini"
    path.write_text("[band]\nstyle=blues\nswing=7\nfills=sometimes\n")
    w = window(fake_session, qtbot, path)
    assert w.band_panel.feel.values()["fills"] == "phrase"
    notices = " ".join(w.settings.notices)
    assert "band/swing" in notices and "band/fills" in notices


def test_a_preset_s_feel_and_this_launch_s_flags_show_on_the_controls(themed_app, qtbot, tmp_path, fake_session):
    w = window(fake_session, qtbot, tmp_path / "ui.ini")
    fake_session.set_key = lambda key: None  # the real session's, which presets also set
    w.use_preset(Preset(style="blues", fills="off", humanise=0.2), "slow")
    assert w.band_panel.feel.values() == {"swing": 1.0, "fills": "off", "time_feel": "normal", "humanise": 0.2}
    fake_session.calls.clear()
    w.apply_band(style="funk", meter="12/8", swing=0.5, time_feel="half")
    assert fake_session.called("set_style")[-1] == ("funk",)
    assert fake_session.called("set_meter")[-1] == ("12/8",)
    assert fake_session.called("set_feel")[-1] == (
        {"swing": 0.5, "fills": "phrase", "time_feel": "half", "humanise": 0.2},
    )


def test_the_window_with_the_feel_controls_still_fits_a_laptop_screen(themed_app, qtbot, tmp_path, fake_session):
    # the Band tab scrolls (its key help last), so the feel row does not make the window taller
    w = window(fake_session, qtbot, tmp_path / "ui.ini")
    assert w.minimumSizeHint().height() <= 720, w.minimumSizeHint()
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    b = w.band_panel
    for widget in (b.feel.swing, b.feel.fills, b.preset_save):
        assert widget.isVisible() and not widget.visibleRegion().isEmpty(), widget


def test_the_feel_controls_follow_the_session_when_midi_moves_the_feel(themed_app, qtbot, tmp_path, fake_session):
    # a MIDI-learned swing knob sets the session's feel; the controls show it without sending it back
    from liveband.config import EngineConfig

    w = window(fake_session, qtbot, tmp_path / "ui.ini")
    fake_session.master_volume = 0.8
    fake_session.engine_config = EngineConfig(
        style="rock",
        swing=0.45,
        fills="more",
        time_feel="half",
        humanise=0.2,
        temperature=w.band_panel.temperature.value(),
        density=w.band_panel.density.value(),
        harmony_follow=w.band_panel.harmony.value(),
    )
    fake_session.calls.clear()
    w.tick()
    assert w.band_panel.feel.values() == {"swing": 0.45, "fills": "more", "time_feel": "half", "humanise": 0.2}
    assert not fake_session.called("set_feel")

"""The window built on a fake session (pure widget logic): every control reaches the
session, keys play notes, problems are shown, settings persist."""

from dataclasses import replace

import pytest
from PyQt6.QtCore import QEvent, QSettings, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QApplication

from ui import settings as st
from ui.mainwindow import MainWindow


@pytest.fixture()
def make_window(themed_app, qtbot, tmp_path):
    made = []

    def make(session, settings_file="ui.ini"):
        s = QSettings(str(tmp_path / settings_file), QSettings.Format.IniFormat)
        w = MainWindow(session, s, blocksize=256)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def key(w, k, down=True, auto=False):
    ev = QKeyEvent(
        QEvent.Type.KeyPress if down else QEvent.Type.KeyRelease, k, Qt.KeyboardModifier.NoModifier, "", auto
    )
    QApplication.sendEvent(QApplication.focusWidget() or w, ev)


def test_window_opens_with_every_part_of_the_instrument(make_window, fake_session):
    w = make_window(fake_session)
    assert set(w.strips) == {"bass", "keys", "pad", "drums", "melody"}  # the player's own part too
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Band", "Chords", "Setup", "Sessions"]
    assert w.strips["bass"].program.currentData() == 33  # from the session's part state
    assert w.setup_panel.audio_out.findData("NullSpeakers") > 0
    assert w.sessions_panel.session_list.count() == 1


def test_transport_controls_reach_the_session(make_window, fake_session, qtbot):
    w = make_window(fake_session)
    fake_session.calls.clear()
    w.transport.tempo.setValue(132.0)
    w.transport.meter.setCurrentIndex(w.transport.meter.findData("3/4"))
    w.transport.count_in.setValue(2)
    w.transport.metronome.setChecked(not w.transport.metronome.isChecked())
    w.transport.style_menu.setCurrentIndex(w.transport.style_menu.findData("folk"))
    w.transport.record_btn.click()  # on by default: this turns it off
    w.transport.play_btn.click()
    qtbot.waitUntil(lambda: not w.starting)
    assert fake_session.called("set_tempo")[-1] == (132.0,)
    assert fake_session.called("set_meter")[-1] == ("3/4",)
    assert fake_session.called("set_count_in")[-1] == (2,)
    assert fake_session.called("set_metronome")
    assert fake_session.called("set_style")[-1] == ("folk",)
    assert fake_session.called("set_recording") == [(False,)]
    assert fake_session.called("play")
    w.tick()
    assert w.transport.play_btn.isChecked() and not w.transport.record_btn.isChecked()
    w.transport.play_btn.click()
    assert fake_session.called("stop")


def test_record_button_shows_when_a_take_is_being_written(make_window, fake_session):
    w = make_window(fake_session)
    assert w.transport.record_btn.isChecked()  # takes are recorded unless turned off
    assert fake_session.called("set_recording")[-1] == (True,)
    fake_session.snap = replace(fake_session.snap, playing=True, recording=True)
    w.tick()
    assert w.transport.record_btn.text() == "● RECORDING"
    fake_session.snap = replace(fake_session.snap, playing=False, recording=False)
    w.tick()
    assert w.transport.record_btn.text() == "● REC" and w.transport.record_btn.isChecked()


def test_input_mode_follows_the_session(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.snap = replace(fake_session.snap, input_mode="midi")  # e.g. a controller was opened
    w.tick()
    assert w.input_mode == "midi"


def test_band_knobs_and_mixer_reach_the_session(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.calls.clear()
    w.band_panel.temperature.setValue(1.4)
    w.band_panel.density.setValue(0.2)
    w.band_panel.harmony.setValue(0.9)
    w.band_panel.master.setValue(0.5)
    strip = w.strips["pad"]
    strip.mute.click()
    strip.solo.click()
    strip.volume.setValue(30)
    strip.program.setCurrentIndex(strip.program.findData(48))
    assert fake_session.called("set_temperature")[-1] == (1.4,)
    assert fake_session.called("set_density")[-1] == (0.2,)
    assert fake_session.called("set_harmony_follow")[-1] == (0.9,)
    assert fake_session.called("set_master_volume")[-1] == (0.5,)
    parts = [c for c in fake_session.called("set_part") if c[0] == "pad"]
    assert [c[1] for c in parts] == [
        dict(mute=True, solo=None, volume=None, program=None),
        dict(mute=None, solo=True, volume=None, program=None),
        dict(mute=None, solo=None, volume=0.3, program=None),
        dict(mute=None, solo=None, volume=None, program=48),
    ]


def test_devices_reach_the_session(make_window, fake_session):
    w = make_window(fake_session)
    w.setup_panel.audio_out.setCurrentIndex(w.setup_panel.audio_out.findData("NullSpeakers"))
    w.setup_panel.buffer.setCurrentIndex(w.setup_panel.buffer.findData(512))
    w._apply_audio()
    w.wait_for_workers()
    assert fake_session.called("set_audio_devices")[-1] == ("NullSpeakers", None, 512)
    w.setup_panel.midi_out.setCurrentIndex(w.setup_panel.midi_out.findData("virtual:"))
    w._apply_midi_out()
    assert fake_session.called("open_midi_output")[-1] == (None, True)
    w.setup_panel.midi_out.setCurrentIndex(0)
    w._apply_midi_out()
    assert fake_session.called("open_midi_output")[-1] == (None, False)
    w.setup_panel.midi_in.setCurrentIndex(w.setup_panel.midi_in.findData("LiveBand in"))
    w._apply_midi_in()
    assert fake_session.called("open_midi_input")[-1] == ("LiveBand in",)
    assert "No MIDI controller found" in w.setup_panel.hint.text()
    w.setup_panel.input_gain.setValue(12)
    assert fake_session.called("set_input_gain")[-1] == (12.0,)


def test_space_plays_and_t_taps_wherever_the_focus_is(make_window, fake_session, qtbot):
    w = make_window(fake_session)
    w.transport.tempo.setFocus()
    key(w, Qt.Key.Key_Space)
    key(w, Qt.Key.Key_Space, down=False)
    qtbot.waitUntil(lambda: not w.starting)
    assert fake_session.called("play")
    key(w, Qt.Key.Key_T)
    assert fake_session.called("tap_tempo")
    assert w.transport.tempo.value() == pytest.approx(123.0)
    w.tick()
    key(w, Qt.Key.Key_Space)
    assert fake_session.called("stop")
    assert w.transport.record_btn.isChecked()
    key(w, Qt.Key.Key_R)
    assert fake_session.called("set_recording")[-1] == (False,)
    key(w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not w.starting)
    w.tick()
    key(w, Qt.Key.Key_Escape)
    assert len(fake_session.called("stop")) == 2


def test_computer_keyboard_plays_notes_only_in_keyboard_mode(make_window, fake_session):
    w = make_window(fake_session)
    w.set_input_mode("keyboard")
    assert fake_session.called("set_input_mode")[-1] == ("keyboard",)
    key(w, Qt.Key.Key_C)
    key(w, Qt.Key.Key_C, auto=True)  # auto-repeat while held: no new note
    key(w, Qt.Key.Key_C, down=False)
    assert fake_session.called("key_event") == [(64, True), (64, False)]
    w.transport.mode_buttons["mic"].click()
    assert fake_session.called("set_input_mode")[-1] == ("mic",)
    key(w, Qt.Key.Key_C)
    key(w, Qt.Key.Key_C, down=False)
    assert len(fake_session.called("key_event")) == 2


def test_switching_input_mode_releases_held_notes(make_window, fake_session):
    w = make_window(fake_session)
    w.set_input_mode("keyboard")
    key(w, Qt.Key.Key_Z)
    w.set_input_mode("midi")
    assert fake_session.called("key_event") == [(60, True), (60, False)]


def test_session_notices_and_refusals_are_shown_to_the_player(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.snap = replace(
        fake_session.snap,
        notices=("no audio device: start PulseAudio or plug in a sound card; offline render still works",),
    )
    w.tick()
    assert w.notice.isVisibleTo(w)
    assert "no audio device" in w.notice_text.text()
    w._call(fake_session.set_tempo, 500.0)  # the session refuses
    assert "40-240" in w.notice_text.text()


def test_machine_that_cannot_keep_up_gets_advice(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.snap = replace(fake_session.snap, playing=True, xruns=0)
    w.tick()
    fake_session.snap = replace(fake_session.snap, playing=True, xruns=4)
    w.tick()
    assert "increase the buffer size from 256 to 512" in w.notice_text.text()
    assert w.health_bar.text.text() == "cannot keep up"


def test_play_runs_in_a_worker_so_the_window_keeps_drawing(make_window, fake_session, qtbot):
    import threading
    import time

    release = threading.Event()
    real_play = fake_session.play

    def slow_play():  # like the first play, which loads the model
        release.wait(5)
        real_play()

    fake_session.play = slow_play
    w = make_window(fake_session)
    qtbot.waitExposed(w)
    qtbot.wait(100)
    w.transport.play_btn.click()
    assert w.starting
    ticks = []
    w.timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    qtbot.wait(800)
    assert len(ticks) >= 3 and w.transport.play_btn.text() == "…"  # the UI timer kept running
    key(w, Qt.Key.Key_Space)  # ignored while starting
    release.set()
    qtbot.waitUntil(lambda: not w.starting)
    w.tick()
    assert fake_session.snap.playing and w.transport.play_btn.text() == "■"


def test_a_failed_start_is_reported(make_window, fake_session, qtbot):
    def broken():
        raise RuntimeError("audio device vanished")

    fake_session.play = broken
    w = make_window(fake_session)
    w.play()
    qtbot.waitUntil(lambda: not w.starting)
    assert "Could not start the band: audio device vanished" in w.notice_text.text()


def test_live_view_follows_the_session(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.play()
    fake_session.notes = [
        ("melody", 60, 8.0, 12.0, False),
        ("bass", 36, 8.0, 16.0, False),
        ("keys", 64, 16.0, 20.0, True),
    ]
    fake_session.snap = replace(
        fake_session.snap, step=14.0, chord="Am", key="C major", hummed_pitch=69.2, input_level_db=-6.0
    )
    w.tick()
    w.tick()
    assert w.transport.chord_label.text() == "Am"
    assert w.transport.position.text() == "1.4"  # step 14 of a 4/4 bar: the fourth beat
    assert "C major" in w.transport.key_label.text()
    assert w.transport.hum_label.text() == "A4"
    assert w.roll.note_count == 3
    assert w.transport.level.fraction() > 0.5


def test_settings_persist_between_runs(make_window, fake_session):
    from fake_session import FakeSession

    w = make_window(fake_session)
    w.transport.tempo.setValue(87.0)
    w.transport.style_menu.setCurrentIndex(w.transport.style_menu.findData("chorale"))
    w.band_panel.temperature.setValue(1.3)
    w.strips["drums"].mute.click()
    w.strips["keys"].program.setCurrentIndex(w.strips["keys"].program.findData(4))
    w.set_input_mode("mic")
    w.setup_panel.input_gain.setValue(-9)
    w.close()
    again = FakeSession()
    w2 = make_window(again)
    assert w2.transport.tempo.value() == pytest.approx(87.0)
    assert w2.transport.style_menu.currentData() == "chorale"
    assert w2.band_panel.temperature.value() == pytest.approx(1.3)
    assert w2.input_mode == "mic"
    assert w2.strips["drums"].mute.isChecked()
    assert w2.strips["keys"].program.currentData() == 4
    # ... and the restored choices were sent to the new session, not only shown.
    assert again.called("set_tempo")[-1] == (87.0,)
    assert again.called("set_style")[-1] == ("chorale",)
    assert again.called("set_input_mode")[-1] == ("mic",)
    assert w2.setup_panel.input_gain.value() == -9 and again.called("set_input_gain")[-1] == (-9.0,)
    assert ("drums", dict(mute=True, solo=False, volume=pytest.approx(0.75), program=0)) in again.called("set_part")


def test_corrupt_settings_fall_back_to_defaults(themed_app, tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[transport]\ntempo=fast\ncount_in=lots\n[band]\ntemperature=nan\n")
    s = QSettings(str(path), QSettings.Format.IniFormat)
    assert st.read(s, "transport/tempo") == 100.0
    assert st.read(s, "transport/count_in") == 1
    assert st.read(s, "band/temperature") == 0.9


def test_render_runs_in_a_worker_and_reports_progress(make_window, fake_session, qtbot, tmp_path):
    w = make_window(fake_session)
    w.render_file(str(tmp_path / "tune.mid"), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"))
    qtbot.waitUntil(lambda: "Rendered" in w.sessions_panel.job_label.text(), timeout=5000)
    assert fake_session.called("render_file") == [
        (str(tmp_path / "tune.mid"), str(tmp_path / "band.wav"), str(tmp_path / "band.mid"))
    ]
    qtbot.waitUntil(lambda: w.sessions_panel.progress.value() == 1000)
    assert "band.wav" in w.sessions_panel.job_label.text()


def test_export_needs_a_selected_session(make_window, fake_session, qtbot, tmp_path):
    w = make_window(fake_session)
    assert w.export_selected(str(tmp_path)) is None
    assert "Choose a recorded session" in w.notice_text.text()
    w.sessions_panel.session_list.setCurrentRow(0)
    w.export_selected(str(tmp_path))
    qtbot.waitUntil(lambda: "Exported" in w.sessions_panel.job_label.text(), timeout=5000)
    assert fake_session.called("export_session") == [("2026-11-23_1700", str(tmp_path))]


def test_on_screen_keys_play_and_light_up(make_window, fake_session, qtbot):
    w = make_window(fake_session)
    w.tabs.setCurrentIndex(0)
    keys = w.band_panel.onscreen
    rects = keys.key_rects()
    e4 = rects[64].center()
    qtbot.mousePress(keys, Qt.MouseButton.LeftButton, pos=e4.toPoint())
    assert fake_session.called("key_event")[-1] == (64, True)
    assert 64 in keys.lit
    qtbot.mouseRelease(keys, Qt.MouseButton.LeftButton, pos=e4.toPoint())
    assert fake_session.called("key_event")[-1] == (64, False)
    assert keys.lit == set()
    # A black key wins where it overlaps the white keys below it.
    c_sharp = rects[61]
    assert keys.pitch_at(c_sharp.center().x(), c_sharp.top() + 2) == 61
    assert keys.pitch_at(c_sharp.center().x(), keys.height() - 3) in (60, 62)
    # Keys held on the computer keyboard light up as well.
    w.set_input_mode("keyboard")
    key(w, Qt.Key.Key_V)
    assert keys.lit == {65}
    key(w, Qt.Key.Key_V, down=False)
    assert keys.lit == set()


def test_auto_key_shows_the_key_the_session_detects(make_window, fake_session):
    w = make_window(fake_session)
    fake_session.snap = replace(fake_session.snap, key="E minor")
    w.tick()
    assert w.transport.key.itemText(0) == "Auto: E minor"
    assert not w.transport.key.isEnabled()  # this session always follows the player's key


def test_a_fixed_key_reaches_a_session_that_accepts_one(make_window, fake_session):
    fake_session.set_key = lambda key: fake_session._rec("set_key", key)
    w = make_window(fake_session)
    assert w.transport.key.isEnabled()
    w.transport.key.setCurrentIndex(w.transport.key.findData("D minor"))
    w.transport.key.setCurrentIndex(0)
    assert fake_session.called("set_key")[-2:] == [("D minor",), (None,)]


def test_after_stop_the_roll_keeps_the_take(make_window, fake_session, qtbot):
    w = make_window(fake_session)
    fake_session.play()
    fake_session.notes = [("melody", 60, 8.0, 12.0, False)]
    fake_session.snap = replace(fake_session.snap, step=14.0)
    w.tick()
    fake_session.stop()
    fake_session.snap = replace(fake_session.snap, step=0.0)
    w.tick()
    assert not w.roll.playing and w.roll.note_count == 1 and w.roll.step == 14.0


def test_remembered_devices_are_reopened_or_reported_missing(make_window, fake_session, tmp_path):
    s = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    s.setValue("devices/audio_out", "NullSpeakers")
    s.setValue("devices/midi_in", "Keystation 49")  # unplugged since last time
    s.sync()
    w = make_window(fake_session)
    w.wait_for_workers()
    assert fake_session.called("set_audio_devices")[-1] == ("NullSpeakers", None, 256)
    assert not fake_session.called("open_midi_input")
    assert "Your MIDI input “Keystation 49” is not connected" in w.notice_text.text()

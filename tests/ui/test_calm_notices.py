"""Calm notices (issue 19 item 6) and the player's own strip (item 1), offscreen on the
fake session: the layout never moves for a notice or when recording starts, a success
is a brief confirmation, messages use the tab names and plain words, and a MIDI port
that fails to open is not kept."""

from dataclasses import replace

import pytest
from PyQt6.QtCore import QPoint, QSettings
from PyQt6.QtWidgets import QApplication, QWidget

from ui.mainwindow import MainWindow


@pytest.fixture()
def window(themed_app, qtbot, tmp_path, fake_session):
    s = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    w = MainWindow(fake_session, s, blocksize=256)
    qtbot.addWidget(w)
    w.resize(1360, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def geometry(w) -> dict[str, tuple[int, int, int, int]]:
    """Where each control of the window is, in window coordinates."""
    QApplication.processEvents()
    out = {}
    t = w.transport
    named = {
        "play": t.play_btn,
        "record": t.record_btn,
        "tempo": t.tempo,
        "meter": t.meter,
        "key": t.key,
        "style": t.style_menu,
        "roll": w.roll,
        "tabs": w.tabs,
        "notice": w.notice,
        "health": w.health_bar,
    }
    named.update({f"strip {p}": s for p, s in w.strips.items()})
    for name, widget in named.items():
        p = widget.mapTo(w, QPoint(0, 0))
        out[name] = (p.x(), p.y(), widget.width(), widget.height())
    return out


def test_a_long_notice_moves_nothing(window, fake_session):
    w = window
    w.tick()
    before = geometry(w)
    fake_session.snap = replace(
        fake_session.snap,
        notices=tuple(
            f"problem {i}: " + "a very long explanation of what went wrong and how to fix it " * 4 for i in range(6)
        ),
    )
    w.flash("Could not start the band: " + "the audio device vanished " * 10)
    w.tick()
    assert w.notice_text.text().startswith("⚠ Could not start the band")
    assert geometry(w) == before
    # everything is there for whoever hovers
    assert w.notice_text.toolTip().count("problem") == 6 and "audio device vanished" in w.notice_text.toolTip()
    fake_session.snap = replace(fake_session.snap, notices=())
    w._messages.clear()
    w.tick()
    assert w.notice_text.text() == ""
    assert geometry(w) == before


def test_the_answer_to_what_the_player_just_did_is_shown_above_standing_warnings(window, fake_session):
    """Standing warnings (no MIDI ports, a slow machine...) filled the box and pushed the
    player's 'file not found' under "... and 2 more"."""
    w = window
    fake_session.snap = replace(fake_session.snap, notices=tuple(f"standing warning {i}" for i in range(4)))
    w.tick()
    w.flash("tune.mid: file not found")
    w.tick()
    shown = w.notice_text.text()
    assert "file not found" in shown and "more (hover" in shown
    assert shown.split("<br>")[0] == "⚠ tune.mid: file not found"
    fake_session.snap = replace(fake_session.snap, notices=())
    w._messages.clear()


def test_the_transport_row_does_not_shift_when_recording_starts(window, fake_session):
    w = window
    fake_session.snap = replace(fake_session.snap, playing=True, recording=False)
    w.tick()
    before = geometry(w)
    fake_session.snap = replace(fake_session.snap, recording=True)
    w.tick()
    assert "RECORDING" in w.transport.record_btn.text()
    assert geometry(w) == before


def test_take_saved_is_a_brief_confirmation_not_a_warning(window, fake_session):
    w = window
    fake_session.snap = replace(fake_session.snap, confirmation="take saved: 20261202-180000 (Sessions tab)")
    w.tick()
    text = w.notice_text.text()
    assert "Take saved" in text and "⚠" not in text and "✓" in text
    assert w.notice.property("level") == "ok"
    fake_session.snap = replace(fake_session.snap, confirmation="")  # the session's moment is over
    w.tick()
    assert w.notice_text.text() == "" and w.notice.property("level") == "none"


def test_messages_use_the_tab_names_and_no_device_files(window, fake_session):
    w = window
    fake_session.snap = replace(
        fake_session.snap,
        notices=(
            "audio output unavailable: [Errno 16] Device or resource busy (/dev/snd/pcmC0D0p). "
            "Start PulseAudio/PipeWire or JACK, or choose another output in the settings",
        ),
    )
    w.tick()
    shown = w.notice_text.text()
    assert "Setup tab" in shown and "settings" not in shown
    assert "/dev/" not in shown and "Errno" not in shown
    assert "/dev/snd/pcmC0D0p" in w.notice_text.toolTip()  # asked for: the whole text


def test_a_midi_port_that_fails_to_open_is_put_back_and_not_remembered(window, fake_session, monkeypatch):
    w = window
    su = w.setup_panel
    fake_session.midi_ports = lambda: {"inputs": ["Good Keys", "Busy Port"], "outputs": []}
    w._refresh_devices()
    su.midi_in.setCurrentIndex(su.midi_in.findData("Good Keys"))
    su.midi_in.activated.emit(su.midi_in.currentIndex())
    assert fake_session.called("open_midi_input")[-1] == ("Good Keys",)

    def refuse(name):
        if name == "Busy Port":
            raise OSError("MIDI port 'Busy Port' is in use by another program")

    monkeypatch.setattr(fake_session, "open_midi_input", refuse)
    su.midi_in.setCurrentIndex(su.midi_in.findData("Busy Port"))
    su.midi_in.activated.emit(su.midi_in.currentIndex())
    assert su.midi_in.currentData() == "Good Keys"
    assert "Busy Port" in w.notice_text.text() and "kept Good Keys" in w.notice_text.text()
    w.close()
    assert QSettings(w.settings.fileName(), QSettings.Format.IniFormat).value("devices/midi_in") == "Good Keys"


def test_your_own_part_is_a_mixer_strip_with_thru(window, fake_session):
    w = window
    strip = w.strips["melody"]
    assert strip.through is not None and strip.through.isChecked()
    assert strip.program.currentData() == 73  # the flute, until changed
    fake_session.calls.clear()
    strip.through.click()
    strip.program.setCurrentIndex(strip.program.findData(0))
    strip.volume.setValue(40)
    strip.mute.click()
    calls = fake_session.called("set_part")
    assert ("melody", {"mute": None, "solo": None, "volume": None, "program": None, "through": False}) in calls
    assert any(c[0] == "melody" and c[1]["program"] == 0 for c in calls)
    assert any(c[0] == "melody" and c[1]["volume"] == 0.4 for c in calls)
    assert any(c[0] == "melody" and c[1]["mute"] is True for c in calls)
    assert all(s.through is None for p, s in w.strips.items() if p != "melody")
    assert isinstance(strip, QWidget)


def test_thru_is_remembered_for_the_next_launch(themed_app, qtbot, tmp_path, fake_session):
    from fake_session import FakeSession

    ini = str(tmp_path / "ui.ini")
    w = MainWindow(fake_session, QSettings(ini, QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w)
    w.strips["melody"].through.click()
    w.close()
    again = FakeSession()
    w2 = MainWindow(again, QSettings(ini, QSettings.Format.IniFormat), blocksize=256)
    qtbot.addWidget(w2)
    assert any(c[0] == "melody" and c[1].get("through") is False for c in again.called("set_part"))
    w2.tick()
    assert not w2.strips["melody"].through.isChecked()
    w2.close()

"""Buffer advice becomes action (issue 15): on the real Session playing on the software
PulseAudio server, repeated dropouts reach the window through the session's own dropout
counter (the mixer's, read by the snapshot the window ticks on); the notice then offers
the next buffer size as a button, clicking it switches the session's stream, and the band
keeps playing; with Setup's "raise it by itself on repeated dropouts" (under the buffer
size) ticked the window switches by itself, and that choice is remembered."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt

from ui import settings as st
from ui.mainwindow import MainWindow


@pytest.fixture()
def live_session(pulse_server, liveband_home):
    from liveband.config import AudioConfig
    from liveband.session import Session

    session = Session(audio_config=AudioConfig(blocksize=256))
    yield session
    session.close()


def dropouts(session, n: int = 3) -> None:
    """``n`` dropouts beside sound, counted where the stream counts them."""
    session.mixer.audible_xruns += n


def band_moves(qtbot, session, seconds: float = 1.0) -> None:
    """The band plays on: its steps and the audio clock advance, the stream is open."""
    steps, clock = session.generator.steps, session.mixer.clock
    qtbot.wait(int(seconds * 1000))
    snap = session.snapshot()
    assert snap.playing and session.audio.active, snap.notices
    assert session.generator.steps > steps + 2 and session.mixer.clock > clock + int(0.5 * session.sample_rate)


def test_repeated_dropouts_offer_the_next_buffer_and_clicking_it_switches_the_playing_session(
    themed_app, qtbot, live_session, tmp_path
):
    s = live_session
    ini = tmp_path / "ui.ini"
    w = MainWindow(s, st.Settings(ini), blocksize=256)
    qtbot.addWidget(w)
    w.show()
    w.transport.count_in.setValue(0)
    w.play()
    qtbot.waitUntil(
        lambda: (
            w.last_snapshot is not None
            and w.last_snapshot.playing
            and s.generator is not None
            and s.generator.steps > 4
        ),
        timeout=30000,
    )
    assert w.notice_action.isHidden()
    dropouts(s)
    qtbot.waitUntil(lambda: w.notice_action.isVisible(), timeout=3000)
    assert w.notice_action.text() == "Use 512 frames"
    assert any("Audio dropouts (3 in the last" in line for line in w.notice_lines(w.last_snapshot))
    qtbot.mouseClick(w.notice_action, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: s.audio.blocksize == 512 and s.audio.active, timeout=5000)
    assert w.setup_panel.buffer.currentData() == 512 and w.blocksize == 512
    assert w.notice_action.isHidden()
    band_moves(qtbot, s)

    # allowed in Setup: the next repeated dropouts switch on their own
    w.setup_panel.auto_buffer.setChecked(True)
    dropouts(s)
    qtbot.waitUntil(lambda: s.audio.blocksize == 1024 and s.audio.active, timeout=5000)
    assert w.notice_action.isHidden() and "raised to 1024 frames" in w.notice_text.text()
    band_moves(qtbot, s)
    w.save_settings()
    saved = st.Settings(ini)
    assert st.read(saved, "devices/auto_buffer") is True and st.read(saved, "devices/blocksize") == 1024
    w.stop()
    w.close()


def test_the_automatic_raise_is_off_by_default_and_a_bad_value_falls_back(themed_app, tmp_path):
    ini = tmp_path / "ui.ini"
    assert st.read(st.Settings(ini), "devices/auto_buffer") is False
    ini.write_text("[devices]\nauto_buffer=maybe\n")
    s = st.Settings(ini)
    assert st.read(s, "devices/auto_buffer") is False and any("auto_buffer" in n for n in s.notices)

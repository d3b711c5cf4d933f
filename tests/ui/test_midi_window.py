"""A MIDI controller through the window, over a real JACK server: choosing LiveBand's
virtual input in Setup switches the window to MIDI input, a controller in another process
plays notes that show in the piano roll, and the band goes out on the virtual output
chosen in Setup."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from PyQt6.QtCore import QSettings

from ui.mainwindow import MainWindow

CONTROLLER = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import mido, rtmidi
    jack = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    deadline = time.time() + 15
    while True:
        outs = [n for n in jack.get_output_names() if "LiveBand in" in n]
        ins = [n for n in jack.get_input_names() if "LiveBand band" in n]
        if outs and ins:
            break
        if time.time() > deadline:
            print(json.dumps({"error": "ports not found", "outs": jack.get_output_names()}), flush=True)
            sys.exit(1)
        time.sleep(0.1)
    band = jack.open_input(ins[0])
    keys = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="test controller")
    keys.open_port(keys.get_ports().index(outs[0]))
    time.sleep(0.3)
    for pitch in (60, 64, 67, 72):
        keys.send_message([0x90, pitch, 100])
        time.sleep(0.35)
        keys.send_message([0x80, pitch, 0])
        time.sleep(0.05)
    got = 0
    t_end = time.time() + 1.5
    while time.time() < t_end:
        got += sum(1 for m in band.iter_pending() if m.type == "note_on" and m.velocity > 0)
        time.sleep(0.005)
    print(json.dumps({"band_notes": got}), flush=True)
""")


def test_midi_controller_chosen_in_setup_plays_into_the_roll(themed_app, qtbot, jack_server, liveband_home, tmp_path):
    from liveband.config import AudioConfig
    from liveband.session import Session

    session = Session(audio_config=AudioConfig(blocksize=256))
    try:
        w = MainWindow(session, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat), blocksize=256)
        qtbot.addWidget(w)
        w.show()
        w.transport.count_in.setValue(0)
        setup = w.setup_panel
        setup.midi_in.setCurrentIndex(setup.midi_in.findData("LiveBand in"))
        w._apply_midi_in()
        setup.midi_out.setCurrentIndex(setup.midi_out.findData("virtual:"))
        w._apply_midi_out()
        qtbot.waitUntil(lambda: w.input_mode == "midi", timeout=3000)  # the session switched, the UI follows
        w.play()
        qtbot.waitUntil(lambda: w.last_snapshot is not None and w.last_snapshot.playing, timeout=15000)
        script = tmp_path / "controller.py"
        script.write_text(CONTROLLER)
        peer = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        qtbot.waitUntil(lambda: peer.poll() is not None, timeout=40000)
        out, err = peer.communicate()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert peer.returncode == 0 and lines, out + err[-2000:]
        qtbot.wait(100)
        melody = sorted({n[1] for n in session.roll(-1000) if n[0] == "melody"})
        assert melody == [60, 64, 67, 72]
        assert json.loads(lines[-1])["band_notes"] >= 4  # the band reached the MIDI output
        assert w.roll.note_count > 0
        w.stop()
        w.close()
    finally:
        session.close()

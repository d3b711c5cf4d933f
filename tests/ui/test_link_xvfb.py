"""The real app joins Ableton Link from its remembered Setup and plays when another Link app
presses play: `liveband play` under Xvfb on a private PulseAudio server, an aalink peer in
this process; the peer's play starts the app's band (a take is recorded with the band in
it), the peer's stop stops it, and Setup's sync choice, MIDI clock delay and 'send MIDI
clock' are saved again when the window closes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings
from waiting import wait_for

from ui.xvfb import Xvfb

pytest.importorskip("aalink")
sys.path.insert(0, str(Path(__file__).parents[1] / "liveband"))
from test_session_link import Peer  # noqa: E402  (a small Link app, as there)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_app_follows_a_link_peers_play_and_stop_under_xvfb(pulse_server, tmp_path):
    exe = Path(sys.executable).parent / "liveband"
    home = tmp_path / "home"
    ini = tmp_path / "config" / "LiveBand" / "LiveBand.ini"
    prefs = QSettings(str(ini), QSettings.Format.IniFormat)
    for key, value in (
        ("transport/count_in", 0),
        ("transport/tempo", 120.0),
        ("transport/record", True),
        ("devices/sync", "link"),
        ("devices/sync_delay_ms", 2.9),
        ("devices/send_clock", True),
    ):
        prefs.setValue(key, value)
    prefs.sync()
    peer = Peer(120.0)
    peer.link.start_stop_sync_enabled = True
    proc = None
    try:
        with Xvfb() as x:
            env = dict(os.environ, **x.env(), XDG_CONFIG_HOME=str(tmp_path / "config"), LIVEBAND_HOME=str(home))
            proc = subprocess.Popen(
                [str(exe), "play", "--quit-after", "75"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert wait_for(lambda: peer.link.num_peers >= 1 or proc.poll() is not None, 90.0), "no Link peer"
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(3.0)  # the window restores its devices after it opens
            peer.link.playing = True  # the other app presses play
            # the app's band plays: its take appears in the sessions folder
            assert wait_for(lambda: list(home.glob("sessions/*/session.json")), 60.0), "no take started"
            time.sleep(6.0)
            peer.link.playing = False  # and stop
            time.sleep(3.0)
            assert not peer.link.playing  # the app did not start it again
            _, err = proc.communicate(timeout=120)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        peer.close()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    import mido

    from engine.parts import BAND_PARTS

    takes = sorted(home.glob("sessions/*/session.mid"))
    assert len(takes) == 1, takes
    meta = json.loads((takes[0].parent / "session.json").read_text())
    assert meta.get("complete") is not False and 4.0 <= float(meta["seconds"]) <= 20.0, meta
    ons = [m for m in mido.MidiFile(str(takes[0])) if m.type == "note_on" and m.velocity > 0]
    assert {m.channel for m in ons} & {p.channel for p in BAND_PARTS}, "the band did not play"
    saved = ini.read_text()
    for line in ("sync=link", "sync_delay_ms=2.9", "send_clock=true"):
        assert line in saved, saved

"""Tempo sync over real pieces: MIDI clock and start/stop from another JACK MIDI client into
the session's input (a real JACK server, the real synth and audio stream)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from liveband.session import VIRTUAL_IN_NAME

SENDER = textwrap.dedent("""
    import json, os, sys, threading, time
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import rtmidi
    part, bpm = sys.argv[1], float(sys.argv[2])
    out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="clock peer")
    deadline = time.monotonic() + 10
    while not [n for n in out.get_ports() if part in n]:
        if time.monotonic() > deadline:
            print(json.dumps({"error": out.get_ports()}), flush=True)
            sys.exit(1)
        time.sleep(0.1)
    out.open_port([i for i, n in enumerate(out.get_ports()) if part in n][0])
    state = {"bpm": bpm, "cmd": [], "quit": False}
    beats = []           # (song quarter, monotonic time its tick was sent)

    def commands():
        for line in sys.stdin:
            word = line.split()
            if word[0] == "bpm":
                state["bpm"] = float(word[1])
            elif word[0] == "quit":
                state["quit"] = True
                return
            else:
                state["cmd"].append(word[0])

    threading.Thread(target=commands, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    song, t = None, time.monotonic()
    while not state["quit"]:
        while state["cmd"]:
            c = state["cmd"].pop(0)
            out.send_message([{"start": 0xFA, "stop": 0xFC, "continue": 0xFB}[c]])
            song = 0 if c == "start" else None if c == "stop" else song
        t += 60.0 / (state["bpm"] * 24)
        while (d := t - time.monotonic()) > 0:
            time.sleep(d - 0.001 if d > 0.002 else 0)
        now = time.monotonic()
        out.send_message([0xF8])
        if song is not None:
            if song % 24 == 0:
                beats.append((song / 24, now))
            song += 1
    print(json.dumps({"beats": beats}), flush=True)
""")


class ClockSender:
    """A drum machine in another process with its own JACK MIDI client: MIDI clock at a
    tempo, start and stop on request; ``close`` returns when each quarter's tick was sent."""

    def __init__(self, tmp_path, port_part: str, bpm: float) -> None:
        script = tmp_path / "clock_sender.py"
        script.write_text(SENDER)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), port_part, str(bpm)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline()
        assert "ready" in first, first + (self.proc.stderr.read() if self.proc.poll() is not None else "")

    def say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> list[tuple[float, float]]:
        try:
            self.say("quit")
            out, err = self.proc.communicate(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
        return lines[-1].get("beats", []) if lines else []


@pytest.mark.timeout(120)
def test_midi_clock_from_another_jack_client_drives_tempo_and_transport(jack_session, wait_for, dac_line, tmp_path):
    with jack_session(tempo=120.0, count_in_bars=1, midi_in=True, sync="midi clock") as s:
        peer = ClockSender(tmp_path, VIRTUAL_IN_NAME, 100.0)
        beats = []
        dac_line.start(s)
        try:
            time.sleep(1.0)  # the clock runs; the band waits for start
            assert not s.snapshot().playing
            peer.say("start")
            assert wait_for(lambda: s.snapshot().playing, 5.0), s.snapshot().notices
            t_play = time.monotonic()
            time.sleep(6.0)
            snap = s.snapshot()
            assert abs(snap.tempo - 100.0) < 1.0, snap.tempo
            clock = s.clock
            lock = s.sync.beat_lock
            # the band's own clock plays at that tempo, as heard (the lock steers each beat)
            heard_bpm = dac_line.bpm(clock, int(snap.step // 4))
            assert abs(heard_bpm - 100.0) < 3.0, (heard_bpm, [x.bpm for x in clock.segments[-8:]], list(lock.errors_ms))
            t_change = time.monotonic()
            peer.say("bpm 130")
            time.sleep(6.0)
            snap = s.snapshot()
            assert abs(snap.tempo - 130.0) < 1.0, snap.tempo
            heard_bpm = dac_line.bpm(clock, int(snap.step // 4))
            assert abs(heard_bpm - 130.0) < 3.0, (heard_bpm, [x.bpm for x in clock.segments[-8:]], list(lock.errors_ms))
            gen = s.generator
            assert gen.error is None and gen.late_steps == 0, gen.metrics()
            t_stop, rendered = time.monotonic(), s.mixer.clock
            peer.say("stop")
            assert wait_for(lambda: not s.snapshot().playing, 3.0)
            peer.say("start")  # and again: start starts the band anew
            assert wait_for(lambda: s.snapshot().playing, 5.0), s.snapshot().notices
            assert s.clock is not clock
            peer.say("stop")
            assert wait_for(lambda: not s.snapshot().playing, 3.0)
        finally:
            dac_line.stop()
            beats = peer.close()

    # the band's beats sit on the sender's (bar phase too: song position 0 is band step 0),
    # before the tempo change and from 1.5 s after it. How close depends on the transport:
    # JACK MIDI delivers once a 5.3 ms period on a quiet machine, 20-30 ms late when the
    # server itself is starved (this 2-core VM under load); a beat is 460-600 ms.
    def err_ms(q, t):
        return (clock.beat_to_sample(q) / s.sample_rate + dac_line.offset_at(t) - t) * 1000.0

    steady = [
        err_ms(q, t)
        for q, t in beats
        if t < t_stop
        and q * 4 >= clock.first_step + 4
        and clock.beat_to_sample(q) < rendered
        and not t_change - 0.2 < t < t_change + 1.5
    ]
    assert len(steady) >= 10, (steady, beats, clock.first_step)
    assert np.median(np.abs(steady)) < 40.0, (steady, list(lock.errors_ms))
    # and on the clock as received, where the lock can do something about it: within about
    # a JACK period (5.3 ms; the bench's numbers are far under it on a quiet machine), where
    # an unlocked band drifts by tens to hundreds of ms a beat. Plus what the audio server
    # itself loses in a beat (its overruns on a starved machine hold the audio clock back,
    # after the beat's length was set): the lock takes it out at the next beat.
    n_beats = sum(t_play <= t < t_stop for _, t in beats)
    lost_ms = 1000.0 * dac_line.lost(t_play, t_stop) / max(1, n_beats)
    errors = list(lock.errors_ms)[2:]
    assert np.median(np.abs(errors)) < 8.0 + max(0.0, lost_ms), (lost_ms, errors, s.mixer.audible_xruns)

"""MIDI between processes over a real JACK server: another program plays into LiveBand's
input (junk included) and hears the band on LiveBand's virtual output."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from engine import parts as P
from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, VIRTUAL_OUT_NAME, Session

PEER = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import mido, rtmidi
    listen_s = float(sys.argv[1])
    jack = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    deadline = time.time() + 15
    while True:
        outs = [n for n in jack.get_output_names() if %(inp)r in n]
        ins = [n for n in jack.get_input_names() if %(out)r in n]
        if outs and ins:
            break
        if time.time() > deadline:
            print(json.dumps({"error": "LiveBand ports not found", "outs": jack.get_output_names(),
                              "ins": jack.get_input_names()}), flush=True)
            sys.exit(1)
        time.sleep(0.1)
    band_in = jack.open_input(ins[0])
    raw = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="peer raw")
    raw.open_port(raw.get_ports().index(outs[0]))
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()                    # wait until LiveBand plays
    time.sleep(0.3)
    # junk first: sysex, stray data bytes, clock, pitch bend, an unknown status
    for msg in ([0xF0, 0x7E, 0x01, 0x02, 0xF7], [0x12, 0x34], [0xF8], [0xE0, 0x00, 0x40], [0xF4], [0xB0, 1, 64]):
        raw.send_message(msg)
    raw.send_message([0x90, 67, 100])       # the player's note
    time.sleep(0.4)
    raw.send_message([0x80, 67, 0])
    t_end = time.time() + listen_s
    got, clocks, starts = [], 0, 0
    while time.time() < t_end:
        for m in band_in.iter_pending():
            if m.type == "note_on" and m.velocity > 0:
                got.append([m.channel, m.note])
            elif m.type == "clock":
                clocks += 1
            elif m.type == "start":
                starts += 1
        time.sleep(0.005)
    print(json.dumps({"band": got, "clocks": clocks, "starts": starts}), flush=True)
""") % {"inp": VIRTUAL_IN_NAME, "out": VIRTUAL_OUT_NAME}


def test_midi_from_another_process_reaches_the_engine_and_the_band_reaches_it_back(
    jack_server, liveband_home, tmp_path
):
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        s.open_midi_input(VIRTUAL_IN_NAME)
        s.open_midi_output(None, virtual=True)
        s.set_midi_clock(True)
        script = tmp_path / "peer.py"
        script.write_text(PEER)
        peer = subprocess.Popen(
            [sys.executable, str(script), "4.0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = peer.stdout.readline()
            assert "ready" in first, first + peer.stderr.read()[-2000:] if peer.poll() is not None else first
            s.play()
            peer.stdin.write("go\n")
            peer.stdin.flush()
            out, err = peer.communicate(timeout=60)
        finally:
            if peer.poll() is None:
                peer.kill()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert peer.returncode == 0 and lines, out + err[-2000:]
        result = json.loads(lines[-1])
        gen = s.generator
        filt = s.inputs.midi_in.port.callback
        melody = [(pitch, start) for part, pitch, start, end, *_ in s.roll(-1000) if part == "melody"]
        q = gen.quantiser
        diag = (filt.errors, filt.ignored, melody, q.onsets, q.late_onsets, result)
        assert filt.errors == 0 and filt.ignored >= 3, diag
        # the player's note reached the engine: the piano roll shows it and the quantiser
        # handed it to the model as a melody onset
        assert [p for p, _ in melody] == [67], diag
        assert q.onsets + q.late_onsets >= 1, diag
        assert s.snapshot().playing and gen.error is None
        s.stop()
    band_channels = {p.channel for p in P.BAND_PARTS}
    got = result["band"]
    assert len(got) >= 8, got  # 4 s of drums at least
    assert {c for c, _ in got} <= band_channels
    assert P.DRUMS.channel in {c for c, _ in got}
    # MIDI clock: one start, then 24 clocks per quarter note (120 BPM: 48 per second);
    # the peer listens 4.7 s after "go", the clock starts 0.25 s after play()
    assert result["starts"] == 1, result
    assert 0.9 * 48 * 4.45 <= result["clocks"] <= 1.1 * 48 * 4.45, result["clocks"]

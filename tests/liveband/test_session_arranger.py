"""Arranger mode in the live session on real pieces: chords played by another program into
'LiveBand in' over a real JACK server (melody above the split meanwhile), and chords only
on the computer keyboard through a real PulseAudio server, become the band's chord stream
from the next 16th step, every bass and keys onset a tone of that chord; notes above the
split stay the melody, chord keys never reach it; a chart loaded into the playing session
drives the chord stream from the next bar line, and the snapshot counts bars and sections."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from PyQt6.QtCore import Qt

from engine import parts as P
from engine.events import NOTE_ON
from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, Session
from models.tokens import chord_name, chord_pitch_classes, is_note_on, token_pitch
from ui.keyboard import OCTAVE_DOWN, ComputerKeyboard

# (keys below the split F#3, the chord they name): root position, inversions, a seventh over its third
CHORDS = [
    ((36, 40, 43), "C"),
    ((45, 48, 52), "Am"),
    ((41, 45, 48), "F"),
    ((47, 50, 53, 43), "G7"),
    ((40, 43, 48), "C"),
    ((38, 41, 45, 48), "Dmin7"),
]

PEER = textwrap.dedent("""
    import json, os, sys, time
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    import mido
    chords = json.loads(sys.argv[1])
    jack = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
    deadline = time.time() + 15
    while True:
        outs = [n for n in jack.get_output_names() if %(inp)r in n]
        if outs:
            break
        if time.time() > deadline:
            print(json.dumps({"error": "LiveBand in not found"}), flush=True)
            sys.exit(1)
        time.sleep(0.1)
    port = jack.open_output(outs[0])
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()                    # wait until LiveBand plays
    time.sleep(1.0)
    for i, keys in enumerate(chords):
        for k in keys:                      # a hand: the keys a few ms apart
            port.send(mido.Message("note_on", note=k, velocity=80))
            time.sleep(0.004)
        time.sleep(0.25)
        melody = 67 + 2 * (i %% 3)           # the right hand above the split meanwhile
        port.send(mido.Message("note_on", note=melody, velocity=90))
        time.sleep(0.3)
        port.send(mido.Message("note_off", note=melody))
        for k in keys:
            port.send(mido.Message("note_off", note=k))
        time.sleep(0.37 + 0.05 * i)         # each chord at another phase of the 16th
    time.sleep(0.8)
    print(json.dumps({"done": True}), flush=True)
""") % {"inp": VIRTUAL_IN_NAME}


class Onsets:
    """Band listener: (time, channel, pitch) of every note-on the band commits."""

    def __init__(self) -> None:
        self.onsets: list[tuple[int, int, int]] = []

    def push(self, time, kind, channel, data1=0, data2=0) -> bool:
        if kind == NOTE_ON and data2 > 0:
            self.onsets.append((int(time), int(channel), int(data1)))
        return True


def nearest_step(clock, t: int) -> int:
    k = clock.step_at(t)
    return k + 1 if (t - clock.step_time(k)) * 2 >= clock.step_time(k + 1) - clock.step_time(k) else k


def check_band_followed(s: Session, band: Onsets, want: list[str]) -> dict[int, int]:
    """The chords read are ``want``; each is the band's chord from the step after its first
    key (or that step itself when the key came ahead of its commit); every bass/keys onset
    from the first chord on is a tone of the chord stream there. Returns the chord stream."""
    clock, gen = s.clock, s.generator
    stream = {int(f[0]): int(f[1]) for f in list(gen.recent)}
    readings = list(s.steering.arranger.readings)
    assert [chord_name(tok) for _, _, tok in readings] == want
    for key_t, step, tok in readings:
        assert 0 <= step - nearest_step(clock, key_t) <= 1, (key_t, step)
        assert stream[step] == tok, (step, chord_name(tok), chord_name(stream[step]))
    ends = [r[1] for r in readings[1:]] + [max(stream) + 1]
    for (_, step, tok), end in zip(readings, ends):
        assert all(stream[k] == tok for k in range(step, end)), chord_name(tok)
    first = readings[0][1]
    checked = 0
    for t, ch, pitch in band.onsets:
        k = clock.step_at(t)
        if ch in (P.BASS.channel, P.KEYS.channel) and k >= first and k in stream:
            assert pitch % 12 in chord_pitch_classes(stream[k]), (k, ch, pitch, chord_name(stream[k]))
            checked += 1
    assert checked >= 5
    return stream


def test_chords_played_over_jack_drive_the_band_from_the_next_step(jack_server, liveband_home, tmp_path):
    with Session(EngineConfig(tempo=110.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        s.open_midi_input(VIRTUAL_IN_NAME)
        s.set_arranger(True, 54)
        band = Onsets()
        s.add_band_listener(band)
        script = tmp_path / "peer.py"
        script.write_text(PEER)
        peer = subprocess.Popen(
            [sys.executable, str(script), json.dumps([list(k) for k, _ in CHORDS])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = peer.stdout.readline()
            assert "ready" in first, first + (peer.stderr.read()[-2000:] if peer.poll() is not None else "")
            s.play()
            peer.stdin.write("go\n")
            peer.stdin.flush()
            out, err = peer.communicate(timeout=60)
        finally:
            if peer.poll() is None:
                peer.kill()
        assert peer.returncode == 0 and '"done"' in out, out + err[-2000:]
        check_band_followed(s, band, [name for _, name in CHORDS])
        # the right hand reached the band as melody; no chord key did
        heard = {token_pitch(f[5]) for f in list(s.generator.recent) if is_note_on(f[5])}
        assert heard and min(heard) >= 54, heard
        st = s.form_state()
        assert st.source == "arranger" and st.chord == "Dmin7" and st.arranger and st.split_name == "F#3"
        s.stop()


def test_chords_only_on_the_computer_keyboard_and_a_chart_loaded_while_playing(pulse_server, liveband_home, tmp_path):
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        s.set_arranger(True, 60)  # the Z row (C3-B3) is the chord hand
        band = Onsets()
        s.add_band_listener(band)
        s.play()
        time.sleep(0.8)
        # the app's keyboard mapping, one octave down (the [ key): Z is C3
        kb = ComputerKeyboard()
        assert kb.press(OCTAVE_DOWN) is None and kb.base_pitch == 48
        rows = [("ZCB", "C"), ("NZC", "Am"), ("VNZ", "F"), ("BMXV", "G7")]  # chords only, no melody
        for keys, _ in rows:
            for k in keys:
                pitch = kb.press(getattr(Qt.Key, f"Key_{k}").value)
                assert pitch is not None and pitch < 60
                s.key_event(pitch, True, 100)  # as the window's play_note sends it
                time.sleep(0.003)
            time.sleep(0.55)
            for k in keys:
                pitch = kb.release(getattr(Qt.Key, f"Key_{k}").value)
                assert pitch is not None
                s.key_event(pitch, False)
            time.sleep(0.3)
        time.sleep(0.4)
        check_band_followed(s, band, [name for _, name in rows])
        assert not any(is_note_on(f[5]) for f in list(s.generator.recent))  # no melody at all
        assert s.snapshot().bar >= 2
        # a chart file loaded while playing: the arranger off, the chart from the next bar line
        song = tmp_path / "song.txt"
        song.write_text("A: | Bb | Eb |\nB: | F7 | Bb |\n")
        s.set_arranger(False)
        s.load_chart(str(song))
        assert s.chart_text() == song.read_text()
        time.sleep(7.0)  # the next bar line (< 2 s) and then 2 bars and more
        gen, clock = s.generator, s.clock
        stream = {int(f[0]): int(f[1]) for f in list(gen.recent)}
        start = gen.chord_source.start
        assert start % clock.bar_steps == 0
        names = [chord_name(stream[k]) for k in range(start, max(stream) + 1)]
        chart = gen.chord_source.chart
        assert len(names) >= 32 and names == [chord_name(chart.token_at(k, "4/4")) for k in range(len(names))]
        snap, st = s.snapshot(), s.form_state()
        assert snap.bar >= 4 and snap.section in ("A", "B") and st.source == "chart" and st.form_bars == 4
        s.stop()

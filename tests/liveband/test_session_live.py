"""The live session on a real (software) PulseAudio server: a played note is heard within
one block plus the stream's latency, a one-minute session with the band running records
the WAV and MIDI that were played, and a server that vanishes mid-session is survived."""

from __future__ import annotations

import time
import wave
from collections import Counter

import mido
import numpy as np
import pytest
from scipy.signal import fftconvolve
from waiting import wait_for

from engine import parts as P
from engine.events import NOTE_OFF, NOTE_ON
from engine.renderer import EventLog
from liveband.bench.softaudio import SoftwareAudioServer
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

SR = 48000


def read_wav(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == SR and w.getnchannels() == 2
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(np.float32) / 32768


def onsets(audio: np.ndarray, loud: float = 0.03, quiet: float = 0.002) -> list[int]:
    """Sample indices where a note starts: the level passes ``loud`` after at least
    100 ms below ``quiet``; the onset is the first sample above ``quiet`` before that."""
    env = np.abs(audio).max(axis=1)
    ms = SR // 1000
    frames = env[: env.size // ms * ms].reshape(-1, ms).max(axis=1)
    out = []
    f = 150
    while f < frames.size:
        if frames[f] > loud and frames[f - 150 : f - 50].max() < quiet:
            lo = (f - 50) * ms
            above = np.flatnonzero(env[lo : (f + 1) * ms] > quiet)
            out.append(lo + int(above[0]))
            f += 150
        else:
            f += 1
    return out


class Tee:
    """Mixer tap for the test: remembers the first clock sample above ``threshold``
    since ``reset`` and/or a copy of every block, and forwards blocks to the next tap."""

    def __init__(self, nxt=None, keep: bool = False, threshold: float = 1e-4) -> None:
        self.next, self.keep, self.threshold = nxt, keep, threshold
        self.blocks: list[tuple[int, np.ndarray]] = []
        self.first_loud: int | None = None

    def reset(self) -> None:
        self.first_loud = None

    def write(self, block, clock) -> bool:
        if self.next is not None:
            self.next.write(block, clock)
        if self.keep:
            self.blocks.append((clock, block.copy()))
        if self.first_loud is None:
            loud = np.flatnonzero(np.abs(block).max(axis=1) > self.threshold)
            if loud.size:
                self.first_loud = clock + int(loud[0])
        return True


def test_played_note_is_heard_within_one_block_plus_latency(pulse_server, liveband_home, tmp_path):
    block = 256
    with Session(EngineConfig(), AudioConfig(blocksize=block)) as s:
        assert s.audio.active, s.snapshot().notices
        s.set_master_volume(1.0)
        mon = tmp_path / "monitor.wav"
        rec = pulse_server.record_output(mon)
        time.sleep(1.0)
        reported = s.audio.latency_ms / 1000.0
        # a piano on the player's channel: its onset crosses -60 dBFS within 64 frames and
        # the last note's tail is below that 0.8 s later (the flute's stays above -80 dBFS)
        s.mixer.set_program(3, 0)
        tee = Tee(threshold=1e-3)
        s.mixer.set_tap(tee)
        pressed, callbacks, dac_times, fixed = [], [], [], []
        for pitch in (72, 74, 76, 77, 79):
            time.sleep(0.8)
            tee.reset()
            t0 = time.monotonic()
            s.key_event(pitch, True, 120)
            stamp = s.inputs.key_q.last_time  # the sample the press was timed at
            fixed.append(s.audio.player_latency())  # the delay it was timed with
            assert wait_for(lambda: tee.first_loud is not None, 1.0)
            _, cb, _ = s.audio.first_block_after(t0)
            # the note sounds from its stamp: the first period of the player's two synths
            # (64-frame periods, half a period apart) that starts there, plus the attack
            assert stamp <= tee.first_loud <= stamp + 32 + 64, (stamp, tee.first_loud)
            start, _, dac = s.audio.block_at(tee.first_loud)
            pressed.append(t0)
            callbacks.append(cb)
            dac_times.append(dac + (tee.first_loud - start) / SR)
            time.sleep(0.12)
            s.key_event(pitch, False)
        time.sleep(1.0)
        rec.terminate()
        rec.wait(timeout=5)
        pressed, callbacks, dac_times = np.array(pressed), np.array(callbacks), np.array(dac_times)
        # Latency = the fixed player latency the press was timed with (the stream's
        # buffering ahead of the DAC, measured, plus one block) + the wait for the synth
        # period (under 0.7 ms): the same for every note, wherever the press fell in the
        # block. It is at most one block more than the worst wait for the next callback
        # (a block) plus the buffer to the DAC (the reported latency, or the DAC time
        # PortAudio gives when that is later: up to ~3.5 ms more on this server).
        latency = dac_times - pressed
        buffer = np.maximum(reported, dac_times - callbacks)
        fixed = np.array(fixed)
        assert (latency > 0).all(), latency
        assert (fixed <= 2 * block / SR + buffer.max() + 0.002).all(), (fixed, buffer)
        off = latency - fixed  # the period wait and the attack: under 2 ms
        late = (off < -0.0002) | (off > 0.002)
        # a note caught in a server stall is excused only when PortAudio reported it
        assert late.sum() == 0 or (late.sum() == 1 and s.mixer.xruns > 0), (off, s.mixer.xruns)
        # the jitter: sample-accurate timing keeps it near the 1 ms target (the number is
        # `liveband bench audio`'s); timing quantised to blocks would spread it over a
        # whole 256-frame block (5.3 ms): half of that is the margin here
        assert np.ptp(off[~late]) <= 0.0025, off

        xruns = s.mixer.xruns
        # The monitored output holds these notes where PortAudio said they would reach
        # the DAC (up to one constant offset of the monitor's timeline). A starved server
        # can drop a stretch of the monitor; that is allowed for one note, and only when
        # PortAudio reported an underrun.
        heard = np.array(onsets(read_wav(mon))) / SR
        tol = 0.005 + 64 / SR
        best = 0
        for o in (h - d for h in heard for d in dac_times):
            matched = sum(bool(np.any(np.abs(heard - d - o) < tol)) for d in dac_times)
            best = max(best, matched)
        assert best == 5 or (best == 4 and xruns > 0), (best, xruns, heard, dac_times)


def band_notes(events, channels):
    return [
        (t, k, c, d1) for t, k, c, d1, d2 in events if c in channels and (k == NOTE_OFF or (k == NOTE_ON and d2 > 0))
    ]


@pytest.mark.slow
def test_one_minute_session_with_the_band_records_what_was_played(pulse_server, liveband_home, tmp_path):
    with Session(EngineConfig(tempo=120.0, count_in_bars=1), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        mon = tmp_path / "monitor.wav"
        rec = pulse_server.record_output(mon)
        time.sleep(0.5)
        sent_log = EventLog()
        s.add_band_listener(sent_log)  # a copy of everything the band is told to play
        s.play()
        assert wait_for(lambda: s.generator is not None and s.generator.steps > 0, 5.0)
        tee = Tee(s.mixer.tap, keep=True)  # what the callback sent, block by block
        s.mixer.set_tap(tee)
        melody = [60, 62, 64, 65, 67, 65, 64, 62]
        played = []
        t_end = time.monotonic() + 60.0
        i = 0
        while time.monotonic() < t_end:
            p = melody[i % len(melody)]
            s.key_event(p, True, 100)
            played.append(p)
            time.sleep(0.35)
            s.key_event(p, False)
            time.sleep(0.15)
            i += 1
        snap = s.snapshot()
        assert snap.playing and snap.recording and not snap.counting_in
        # the band ran on the app's default backend, not a fallback (an ONNX export
        # that broke would leave the app on torch-cpu with only a notice)
        assert snap.backend == "onnx-cpu", snap.notices
        gen = s.generator
        assert gen.error is None and gen.steps > 400  # about 120 steps per 15 s at 120 BPM
        take = s.recorder.folder
        # Crash safety: while the take runs, both files on disk are already complete.
        assert read_wav(take / "mix.wav").shape[0] > 50 * SR
        mido.MidiFile(str(take / "session.mid"))
        t_stop = s.mixer.clock
        take_start = s.recorder.ring.first_time
        s.stop()
        rec.terminate()
        rec.wait(timeout=5)
        m = gen.metrics()

    # MIDI: the melody track holds every note played, in order; the band tracks hold
    # every note the band was told to play (the count-in click included), none invented.
    mid = mido.MidiFile(str(take / "session.mid"))
    by_name = {}
    for tr in mid.tracks[1:]:
        by_name[tr.name] = [msg for msg in tr if msg.type in ("note_on", "note_off")]
    # tracks named as the render's MIDI names them: part and instrument, the melody plain
    assert "Melody" in by_name and "Bass (Fingered Bass)" in by_name, list(by_name)
    mel = [msg.note for msg in by_name["Melody"] if msg.type == "note_on" and msg.velocity > 0]
    assert mel == played
    band_channels = {p.channel for p in P.BAND_PARTS}
    sent = band_notes(sent_log.events, band_channels)
    sent_before_stop = Counter((c, n) for t, k, c, n in sent if k == NOTE_ON and t < t_stop)
    sent_all = Counter((c, n) for t, k, c, n in sent if k == NOTE_ON)
    recorded = Counter(
        (msg.channel, msg.note)
        for name, msgs in by_name.items()
        if name != "Melody"
        for msg in msgs
        if msg.type == "note_on" and msg.velocity > 0
    )
    # every band note due before stop() was recorded; nothing the band was not told to play
    assert not (sent_before_stop - recorded), sent_before_stop - recorded
    assert not (recorded - sent_all), recorded - sent_all
    assert sum(recorded.values()) > 100
    assert m.late_steps <= 4, m  # the band kept ahead of the clock (a loaded 2-core box may stall a step)

    # WAV: exactly the audio the callback sent (16-bit), every block of the take, and
    # it is what the speakers got. The monitor's timeline has gaps wherever the
    # (unprivileged) server underran on this shared machine, so each half-second window
    # is located on its own and most, not all, must match.
    mix = read_wav(take / "mix.wav")
    assert t_stop - take_start <= mix.shape[0] <= t_stop - take_start + SR // 5
    assert mix.shape[0] > 45 * SR
    first = tee.blocks[0][0] - take_start
    sent = np.concatenate([b for _, b in tee.blocks])
    n = min(sent.shape[0], mix.shape[0] - first)
    assert n > 40 * SR
    assert np.abs(mix[first : first + n] - np.clip(sent[:n], -1, 1)).max() <= 1.5 / 32768
    ref = read_wav(mon)[:, 0]
    energy = np.sqrt(np.maximum(fftconvolve(ref**2, np.ones(SR // 2), mode="valid"), 0.0))
    # Floor the normaliser relative to the loudest window: dividing by ~0 in silent
    # stretches of the monitor (before the band starts, server underruns) would make
    # silence the best "match" for every segment.
    energy = np.maximum(energy, 0.05 * energy.max())
    matches = []
    for k in range(2, mix.shape[0] // SR - 2, 4):
        seg = mix[k * SR : k * SR + SR // 2, 0]
        lag = int(np.argmax(fftconvolve(ref, seg[::-1], mode="valid") / energy))
        matches.append(float(np.corrcoef(ref[lag : lag + seg.size], seg)[0, 1]))
    assert sum(r > 0.9 for r in matches) >= 0.5 * len(matches), np.round(matches, 3)


def test_server_gone_mid_session_gives_notice_and_keeps_the_recording(liveband_home):
    srv = SoftwareAudioServer("pulse", name="liveband-vanish").start()
    try:
        s = Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256))
    except BaseException:
        srv.stop()
        raise
    with s:
        assert s.audio.active, s.snapshot().notices
        s.play()
        for p in (60, 64, 67):
            s.key_event(p, True)
        time.sleep(2.0)
        take = s.recorder.folder
        recorded_before = s.mixer.clock - s.recorder.ring.first_time
        srv.stop()  # the audio server goes away
        assert wait_for(lambda: any("audio device lost" in n for n in s.snapshot().notices), 5.0), s.snapshot().notices
        assert s.snapshot().playing
        srv2 = SoftwareAudioServer("pulse", name="liveband-back").start()
        try:
            assert wait_for(lambda: any("audio restored" in n for n in s.snapshot().notices), 10.0), (
                s.snapshot().notices
            )
            blocks = s.mixer.blocks
            assert wait_for(lambda: s.mixer.blocks > blocks + 50, 5.0)
            assert not any("audio device lost" in n for n in s.snapshot().notices)
            s.stop()
        finally:
            s.close()
            srv2.stop()
    mix = read_wav(take / "mix.wav")
    assert mix.shape[0] >= recorded_before  # everything before the loss is kept
    assert np.abs(mix[SR // 2 : SR]).max() > 0.01  # and it is the chord that was playing

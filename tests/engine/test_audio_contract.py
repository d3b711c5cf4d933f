"""The first real-audio contract: a PortAudio output stream against the software server,
rendering a FluidSynth GM chord inside the callback, keeps time and is audible."""

from __future__ import annotations

import time
import wave

import numpy as np
import sounddevice as sd

from engine.synth import Synth

SR = 48000
BLOCK = 256
SECONDS = 10.0


def _stall_watchers(tmp_path, seconds):
    """liveband.bench.stallwatch on every CPU: wake-ups > 3 ms late, i.e. the machine took the CPU."""
    import os
    import subprocess
    import sys

    cpus = sorted(os.sched_getaffinity(0))
    return [
        (
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "liveband.bench.stallwatch",
                    str(c),
                    str(seconds),
                    str(tmp_path / f"stall{c}.txt"),
                ]
            ),
            str(tmp_path / f"stall{c}.txt"),
        )
        for c in cpus
    ]


def _stalls(watchers):
    from liveband.bench import stallwatch

    gaps = []
    for proc, path in watchers:
        proc.terminate()  # it writes its file on SIGTERM
        proc.wait(timeout=10)
        gaps += stallwatch.read(path)[1]
    return gaps


def test_fluidsynth_chord_streams_for_ten_seconds_without_underflow(pulse_server, soundfont, tmp_path):
    """No underflow of ours: one is forgiven only when a CPU was taken from the machine
    just before it (a shared 2-vCPU VM loses one for over 10 ms a few times in 10 minutes,
    which no audio code can bridge), or when the server did not call us for over two
    blocks before it (its own thread not scheduled: a fresh-clone run had one with no CPU
    stall near it); both are measured, not assumed. A callback of ours that ran long is
    called again at once: a short wait since its last return. So too for the count of
    blocks: those the server did not ask for (measured the same way) are not counted."""
    synth = Synth(soundfont, sample_rate=SR)
    for pitch in (48, 60, 64, 67):
        synth.note_on(0, pitch, 100)
    scratch = np.zeros((BLOCK, 2), dtype=np.float32)
    stats = {"calls": 0, "underflows": [], "last_end": None, "not_asked": 0.0}
    not_called = 2 * BLOCK / SR
    watchers = _stall_watchers(tmp_path, SECONDS + 30)
    time.sleep(0.3)  # the watchers are up

    def callback(outdata, frames, time_info, status):
        now = time.monotonic()
        stats["calls"] += 1
        last = stats["last_end"]
        if last is not None and now - last > not_called:  # the server did not ask us
            stats["not_asked"] += now - last - not_called
        if status.output_underflow:
            stats["underflows"].append((now, None if last is None else now - last))
        synth.render_into(scratch, 0, frames)
        outdata[:frames] = scratch[:frames]
        stats["last_end"] = time.monotonic()

    rec_path = tmp_path / "monitor.wav"
    rec = pulse_server.record_output(rec_path)
    time.sleep(0.5)
    with sd.OutputStream(
        samplerate=SR, blocksize=BLOCK, channels=2, dtype="float32", callback=callback, latency="low"
    ) as stream:
        t0 = time.monotonic()
        time.sleep(SECONDS)
        elapsed = time.monotonic() - t0
        calls_at_end, not_asked = stats["calls"], stats["not_asked"]
        assert stream.latency < 0.1
    time.sleep(0.3)
    rec.terminate()
    rec.wait(timeout=5)
    synth.close()

    stalls = _stalls(watchers)
    # blocks the server never asked for (its thread or the VM stalled, long after our
    # last return) are not ours to keep; a callback of ours that runs long is asked
    # again at once, so our own lateness still counts
    expected = (elapsed - not_asked) * SR / BLOCK
    assert not_asked < 1.0 and calls_at_end >= 0.99 * expected, (calls_at_end, expected, not_asked, stalls)
    ours = [
        (u, wait)
        for u, wait in stats["underflows"]
        if not any(u - 0.05 <= a <= u for a, g in stalls if g >= 5.0) and not (wait is not None and wait > not_called)
    ]
    assert not ours and len(stats["underflows"]) <= 2, (stats["underflows"], stalls)
    with wave.open(str(rec_path)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    assert audio.size > SR  # at least a second was recorded
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms > 0.01, f"monitor is silent (rms {rms})"


def test_player_events_are_timed_at_arrival_and_reach_the_dac_a_fixed_delay_later(pulse_server, soundfont):
    """A player's note is stamped on the audio clock when it arrives: the sample that
    reaches the DAC ``player_latency`` later (by PortAudio's DAC time of each block), not
    'the next block', whose distance from the key press varies by a whole block."""
    import random

    from engine.audio_out import AudioOut
    from engine.events import IMMEDIATE, NOTE_OFF, NOTE_ON, EventQueue
    from engine.mixer import Mixer

    synth = Synth(soundfont, sample_rate=SR, reverb=False)
    mixer = Mixer(synth, SR, 512)
    q = EventQueue(1024)
    mixer.add_queue(q)
    log = EventQueue(1 << 12)
    mixer.set_event_log(log)
    audio = AudioOut(mixer, blocksize=BLOCK)
    assert q.stamper is not None and mixer.arrival_time() == IMMEDIATE  # no stream yet
    audio.start()
    rng = random.Random(5)
    pushes = []
    try:
        time.sleep(3.0)  # a new PulseAudio stream stalls briefly after its start
        for i in range(40):
            time.sleep(0.02 + rng.random() * BLOCK / SR)  # every phase of the block
            lat = audio.player_latency()
            t0 = time.monotonic()
            q.push(IMMEDIATE, NOTE_ON, 3, 60 + i % 12, 100)
            pushes.append((t0, q.last_time, lat))
            q.push(IMMEDIATE, NOTE_OFF, 3, 60 + i % 12)
        time.sleep(0.3)
        errors = []
        # A push while the server has stalled the stream (everything rendered already
        # played) is IMMEDIATE by design (AudioOut.arrival_time): a loaded fresh-clone run
        # met one such push of 40. Nearly all must be stamped on the audio clock.
        stamped = [(t0, stamp, lat) for t0, stamp, lat in pushes if stamp != IMMEDIATE]
        assert len(stamped) >= 0.9 * len(pushes), [s for _, s, _ in pushes]
        for t0, stamp, lat in stamped:
            assert lat is not None
            c, _, dac = audio.block_at(stamp)
            errors.append(dac + (stamp - c) / SR - (t0 + lat))
    finally:
        audio.stop()
        synth.close()
    # the mixer applied the notes at their stamps (a late one would be moved and counted)
    out = np.zeros(256, dtype=log._buf.dtype)
    n = log.pop_until(10**12, out)
    applied_on = [int(t) for t, k in zip(out["time"][:n], out["kind"][:n]) if k == NOTE_ON]
    stamps = [s for _, s, _ in pushes]
    on_time = sum(1 for a, s in zip(applied_on, stamps) if s != IMMEDIATE and a == s)
    assert on_time >= 0.9 * len(stamps), (mixer.late_events, applied_on[:5], stamps[:5])
    err_ms = np.abs(np.asarray(errors)) * 1000
    # near the fixed delay (one sample of rounding plus the DAC clock's wander; the number
    # is the bench's); block-quantised timing would spread them over a whole block
    # (5.3 ms: a median near 2.7 ms, half of them over 2.5 ms). The server's DAC times
    # themselves wander by ~2 ms for a few blocks now and then (a fresh-clone run: 5
    # notes in a row 2.2 ms off, the rest under 0.2 ms)
    assert np.median(err_ms) < 1.0 and np.mean(err_ms < 2.5) >= 0.75, np.round(err_ms, 2)


def _fill_timing(audio, n, rate, block, *, ago=0.0):
    """Push n rows of a steady stream into AudioOut's timing ring, as its callback would,
    ending ``ago`` seconds before now (negative: ahead of now): block k at clock k*block,
    its first frame at the DAC at base + k*block/rate + 10.67 ms, its callback 10.67 ms
    before that. (engine.dac_timing's own tests cover what the rows mean.)"""
    base = time.monotonic() - ago - n * block / rate
    for k in range(n):
        t = base + k * block / rate
        audio.timing.push(k * block, t, t + 0.01067, 0.01067 + block / rate, 0.0, False)
    audio.mixer.clock = n * block
    return base


def test_a_stamp_runs_no_numpy_between_its_clock_read_and_its_push_once_the_line_is_refreshed(soundfont, monkeypatch):
    """The player's thread can lose the GIL inside any Python between reading the clock
    and pushing the note, and then wait ms for it: long enough for the callback covering
    the stamp to run first. So the DAC line is computed by a helper (``refresh_line``),
    and a stamp only reads it; a line nobody refreshed is computed at the stamp."""
    import engine.audio_out as ao
    from engine.mixer import Mixer

    with Synth(soundfont, sample_rate=SR, reverb=False) as synth:
        audio = ao.AudioOut(Mixer(synth, SR, 512), blocksize=BLOCK)
        audio.stream = object()  # timing only: no PortAudio stream is touched
        base = _fill_timing(audio, 600, SR, BLOCK, ago=-1.0)
        lat = audio.player_latency()
        audio.refresh_line()
        # one more block of the same stream since (the old code recomputed the line then)
        t = base + 600 * BLOCK / SR
        audio.timing.push(600 * BLOCK, t, t + 0.01067, 0.01067 + BLOCK / SR, 0.0, False)
        audio.mixer.clock = 601 * BLOCK

        def no_numpy(*a, **k):
            raise AssertionError("numpy work inside the stamp")

        with monkeypatch.context() as m:
            m.setattr(ao.np, "median", no_numpy)
            m.setattr(ao.np, "percentile", no_numpy)
            t0 = time.monotonic()
            stamp = audio.arrival_time()
        assert abs(base + 0.01067 + stamp / SR - (t0 + lat)) < 2.0 / SR + 0.0005
        # a note that arrived 2 ms ago (its handler read the clock then) is stamped from
        # then: 96 samples earlier than one arriving now
        stamp_now = audio.arrival_time()
        stamp_then = audio.arrival_time(time.monotonic() - 0.002)
        assert abs((stamp_now - stamp_then) - 0.002 * SR) <= 3
        # a line older than LINE_FRESH_S is not trusted: the stamp computes it (here the
        # line stepped 4 ms later since it was refreshed)
        time.sleep(ao.LINE_FRESH_S + 0.01)
        for k in range(601, 617):
            t = base + k * BLOCK / SR
            audio.timing.push(k * BLOCK, t, t + 0.01067 + 0.004, 0.01067 + BLOCK / SR, 0.0, False)
        audio.mixer.clock = 617 * BLOCK
        t0 = time.monotonic()
        stamp = audio.arrival_time()
        assert abs(base + 0.01067 + 0.004 + stamp / SR - (t0 + lat)) < 2.0 / SR + 0.0005
        # and refresh_line recomputes only every LINE_REFRESH_S
        computed = []
        real_line = ao.dac_line
        monkeypatch.setattr(ao, "dac_line", lambda *a: computed.append(1) or real_line(*a))
        t = base + 617 * BLOCK / SR
        audio.timing.push(617 * BLOCK, t, t + 0.01067 + 0.004, 0.01067 + BLOCK / SR, 0.0, False)
        audio.refresh_line()  # the stamp just computed it
        assert computed == []
        time.sleep(ao.LINE_REFRESH_S + 0.005)
        audio.refresh_line()
        assert computed == [1]

"""Arranger mode's latency: from a chord struck below the split to the band playing it.

``run`` opens a session on a private PulseAudio null sink (as ``liveband bench audio``),
turns arranger mode on, plays, and every ~0.8 s strikes a chord of three keys below the
split through ``Session.key_event`` (the path a MIDI note takes after rtmidi), a few
milliseconds apart as a hand does. For each chord it reports:

- ``chord_to_band_onset_ms``: from the chord's first key arriving to the first band onset
  (bass, keys or pad note-on) that is a tone of that chord, at or after the step the band
  plays it from. Both ends are on the audio clock: the key is stamped to sound
  ``player_latency`` after it arrived, so arrival -> onset = player latency + (onset
  sample - key sample) / rate, on the same basis as bench audio's MIDI-in to sound;
- ``chord_steps_after_key``: the step the band's chord stream changes on minus the 16th
  step the key fell on (1 = the next step, the target);
- ``chord_stream_ok``: chords whose step in the band's chord stream is that chord.

Thread: the caller's (it drives the session like the UI does).
"""

from __future__ import annotations

import random
import time

import numpy as np

# chords for the left hand (below the default split F#3): C, Am, F, G7, Dm7, E7
CHORDS = ((36, 40, 43), (45, 48, 52), (41, 45, 48), (43, 47, 50, 53), (38, 41, 45, 48), (40, 44, 47, 50))


class _Band:
    """Band listener: keeps (time, channel, pitch) of every note-on. Thread: generator."""

    def __init__(self) -> None:
        self.onsets: list[tuple[int, int, int]] = []

    def push(self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0) -> bool:
        from engine.events import NOTE_ON

        if kind == NOTE_ON and data2 > 0:
            self.onsets.append((int(time), int(channel), int(data1)))
        return True


def _pct(x: list[float]) -> dict:
    if not x:
        return {"n": 0}
    a = np.asarray(x, np.float64)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "max": round(float(a.max()), 2),
    }


def measure(s, band: _Band, chords: int, log=None) -> dict:
    """Strike ``chords`` chords into a playing session in arranger mode (``band`` was added
    as its listener before play) and measure each (see the module doc)."""
    from engine import parts as P
    from models.tokens import chord_pitch_classes

    arr = s.steering.arranger
    rate = s.sample_rate
    band_channels = {P.BASS.channel, P.KEYS.channel, P.PAD.channel}
    before = len(arr.readings)
    stream: dict[int, int] = {}  # the band's chord per step (the generator keeps the last 256)
    rng = random.Random(0)
    for i in range(chords):
        keys = CHORDS[i % len(CHORDS)]
        for p in keys:
            s.key_event(p, True, 90)
            time.sleep(0.004)
        time.sleep(0.5)
        for p in keys:
            s.key_event(p, False)
        time.sleep(0.3 + rng.uniform(0.0, 0.2))  # each chord at another phase of the 16th
        if s.generator is not None:
            stream.update((int(f[0]), int(f[1])) for f in list(s.generator.recent))
        if log and (i + 1) % 10 == 0:
            log(f"  chords: {i + 1}/{chords}")
    time.sleep(0.6)
    clock, gen = s.clock, s.generator
    pl = s.audio.player_latency() or 0.0
    if gen is not None:
        stream.update((int(f[0]), int(f[1])) for f in list(gen.recent))
    onsets = sorted(band.onsets)
    readings = list(arr.readings)[before:]
    ms, steps, ok = [], [], 0
    for key_t, step, tok in readings:
        tones = chord_pitch_classes(tok)
        k0 = clock.step_at(key_t)
        if (key_t - clock.step_time(k0)) * 2 >= clock.step_time(k0 + 1) - clock.step_time(k0):
            k0 += 1  # the step the key falls on (nearest, as the band rounds)
        steps.append(step - k0)
        ok += int(stream.get(step) == tok)
        t_from = clock.step_time(step)
        hit = next((t for t, ch, p in onsets if t >= t_from and ch in band_channels and p % 12 in tones), None)
        if hit is not None:
            ms.append(1000.0 * (pl + (hit - key_t) / rate))
    return {
        "chords": len(readings),
        "chord_stream_ok": ok,
        "late_chords": int(arr.late),
        "player_latency_ms": round(1000.0 * pl, 2),
        "chord_to_band_onset_ms": _pct(ms),
        "chord_steps_after_key": _pct([float(x) for x in steps]),
        "step_ms_at_tempo": round(1000.0 * (clock.step_time(1) - clock.step_time(0)) / rate, 1),
    }


def run(blocksize: int = 256, chords: int = 30, checkpoint: str | None = None, log=None) -> dict:
    """A session of its own on a software audio server (see the module doc)."""
    from liveband.bench.softaudio import PrivateHome, SoftwareAudioServer
    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import Session

    home = PrivateHome("liveband-bench-chords-")
    srv = SoftwareAudioServer("pulse").start()
    try:
        with Session(
            EngineConfig(tempo=110.0, count_in_bars=0, checkpoint=checkpoint),
            AudioConfig(sample_rate=48000, blocksize=blocksize),
        ) as s:
            if not s.audio.active:
                raise RuntimeError("; ".join(s.snapshot().notices))
            band = _Band()
            s.add_band_listener(band)
            s.set_arranger(True)
            s.play()
            time.sleep(1.5)
            out = measure(s, band, chords, log)
            out["blocksize"] = blocksize
            s.stop()
        return out
    finally:
        srv.stop()
        home.close()

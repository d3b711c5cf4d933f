"""A buffer-size or output-device change while the band plays (issue 15): on the real
session against the software PulseAudio server, a held organ note (a tone with no
silence of its own) is recorded from the speakers' monitor across the switches, and no
silence in it is longer than one block; the band plays on; and the switch does no full
garbage collection (which held the GIL for 0.15-0.6 s: a frozen window, and a silent
block for a Python callback)."""

from __future__ import annotations

import gc
import time
import wave

import numpy as np
from waiting import wait_for

from engine.parts import MELODY
from liveband.bench import stallwatch
from liveband.config import AudioConfig, EngineConfig
from liveband.session import Session

SR = 48000
ORGAN = 19  # church organ: it sounds as long as the key is held


def silences_ms(path, start_s: float, end_s: float, level: float = 0.01, shortest_ms: float = 1.5) -> list[float]:
    """Every run of the recording between ``start_s`` and ``end_s`` before its end (while
    the note is held) below ``level`` longer than ``shortest_ms`` (a held note's zero
    crossings are far shorter), in ms."""
    with wave.open(str(path)) as w:
        assert w.getframerate() == SR
        a = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2).astype(np.float32) / 32768
    a = a[int(start_s * SR) : len(a) - int(end_s * SR)]
    loud = np.flatnonzero(np.abs(a).max(axis=1) > level)
    assert loud.size > SR, "the held note was not recorded"
    d = np.diff(loud)
    return [float(x) / SR * 1000 for x in d[d > SR * shortest_ms / 1000]]


def test_buffer_and_device_switches_keep_the_band_and_are_silent_under_one_block(pulse_server, liveband_home, tmp_path):
    full: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(time.monotonic())

    watchers = stallwatch.start(str(tmp_path), 120.0)  # the machine's own stalls, measured
    t_start = time.monotonic()
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        assert s.prepare(60)
        s.set_master_volume(1.0)
        s.play()
        assert wait_for(lambda: s.generator is not None and s.generator.steps > 8, 10.0)
        s.mixer.set_program(MELODY.channel, ORGAN)  # after play, which sets the parts' programs
        rec = pulse_server.record_output(tmp_path / "monitor.wav")
        time.sleep(1.0)
        s.key_event(60, True, 110)
        time.sleep(1.0)
        calls: list[float] = []
        windows: list[tuple[float, float]] = []
        gc.callbacks.append(on_gc)
        try:
            # 256 -> 512, another output name for the same speakers, back to 256 on the
            # default: each switch touches a 512-frame stream, so one block is 10.7 ms
            for output, blocksize in ((None, 512), ("pulse", None), ("default", 256)):
                steps, clock = s.generator.steps, s.mixer.clock
                t0 = time.monotonic()
                s.set_audio_devices(output=output, blocksize=blocksize)
                calls.append(time.monotonic() - t0)
                windows.append((t0, time.monotonic()))
                assert s.audio.active, s.snapshot().notices
                time.sleep(1.0)
                snap = s.snapshot()
                assert snap.playing and s.generator.steps > steps + 4 and s.mixer.clock > clock + SR // 2
        finally:
            gc.callbacks.remove(on_gc)
        assert s.audio.blocksize == 256
        s.key_event(60, False)
        time.sleep(0.3)
        rec.terminate()
        rec.wait(timeout=5)
    assert full == [], f"{len(full)} full collections during the switches (calls took {calls} s)"
    # the note sounds from ~1 s into the recording (the band before it has rests) and the
    # first switch is a second later; it is released 0.3 s before the recording ends
    gaps = silences_ms(tmp_path / "monitor.wav", 1.5, 0.6)
    stalls, _ = stallwatch.collect(watchers, t_start, time.monotonic() - t_start)
    # a virtual CPU taken away inside a switch (a stormy VM) silences the speakers for as
    # long, whatever the code does: the gap may exceed a block by the longest such stall
    during = [ms for cpu in stalls for t, ms in cpu if any(a - 0.05 <= t <= b + 0.05 for a, b in windows)]
    print(
        f"switch calls {[round(c * 1000) for c in calls]} ms; silences {[round(g, 1) for g in gaps]} ms; "
        f"machine stalls during them {during} ms"
    )
    assert max(gaps, default=0.0) <= 512 / SR * 1000 + max(during, default=0.0), (gaps, during)

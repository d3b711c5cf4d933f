"""The C audio callback (engine/native) keeps playing while another thread holds the GIL.

Contrast with the Python callback: the same stream, the same chord and the same GIL hog
give it underflows and holes in the sink's output; the C one gives none of ours."""
from __future__ import annotations

import ctypes
import threading
import time
import wave

import numpy as np
import pytest

from engine import native
from engine.audio_out import AudioOut
from engine.events import IMMEDIATE, NOTE_ON, PROGRAM, EventQueue
from engine.mixer import Mixer
from engine.synth import Synth

from test_audio_contract import _stall_watchers, _stalls

SR = 48000
BLOCK = 256
WARMUP_S = 3.0         # a new PulseAudio stream underflows a few times as it starts
WINDOW_S = 6.0
HOLD_S = 0.05          # the GIL held in one piece, as a long C call made under it would
GAP = 48               # 1 ms of exact digital silence inside the chord is a hole


def _hog(stop: threading.Event, holds: list) -> None:
    """Hold the GIL for HOLD_S, let go for 10 ms, again: a PyDLL call keeps the GIL while
    in C (as a numpy op or library call that does not release it would)."""
    usleep = ctypes.PyDLL(None).usleep
    usleep.argtypes = [ctypes.c_uint]
    while not stop.is_set():
        usleep(int(HOLD_S * 1e6))
        holds.append(time.monotonic())
        time.sleep(0.01)


def _holes(path) -> int:
    """Runs of >= GAP zero samples between the first and the last audible sample."""
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, w.getnchannels())[:, 0]
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 32)
    if loud.size == 0:
        return -1
    seg = x[loud[0]:loud[-1] + 1] == 0
    edges = np.diff(np.concatenate(([0], seg.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int(((ends - starts) >= GAP).sum())


@pytest.mark.parametrize("use_c", [True, False], ids=["c-callback", "python-callback"])
def test_a_thread_holding_the_gil_cannot_delay_the_c_callback(pulse_server, soundfont, tmp_path, use_c):
    if use_c and native.lib() is None:
        pytest.fail(f"the C callback is not built: {native.unavailable}")
    synth = Synth(soundfont, sample_rate=SR, reverb=False)
    mixer = Mixer(synth, SR, 512, native=use_c)
    assert mixer.native == use_c
    q = EventQueue()
    mixer.add_queue(q)
    audio = AudioOut(mixer, blocksize=BLOCK, player_channel=-1)
    watchers = _stall_watchers(tmp_path, WARMUP_S + WINDOW_S + 30)
    mon = tmp_path / "monitor.wav"
    stop, holds = threading.Event(), []
    hog = threading.Thread(target=_hog, args=(stop, holds), daemon=True)
    audio.start()
    try:
        time.sleep(WARMUP_S)
        rec = pulse_server.record_output(mon)
        time.sleep(0.5)
        q.push(IMMEDIATE, PROGRAM, 0, 19)             # a church organ: it sustains, no decay
        for p in (48, 60, 64, 67):
            q.push(IMMEDIATE, NOTE_ON, 0, p, 100)
        time.sleep(0.3)
        xruns0, blocks0, n0 = mixer.xruns, mixer.blocks, audio._blk_n
        t0 = time.monotonic()
        hog.start()
        time.sleep(WINDOW_S)
        stop.set()
        hog.join()
        elapsed = time.monotonic() - t0
        xruns, blocks, n1 = mixer.xruns - xruns0, mixer.blocks - blocks0, audio._blk_n
        time.sleep(0.2)
        rec.terminate()
        rec.wait(timeout=5)
    finally:
        stop.set()
        audio.stop()
        synth.close()
    stalls = _stalls(watchers)
    idx = np.arange(n0, n1) & (len(audio._blk_xrun) - 1)
    under = audio._blk_time[idx][audio._blk_xrun[idx]]
    # an underflow is the machine's when a CPU was taken away (>= 5 ms) just before it
    theirs = [u for u in under if any(u - 0.05 <= a <= u for a, g in stalls if g >= 5.0)]
    holes = _holes(mon)
    assert len(holds) >= 0.8 * WINDOW_S / (HOLD_S + 0.01)        # the GIL really was held
    if use_c:
        assert holes >= 0, "the monitor is silent"
        assert xruns - len(theirs) == 0, (xruns, under, stalls)
        assert holes <= len(theirs), (holes, theirs)
        assert blocks >= 0.99 * elapsed * SR / BLOCK, (blocks, elapsed)
    else:
        # the contrast: what the same test catches in a callback that needs the GIL
        assert xruns - len(theirs) >= 10 and holes >= 10, (xruns, holes)

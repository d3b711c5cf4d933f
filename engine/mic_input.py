"""Microphone -> HumTracker -> melody notes on the output's audio clock (live mic mode).

A sounddevice InputStream callback only copies each block into a lock-free ring; a
worker thread feeds the ring's audio to ``engine.pitch.live.HumTracker`` (pitch tracker +
note segmenter) and hands each note to ``on_note(sample, pitch, on)``.

Clock: on the first input callback, the time its first sample reached the ADC is mapped
onto the output clock through the output stream's per-block DAC times (the sample the
player was hearing at that instant), so a hummed note lands where the player heard the
band when singing it. The tracker's own delay is compensated by HumTracker.

Thread: constructor/close from the owner; ``level_db`` / ``pitch`` read by anyone.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from engine.audio_out import PA_LOCK
from engine.ring import AudioRing


class MicInput:
    def __init__(self, on_note: Callable[[int, int, bool], None], audio_out, *, device=None,
                 sample_rate: int = 48000, tracker: str = "pesto", blocksize: int = 480) -> None:
        import sounddevice as sd

        from engine.pitch.live import HumTracker
        from engine.pitch.tracker import hz_to_midi

        self._hz_to_midi = hz_to_midi
        self.on_note = on_note
        self.audio_out = audio_out
        self.sample_rate = int(sample_rate)
        self.hum = HumTracker(tracker, input_rate=self.sample_rate, clock_rate=self.sample_rate)
        self.ring = AudioRing(self.sample_rate * 2)
        self.overflows = 0
        self.level_db = -120.0
        self.pitch: float | None = None
        self.error: str | None = None
        self._offset_set = False
        self._stop = threading.Event()
        with PA_LOCK:
            self._stream = sd.InputStream(samplerate=self.sample_rate, channels=1, dtype="float32",
                                          blocksize=blocksize, device=device, callback=self._callback)
        self._worker = threading.Thread(target=self._run, name="liveband-mic", daemon=True)
        self._worker.start()
        with PA_LOCK:
            self._stream.start()

    def _callback(self, indata, frames, time_info, status) -> None:
        """Thread: audio input. Copies only (the first call also fixes the clock map)."""
        if not self._offset_set:
            self._offset_set = True
            self._map_clock(time_info.inputBufferAdcTime - time_info.currentTime)
        if not self.ring.write(indata):
            self.overflows += 1

    def _map_clock(self, adc_offset: float) -> None:
        out = self.audio_out
        now = time.monotonic()
        adc = now + adc_offset
        if out is None or out.last_block_time == 0.0:
            self.hum.clock_offset = 0
            return
        # the block rendered last reaches the DAC at last_block_time + its DAC offset
        dac = out.last_block_time + out.last_output_dac_offset
        heard = out.last_block_clock + int(round((adc - dac) * self.sample_rate))
        self.hum.clock_offset = heard

    def _run(self) -> None:
        buf = np.zeros((self.sample_rate // 10, 2), np.float32)
        while not self._stop.wait(0.01):
            try:
                n = self.ring.read_into(buf)
                if n == 0:
                    continue
                for ev in self.hum.feed(buf[:n, 0]):
                    self.on_note(int(ev.time), int(ev.pitch), bool(ev.on))
                st = self.hum.stats
                self.level_db = float(st.level_db)
                self.pitch = float(self._hz_to_midi(st.f0_hz)) if st.voiced and st.f0_hz > 0 else None
            except Exception as exc:     # keep the session alive; say what broke
                self.error = f"pitch tracking stopped: {exc}"
                return

    def close(self) -> None:
        self._stop.set()
        with PA_LOCK:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:
                pass
        self._worker.join(timeout=2)

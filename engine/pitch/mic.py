"""Microphone input: a sounddevice InputStream into a preallocated ring buffer, and
``HumInput``, which runs a HumTracker on it in a worker thread.

The input callback only copies (and mixes to mono) into the ring and counts overflows:
no allocation, no locks, no logging. A worker thread drains the ring every few ms,
feeds the HumTracker (which resamples to 16 kHz, so 8 kHz or 96 kHz devices work) and
queues melody events for the session to ``poll``.

Health, as notices a UI can show: the stream never delivered a block, stopped
delivering (device unplugged / server gone), delivers only digital silence, delivers
non-finite samples, or clips.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from engine.pitch import MelodyEvent


class MicError(RuntimeError):
    """The microphone could not be opened (one line, says what to do)."""


@dataclass(frozen=True)
class MicConfig:
    device: str | int | None = None     # None: the system default input
    sample_rate: int | None = None      # None: the device's default rate
    channels: int = 1
    blocksize: int = 0                  # 0: let PortAudio choose
    gain_db: float = 0.0
    ring_seconds: float = 8.0          # rides out seconds-long CPU stalls without losing audio
    latency: str | float = "low"

    def __post_init__(self) -> None:
        if self.sample_rate is not None and not 4000 <= self.sample_rate <= 384000:
            raise ValueError(f"unsupported input sample rate {self.sample_rate} Hz")
        if not 1 <= self.channels <= 32:
            raise ValueError("channels must be 1-32")
        if not -40.0 <= self.gain_db <= 40.0:
            raise ValueError("input gain must be -40..+40 dB")
        if not 0.1 <= self.ring_seconds <= 60:
            raise ValueError("ring must hold 0.1-60 s")


class MicInput:
    """One input stream into an SPSC float32 ring (mono).

    Thread: ``start``/``stop``/``read``/``notice`` from one controlling thread (the pitch
    worker); ``_callback`` runs on PortAudio's audio thread.
    """

    def __init__(self, config: MicConfig | None = None) -> None:
        self.cfg = config or MicConfig()
        self.stream = None
        self.sample_rate = 0
        self.latency_s = 0.0
        self._ring = np.zeros(1, np.float32)
        self._mask = 0
        self._write = 0          # only the callback changes this
        self._read = 0           # only the reader changes this
        self._mix = np.zeros(1, np.float32)
        self.callbacks = 0
        self.overflows = 0       # PortAudio input overflows (reported by the stream)
        self.overruns = 0        # blocks dropped because the reader fell behind
        self.last_callback = 0.0
        self.started_at = 0.0
        self.error: str | None = None
        self._zero_run = 0.0     # seconds of exact digital silence read in a row
        self.nonfinite = 0
        self.level_db = -120.0
        self.peak_db = -120.0

    def device_info(self) -> tuple[dict, int]:
        """(PortAudio device info, the sample rate the stream will use)."""
        import sounddevice as sd

        c = self.cfg
        try:
            info = sd.query_devices(c.device, "input")
        except Exception as exc:
            raise MicError(f"no usable input device {c.device!r} ({exc}); see 'liveband devices'") from None
        return info, int(c.sample_rate or info["default_samplerate"])

    def start(self) -> "MicInput":
        import sounddevice as sd

        c = self.cfg
        info, rate = self.device_info()
        cap = 1 << int(np.ceil(np.log2(max(1024, c.ring_seconds * rate))))
        self._ring = np.zeros(cap, np.float32)
        self._mask = cap - 1
        self._mix = np.zeros(max(8192, cap // 4), np.float32)
        self._write = self._read = 0
        try:
            self.stream = sd.InputStream(device=c.device, samplerate=rate, channels=c.channels,
                                         dtype="float32", blocksize=c.blocksize, latency=c.latency,
                                         callback=self._callback)
            self.stream.start()
        except Exception as exc:
            self.stream = None
            raise MicError(f"cannot open the microphone {info['name']!r} at {rate} Hz ({exc})") from None
        self.sample_rate = rate
        self.latency_s = float(self.stream.latency)
        self.started_at = time.monotonic()
        return self

    def _callback(self, indata, frames, t, status) -> None:   # Thread: audio
        if status and status.input_overflow:
            self.overflows += 1              # PortAudio / the server lost input
        w = self._write
        if w + frames - self._read > self._mask + 1:
            self.overruns += 1               # our reader fell behind: drop this block
            return
        if indata.shape[1] == 1:
            src = indata[:, 0]
        else:
            src = self._mix[:frames]
            np.mean(indata, axis=1, out=src)
        start = w & self._mask
        first = min(frames, self._mask + 1 - start)
        self._ring[start:start + first] = src[:first]
        if first < frames:
            self._ring[:frames - first] = src[first:]
        self._write = w + frames             # publish after the copy
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def available(self) -> int:
        return self._write - self._read

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Everything captured since the last read (at most max_frames), mono float32,
        with the user's gain applied and NaN/inf zeroed (and counted)."""
        n = self.available()
        if max_frames is not None:
            n = min(n, max_frames)
        if n <= 0:
            return np.zeros(0, np.float32)
        r = self._read
        idx = (r + np.arange(n)) & self._mask
        x = self._ring[idx]
        self._read = r + n
        bad = ~np.isfinite(x)
        if bad.any():
            self.nonfinite += int(bad.sum())
            x[bad] = 0.0
        if self.cfg.gain_db:
            x *= np.float32(10 ** (self.cfg.gain_db / 20))
        peak = float(np.abs(x).max())
        self.peak_db = 20 * np.log10(max(peak, 1e-6))
        self.level_db = 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-12)
        self._zero_run = self._zero_run + n / self.sample_rate if peak == 0.0 else 0.0
        return x

    def notice(self) -> str | None:
        """A one-line problem report, or None when the microphone looks healthy."""
        now = time.monotonic()
        if self.stream is None:
            return "microphone not open"
        if self.callbacks == 0:
            if now - self.started_at > 1.5:
                return "the microphone delivers nothing (check the input device and its permissions)"
            return None
        if now - self.last_callback > 1.0 or not self.stream.active:
            return "the microphone stopped delivering audio (unplugged, or the audio server went away)"
        if self._zero_run > 3.0:
            return "the microphone delivers only silence (muted?)"
        if self.nonfinite:
            return f"the microphone delivered {self.nonfinite} invalid (NaN/inf) samples; they were zeroed"
        if self.peak_db >= -0.1:
            return "the microphone input clips; lower the input gain"
        return None

    def stop(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception:
                pass
            self.stream = None


class HumInput:
    """Microphone -> HumTracker in a worker thread; the session polls melody events.

    Thread: construct/start/stop/poll from the session (any one thread); the worker
    thread owns the HumTracker; the audio thread only fills the MicInput ring.
    """

    def __init__(self, mic: MicConfig | None = None, tracker: str = "pesto", clock_rate: int | None = None,
                 clock_offset: int = 0, poll_s: float = 0.005, **hum_kw) -> None:
        self.mic = MicInput(mic)
        self.tracker_name = tracker
        self.clock_rate = clock_rate
        self.clock_offset = clock_offset
        self.poll_s = poll_s
        self.hum_kw = hum_kw
        self.hum = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.worker_error: str | None = None

    def start(self) -> "HumInput":
        from engine.pitch.live import HumTracker

        # build (and warm up) the tracker before the stream runs, so loading the model
        # does not leave the first seconds of audio piling up in the ring
        _, rate = self.mic.device_info()
        self.hum = HumTracker(self.tracker_name, input_rate=rate, clock_rate=self.clock_rate or rate,
                              clock_offset=self.clock_offset, keep_history=False, **self.hum_kw)
        self.hum.feed(np.zeros(rate // 20, np.float32))
        self.hum.reset()
        self.mic.start()
        self.hum.input_latency_s = self.mic.latency_s
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="liveband-hum", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:   # Thread: worker
        try:
            while not self._stop.is_set():
                x = self.mic.read()
                if x.size:
                    self.hum.feed(x)
                else:
                    time.sleep(self.poll_s)
            self.hum.feed(self.mic.read())
            self.hum.finish()
        except Exception as exc:   # keep the app alive; the notice tells the user
            self.worker_error = f"pitch tracking stopped: {exc}"

    def poll(self) -> list[MelodyEvent]:
        return self.hum.poll() if self.hum is not None else []

    def notice(self) -> str | None:
        return self.worker_error or self.mic.notice()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.mic.stop()

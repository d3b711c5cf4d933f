"""The session's audio output device: open at the negotiated rate, retry the default
output when a server comes up later, switch device or block size, and the audio clock
read between callbacks.

The mixer's sample counter is the master clock; ``now()`` interpolates it between
callbacks, ``sample_at(t)`` maps a monotonic time to the sample heard then. The stream is
replaced (never restarted in place) on a device switch, so ``out`` may change: read it
each time. Thread: UI and housekeeper, under the session lock; ``now``/``sample_at``/
``latency_ms``: any. A stream's close that a frozen server holds up is left to
engine.audio_out's reaper, so the lock is never held while it waits."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from engine.audio_devices import AudioUnavailable, input_devices, negotiate_rate, output_devices, refresh_devices
from engine.audio_out import AudioOut, streams_closing
from engine.mixer import Mixer
from liveband.config import AudioConfig
from liveband.session_notices import Notices

RETRY_EVERY = 12  # housekeeping ticks between tries of the default output (~3 s)


def open_rate(cfg: AudioConfig, notices: Notices) -> int:
    """The rate the output device runs at (the configured one when it cannot tell)."""
    try:
        return negotiate_rate(cfg.output_device, cfg.sample_rate)
    except AudioUnavailable as exc:
        notices.problem("audio", str(exc))
        return cfg.sample_rate


class SessionAudio:
    def __init__(
        self, mixer: Mixer, cfg: AudioConfig, sample_rate: int, lock: threading.RLock, notices: Notices
    ) -> None:
        self._mixer = mixer
        self.config = cfg
        self.sample_rate = sample_rate
        self._lock = lock
        self._notices = notices
        self.closed = False  # set under the lock by close(): no stream may open after
        self.out = self._make(cfg)
        # the stream was started and not stopped since (AudioOut.watch reopens such a
        # stream when its device returns; one that never opened is retried here)
        self.wanted = False

    def _make(self, cfg: AudioConfig) -> AudioOut:
        return AudioOut(self._mixer, device=cfg.output_device, blocksize=cfg.blocksize, latency=cfg.latency)

    def start(self) -> None:
        try:
            self._start_out()
            self._notices.problem("audio", None)
        except AudioUnavailable as exc:
            self._notices.problem(
                "audio", f"{exc}. Start PulseAudio/PipeWire or JACK, or choose another output in the Setup tab"
            )

    def settle_garbage(self) -> None:
        """Loading has finished: freeze its objects now (AudioOut.settle_garbage)."""
        with self._lock:
            if not self.closed:
                self.out.settle_garbage()

    def watch(self, tick: int, rescan_ok: bool) -> None:
        """The housekeeper's look at the stream: a lost or restored device, and every
        RETRY_EVERY ticks another try of the default output when none could open.
        ``rescan_ok``: no input stream is open (a PortAudio re-scan would close it)."""
        with self._lock:  # never reopens a stream that close() is shutting
            note = None if self.closed else self.out.watch()
            if not self.closed:
                self.out.collect_garbage()  # automatic gc is off while it plays
        if note is not None:
            if note.startswith("audio device lost"):
                self._notices.problem("audio", note)
            else:
                self._notices.problem("audio", None)
                self._notices.happened(note)
        if (
            tick % RETRY_EVERY == 0
            and not self.wanted
            and self._notices.has("audio")
            and self.config.output_device is None
        ):
            self._retry(rescan_ok)

    def _retry(self, rescan_ok: bool) -> None:
        """No device at start: try the default output again (a server that came up
        later), keeping the session's sample rate."""
        with self._lock:
            if self.closed or streams_closing():  # a re-scan would close that stream under its reaper
                return
            try:
                if rescan_ok:
                    refresh_devices()
                if negotiate_rate(None, self.sample_rate) != self.sample_rate:
                    return
                self._start_out()
            except AudioUnavailable:
                return
            self._notices.problem("audio", None)
            self._notices.confirm("audio output started")

    def _start_out(self) -> None:
        self.wanted = False
        self.out.start()  # AudioUnavailable: not wanted
        self.wanted = True

    def _stop_out(self) -> None:
        self.wanted = False
        self.out.stop()

    @staticmethod
    def devices() -> dict:
        return {"inputs": input_devices(), "outputs": output_devices()}

    def switch(self, output=None, input=None, blocksize=None) -> bool:
        """Re-open the output on another device and/or block size; True when an open
        input stream must be reopened too. ValueError for a bad block size.

        The old stream plays until the new one's rate is known, and hands the held garbage
        collector over to it, so the band is silent only between one stream's close and
        the next one's open (a few ms: tests/liveband/test_session_buffer_switch.py)."""
        cfg = self.config
        kw = {}
        if output is not None:
            kw["output_device"] = output
        if input is not None:
            kw["input_device"] = input
        if blocksize is not None:
            kw["blocksize"] = int(blocksize)
        new = replace(cfg, **kw)  # validates
        with self._lock:
            if self.closed:
                return False
            try:
                # asked while the old stream still plays; a device that cannot answer
                # while it is open (an exclusive ALSA device) is asked again once it is shut
                rate: int | None = negotiate_rate(new.output_device, self.sample_rate)
            except AudioUnavailable:
                rate = None
            if rate != self.sample_rate:
                self._stop_out()
                try:
                    rate = negotiate_rate(new.output_device, self.sample_rate)
                except AudioUnavailable as exc:
                    self.config = new
                    self._notices.problem("audio", str(exc))
                    return False
            if rate != self.sample_rate:
                self._notices.problem(
                    "audio",
                    f"{new.output_device} runs at {rate} Hz but the session at "
                    f"{self.sample_rate} Hz; restart LiveBand to switch rates",
                )
                self.out = self._make(cfg)
                self.start()
                return False
            self.config = new
            old = self.out
            self.wanted = False
            old.hand_over(nxt := self._make(new))
            self.out = nxt
            self.start()
            if not self.wanted:
                nxt.stop()  # it did not open: the collector is released as by a stop
            return True

    def set_input_gain(self, gain_db: float) -> float:
        """The microphone's gain in the config (validated); the value kept."""
        new = replace(self.config, input_gain_db=float(gain_db))
        with self._lock:
            self.config = new
        return new.input_gain_db

    def close(self) -> None:
        """Shut the stream for good (before the synth it renders is freed)."""
        with self._lock:
            self.closed = True
            self._stop_out()

    # -- the audio clock (Thread: any) ---------------------------------------------------
    def now(self) -> int:
        """The audio-clock sample being rendered now, interpolated between callbacks
        (events are released at the pace they were rendered, not in block bursts)."""
        a = self.out
        if a.stream is None or a.last_block_time == 0.0:
            return self._mixer.clock
        dt = time.monotonic() - a.last_block_time
        return min(a.last_block_clock + int(dt * self.sample_rate), self._mixer.clock)

    def heard(self) -> int:
        """The sample leaving the speakers now (``now`` less the output latency)."""
        return self.now() - int(self.out.latency_ms * self.sample_rate / 1000.0)

    def sample_at(self, t: float) -> int:
        """The audio-clock sample heard at monotonic time ``t`` (the stream's DAC line;
        without stream timing, the sample being rendered now plus the wait)."""
        a = self.out
        off = a.dac_offset() if a.stream is not None else None
        if off is not None:
            return int(round((t - off) * self.sample_rate))
        return self.now() + int(round((t - time.monotonic()) * self.sample_rate))

    @property
    def active(self) -> bool:
        return self.out.active

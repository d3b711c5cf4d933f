"""Microphone -> HumTracker -> melody notes on the output's audio clock (live mic mode).

A sounddevice InputStream callback only copies each block into a lock-free ring; a
worker thread feeds the ring's audio to ``engine.pitch.live.HumTracker`` (pitch tracker +
note segmenter) and hands each note to ``on_note(sample, pitch, on)``.

Device, rate and gain: ``device`` is the user's input device (None: the system default)
and ``gain_db`` the user's input gain (``INPUT_GAIN_DB_RANGE``, applied before the tracker and the
level meter). The stream runs at ``input_rate``; by default the session's rate when the
device takes it, else the device's own default rate (an 8 kHz headset, a 96 kHz
interface): HumTracker resamples to 16 kHz and still dates its events in samples of the
session's (output) clock.

Clock: on the first input callback, the time its first sample reached the ADC is mapped
onto the output clock through the output stream's per-block DAC times (the sample the
player was hearing at that instant), so a hummed note lands where the player heard the
band when singing it; the stream's input latency is in that ADC time. The tracker's
own delay is compensated by HumTracker.

Opening: a device that does not exist (or has no input) raises ``MicError`` "no usable
input device ..." naming it; one that exists but will not open at the rate raises
``MicError`` "cannot open the microphone ...". Both are one line (the session shows it).

Health: ``error`` is a one-line problem that needs the user (the worker stopped, the
microphone never delivered audio, or it stopped delivering: unplugged, server gone);
``notice()`` adds the hints about the input itself (only digital silence: muted; audio
dropped because the tracker fell behind; clipping, NaN/inf samples, talking instead of
humming). Counters: ``overruns`` (blocks our ring refused: the worker fell behind; the
tracker's clock skips the lost frames, so later notes stay in time), ``overflows``
(input overflows PortAudio reported: the server lost input), ``callbacks``.

Thread: constructor/close from the owner; ``level_db`` / ``pitch`` / ``error`` /
``notice()`` read by anyone.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from engine.audio_devices import PA_LOCK
from engine.errors import first_line
from engine.quantiser import MelodyEvent
from engine.ring import AudioRing

if TYPE_CHECKING:
    from engine.pitch.tracker import PitchTracker

NOTHING_AFTER_S = 2.0  # no callback this long after start: "delivers nothing"
STALLED_AFTER_S = 1.5  # no callback for this long: "stopped delivering"
HINT_HOLD_S = 3.0  # a hint about the input stays this long after its cause
SILENT_AFTER_S = 3.0  # only exact zeros this long: "delivers only silence"
# no audio reaching the tracker this long: the meter and the pitch line show nothing
# (a stopped device would otherwise leave the last level and pitch on screen)
DISPLAY_HOLD_S = 0.25
RING_S = 2.0  # input the ring holds while the tracker is behind


class MicError(RuntimeError):
    """The microphone could not be opened (one line that names the device)."""


# the microphone's gain before the pitch tracker, dB (the app's and CLI's range: liveband.config)
INPUT_GAIN_DB_RANGE = (-40.0, 40.0)


def _checked_gain(gain_db: float) -> float:
    """The input gain in dB, or ValueError outside INPUT_GAIN_DB_RANGE."""
    lo, hi = INPUT_GAIN_DB_RANGE
    if not lo <= float(gain_db) <= hi:
        raise ValueError(f"input gain must be {lo:g}..+{hi:g} dB, got {gain_db}")
    return float(gain_db)


def _device_info(sd, device) -> dict:
    """PortAudio's info on the input device, or MicError naming it."""
    try:
        return sd.query_devices(device, "input")
    except Exception as exc:
        msg = first_line(exc)
        raise MicError(f"no usable input device {device!r} ({msg})") from None


def _device_rate(sd, device, want: int, info: dict) -> int:
    """``want`` if the input device accepts it, else the device's default rate."""
    try:
        sd.check_input_settings(device=device, samplerate=want, channels=1, dtype="float32")
        return want
    except Exception:
        return int(info["default_samplerate"])


class MicInput:
    def __init__(
        self,
        on_note: Callable[[int, int, bool], None],
        audio_out,
        *,
        device=None,
        sample_rate: int = 48000,
        tracker: "str | PitchTracker" = "pesto",
        blocksize: int = 480,
        gain_db: float = 0.0,
        input_rate: int | None = None,
    ) -> None:
        import sounddevice as sd

        from engine.pitch.live import HumTracker
        from engine.pitch.tracker import hz_to_midi

        gain_db = _checked_gain(gain_db)
        self._hz_to_midi = hz_to_midi
        self.on_note = on_note
        self.audio_out = audio_out
        self.sample_rate = int(sample_rate)  # the output clock events are dated on
        with PA_LOCK:
            info = _device_info(sd, device)
            rate = int(input_rate) if input_rate else _device_rate(sd, device, self.sample_rate, info)
        self.device_name = str(info.get("name", device))
        self.input_rate = rate
        self.gain_db = gain_db
        # keep_history=False: a live session runs for hours, the notes go to on_note
        self.hum = HumTracker(
            tracker, input_rate=rate, clock_rate=self.sample_rate, gain_db=self.gain_db, keep_history=False
        )
        # run the model once before the stream starts, so its first (slow) call does not
        # leave the first second of audio piling up in the ring
        self.hum.feed(np.zeros(rate // 20, np.float32))
        self.hum.reset()
        self.hum.poll()
        self.ring = AudioRing(int(rate * RING_S))
        self.overruns = 0  # blocks the ring refused (the worker fell behind)
        self.overflows = 0  # input overflows PortAudio reported
        self._overruns_seen = 0
        self._dropped_seen = 0
        self._silent_s = 0.0  # seconds of exact zeros in a row
        self.level_db = -120.0
        self.pitch: float | None = None
        self.callbacks = 0
        self.last_callback = 0.0
        self._worker_error: str | None = None
        self._hint: str | None = None
        self._hint_at = 0.0
        self._bad_seen = 0
        self._offset_set = False
        self._open: dict[int, int] = {}  # notes handed to on_note and not yet ended: pitch -> on time
        self._stop = threading.Event()
        self.started_at = time.monotonic()
        block = max(0, int(round(blocksize * rate / self.sample_rate))) if blocksize else 0
        self._stream = None
        try:
            with PA_LOCK:
                self._stream = sd.InputStream(
                    samplerate=rate,
                    channels=1,
                    dtype="float32",
                    blocksize=block,
                    device=device,
                    callback=self._callback,
                )
        except Exception as exc:
            msg = first_line(exc)
            raise MicError(f"cannot open the microphone {self.device_name!r} at {rate} Hz ({msg})") from None
        self._worker = threading.Thread(target=self._run, name="liveband-mic", daemon=True)
        self._worker.start()
        try:
            with PA_LOCK:
                self._stream.start()
        except Exception as exc:
            self.close()
            msg = first_line(exc)
            raise MicError(f"cannot start the microphone {self.device_name!r} at {rate} Hz ({msg})") from None
        self.started_at = time.monotonic()

    def _callback(self, indata, frames, time_info, status) -> None:
        """Thread: audio input. Copies only (the first call also fixes the clock map)."""
        if not self._offset_set:
            self._offset_set = True
            self._map_clock(time_info.inputBufferAdcTime - time_info.currentTime)
        if status and status.input_overflow:
            self.overflows += 1  # PortAudio / the server lost input
        if not self.ring.write(indata):
            self.overruns += 1  # our worker fell behind: this block is lost
        self.callbacks += 1
        self.last_callback = time.monotonic()

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
        buf = np.zeros((self.input_rate // 10, 2), np.float32)
        last_audio = time.monotonic()
        while not self._stop.wait(0.01):
            try:
                dropped = self.ring.dropped_frames
                if dropped != self._dropped_seen:
                    # frames the ring refused: skip them on the clock so later notes stay
                    # in time (placed now, at most the ring's length off for this once)
                    lost = dropped - self._dropped_seen
                    self._dropped_seen = dropped
                    self.hum.clock_offset += int(round(lost * self.sample_rate / self.input_rate))
                n = self.ring.read_into(buf)
                if n == 0:
                    quiet = time.monotonic() - last_audio
                    if quiet > DISPLAY_HOLD_S:
                        self.level_db, self.pitch = -120.0, None
                    stream = self._stream
                    if self._open and (quiet > STALLED_AFTER_S or (stream is not None and not stream.active)):
                        self._end_notes()  # the device went away mid-note
                    continue
                last_audio = time.monotonic()
                x = buf[:n, 0]
                self._silent_s = 0.0 if x.any() else self._silent_s + n / self.input_rate
                self.hum.feed(x)
                self._deliver(self.hum.poll())  # drains the tracker's queue as well
                st = self.hum.stats
                self.level_db = float(st.level_db)
                self.pitch = float(self._hz_to_midi(st.pitch_hz)) if st.pitch_hz > 0 else None
            except Exception as exc:  # keep the session alive; say what broke
                self._worker_error = f"pitch tracking stopped: {exc}"
                break
        # closed, or the worker broke: no note the band heard start may be left sounding
        self._end_notes()

    def _deliver(self, events) -> None:
        """Hand events to ``on_note``, remembering which notes are open. Thread: worker."""
        for ev in events:
            t, p = int(ev.time), int(ev.pitch)
            if ev.on:
                self._open[p] = t
            else:
                self._open.pop(p, None)
            self.on_note(t, p, bool(ev.on))

    def _end_notes(self) -> None:
        """End the open note (the segmenter's note-off at the last audio), and any note
        the tracker could not end, at its own onset's latest time. Thread: worker."""
        try:
            self._deliver(self.hum.finish())
        except Exception:
            pass
        for p, t in list(self._open.items()):  # the tracker broke: end them where we can
            self._deliver([MelodyEvent(pitch=p, on=False, time=max(t, self._last_time()))])

    def _last_time(self) -> int:
        """The output-clock time of the newest audio the tracker has taken in."""
        ht = self.hum
        return ht.clock_offset + int(round(ht.samples_in * self.sample_rate / self.input_rate))

    @property
    def error(self) -> str | None:
        """A problem the user must act on, or None. Thread: any."""
        if self._worker_error:
            return self._worker_error
        now = time.monotonic()
        if self.callbacks == 0:
            if now - self.started_at > NOTHING_AFTER_S:
                return "the microphone delivers nothing (check the input device and its permissions)"
            return None
        if now - self.last_callback > STALLED_AFTER_S or self._stream is None or not self._stream.active:
            return "the microphone stopped delivering audio (unplugged, or the audio server went away)"
        return None

    def set_gain(self, gain_db: float) -> None:
        """Change the input gain while the microphone runs (-40..+40 dB). Thread: any (one
        float attribute the pitch worker reads per block)."""
        self.gain_db = _checked_gain(gain_db)
        self.hum.gain = float(10 ** (self.gain_db / 20))

    def notice(self) -> str | None:
        """``error``, else a hint about the input (only silence, dropped audio, clipping,
        NaN/inf, talking), or None.

        A hint stays ``HINT_HOLD_S`` after its cause was last seen (a clip lasts one block,
        the app polls every quarter second), and invalid samples count only when new ones
        arrived (the tracker's count never falls). Thread: one poller (the session's
        housekeeping)."""
        err = self.error
        if err:
            return err
        if self._silent_s > SILENT_AFTER_S:  # not held: it ends when a sound comes
            return "the microphone delivers only silence (is it muted?)"
        now = time.monotonic()
        bad = self.hum.stats.nonfinite_samples
        hint = self.hum.notice(invalid=bad != self._bad_seen)  # old invalid samples: not again
        self._bad_seen = bad
        overruns = self.overruns
        if overruns != self._overruns_seen:
            self._overruns_seen = overruns
            hint = (
                f"the pitch tracker fell behind the microphone and dropped audio ({overruns} blocks "
                "so far); close other programs or choose a lighter tracker"
            )
        if hint is not None:
            self._hint, self._hint_at = hint, now
        elif self._hint is not None and now - self._hint_at < HINT_HOLD_S:
            hint = self._hint
        return hint

    def close(self) -> None:
        self._stop.set()
        if self._stream is not None:
            with PA_LOCK:
                try:
                    self._stream.abort()
                    self._stream.close()
                except Exception:
                    pass
        self._worker.join(timeout=2)

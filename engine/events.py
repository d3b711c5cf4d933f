"""Timed MIDI-like events and the lock-free queue that carries them to the audio callback.

Every event carries a time in samples on the audio clock (the output callback's sample
counter). ``IMMEDIATE`` means "now" (the player's own notes): a queue with a ``stamper``
(set by ``Mixer.add_queue`` when the mixer has a live timebase, see
``engine.audio_out.AudioOut.arrival_time``) replaces it at push time with the sample the
arrival maps to plus a fixed delay, so every note sounds the same time after its key
press; without a stamper (offline) it means "at the start of the next block".

``EventQueue`` is single-producer / single-consumer: one producer thread pushes, the
audio thread pops. It preallocates a numpy ring, never blocks and allocates no arrays in
``pop_until``. The indices live in a small int64 array (``_idx``: write, read, dropped)
so that the C audio callback (engine/native) can consume the same ring without the GIL;
the producer writes the slot before publishing the new write index (one aligned 8-byte
store), so the consumer never sees a half event.
A full queue refuses the push (and counts it) rather than overwriting unread events.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

EVENT_DTYPE = np.dtype([("time", "i8"), ("kind", "u1"), ("channel", "u1"), ("data1", "u1"), ("data2", "u1")])

NOTE_ON, NOTE_OFF, CONTROL, PROGRAM, ALL_OFF = 1, 2, 3, 4, 5
IMMEDIATE = -1
CC_ALL_NOTES_OFF = 123


def event_message(kind: int, channel: int, data1: int, data2: int, off_velocity: int = 0):
    """The ``mido.Message`` for one event (ALL_OFF: CC 123), None for a kind MIDI has no
    message for. ``off_velocity``: a note-off's release velocity. Thread: any."""
    import mido

    if kind == NOTE_ON:
        return mido.Message("note_on", channel=channel, note=data1 & 127, velocity=data2 & 127)
    if kind == NOTE_OFF:
        return mido.Message("note_off", channel=channel, note=data1 & 127, velocity=off_velocity)
    if kind == CONTROL:
        return mido.Message("control_change", channel=channel, control=data1 & 127, value=data2 & 127)
    if kind == PROGRAM:
        return mido.Message("program_change", channel=channel, program=data1 & 127)
    if kind == ALL_OFF:
        return mido.Message("control_change", channel=channel, control=CC_ALL_NOTES_OFF, value=0)
    return None


class EventQueue:
    """SPSC ring of EVENT_DTYPE records. Producers must push in non-decreasing time
    order (IMMEDIATE events may be pushed any time by a queue used only for them)."""

    def __init__(self, capacity: int = 8192) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self._buf = np.zeros(capacity, dtype=EVENT_DTYPE)
        self._mask = capacity - 1
        # [write (only the producer changes it), read (only the consumer), pushes refused
        # because the queue was full]
        self._idx = np.zeros(3, dtype=np.int64)
        # Optional callable(arrived) returning the time an IMMEDIATE event that arrived
        # at monotonic time ``arrived`` (None: now) should get, or IMMEDIATE when it
        # cannot tell; called by the producer inside push.
        self.stamper: Callable[[float | None], int] | None = None
        self._last_time = IMMEDIATE  # latest stamp given (producer only)
        self.last_time = IMMEDIATE  # time the latest push was queued with

    @property
    def _write(self) -> int:
        return int(self._idx[0])

    @_write.setter
    def _write(self, v: int) -> None:
        self._idx[0] = v

    @property
    def _read(self) -> int:
        return int(self._idx[1])

    @_read.setter
    def _read(self, v: int) -> None:
        self._idx[1] = v

    @property
    def dropped(self) -> int:
        """Pushes refused because the queue was full."""
        return int(self._idx[2])

    @dropped.setter
    def dropped(self, v: int) -> None:
        self._idx[2] = v

    def native_ref(self):
        """This ring as engine.native.Queue (C consumer or producer). The caller keeps
        the queue alive while C uses it."""
        from engine.native import Queue

        return Queue(self._buf.ctypes.data, self._mask, self._idx.ctypes.data)

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def __len__(self) -> int:
        return self._write - self._read

    def push(
        self, time: int, kind: int, channel: int, data1: int = 0, data2: int = 0, arrived: float | None = None
    ) -> bool:
        """Queue one event (False: the queue was full). ``last_time`` then holds the
        time it was queued with (the stamp, for an IMMEDIATE event on a stamped queue).
        ``arrived``: the ``time.monotonic()`` at which an IMMEDIATE event reached LiveBand
        (the key or MIDI message), handed to the stamper so that the Python between
        there and here does not move the note (None: now).
        Thread: the one producer."""
        w = self._write
        if w - self._read > self._mask:
            self.dropped += 1
            return False
        if time == IMMEDIATE and self.stamper is not None:
            time = self.stamper(arrived)
            if time != IMMEDIATE:
                # The consumer pops in order and stops at the first event not yet due,
                # so a stamp that went back (the timebase moved on to a newer block)
                # must not overtake the note before it: hold it at that note's time.
                if time < self._last_time:
                    time = self._last_time
                self._last_time = time
        self.last_time = time
        self._buf[w & self._mask] = (time, kind, channel, data1, data2)
        self._write = w + 1  # publish after the slot is complete
        return True

    def peek_time(self) -> int | None:
        """Time of the oldest unread event. Thread: the consumer."""
        r = self._read
        if r == self._write:
            return None
        return int(self._buf[r & self._mask]["time"])

    def pop_until(self, t_end: int, out: np.ndarray) -> int:
        """Move events with time < t_end (IMMEDIATE counts as due) into ``out`` (an
        EVENT_DTYPE array), oldest first, at most len(out). Returns how many.
        Thread: the consumer (audio). Allocates no arrays."""
        r = self._read
        w = self._write
        n = 0
        cap_out = out.shape[0]
        buf = self._buf
        mask = self._mask
        while r < w and n < cap_out:
            ev = buf[r & mask]
            if ev["time"] >= t_end:
                break
            out[n] = ev
            n += 1
            r += 1
        self._read = r
        return n

    def clear(self) -> None:
        """Drop everything unread. Thread: the consumer, or any thread while nothing runs."""
        self._read = self._write
